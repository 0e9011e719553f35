/**
 * Pushes after writes through the gateway (issue 14, item 6), the I/O around src/gateway/changes.ts:
 * which watched collections a write concerns (one query), their new tokens from the origin, and
 * the change to each topic's hub.
 */
import { limitsOf } from "../limits/limits";
import { admitNotifies } from "../limits/notify-budget";
import { log } from "../log";
import { getTenant } from "../store/tenants";
import { parseDontNotify } from "../hub/dont-notify";
import { topicHub } from "../hub/topic-hub";
import { registrationIdsOf } from "../registering";
import { moveTokens, watchedAmong, type GatewayRow } from "../store/gateways";
import { concernedCollections, writeChange } from "./changes";
import { askWhoAndWhat, MAX_XML_REQUEST_BYTES, textUpTo, type ProxyTarget } from "./proxy";
import { pollAuthorization } from "./poller";
import { collectionFacts } from "./register";

/**
 * Tells each watched collection a write concerns (issue 14, item 6): its new sync-token read with
 * the writer's credentials (else poll_auth), the change handed to its TopicHub as `/v1/notify`
 * hands it, Push-Dont-Notify honoured; its stored tokens move on, so the poller does not tell it again.
 */
export async function notifyAfterWrite(
  env: Env,
  gateway: GatewayRow,
  target: ProxyTarget,
  written: string[],
  write: { proppatch: string[] | null | undefined; authorization: string | null; dontNotify: string | null },
): Promise<void> {
  const concerned = concernedCollections(written);
  const watched = await watchedAmong(env.DB, gateway.tenant_id, [...concerned.keys()]);
  if (watched.length === 0) return;
  // each change counts against the tenant's notify budget, as a /v1/notify of as many would (issue 12)
  const tenant = await getTenant(env.DB, gateway.tenant_id);
  if (tenant === null) return;
  const admission = await admitNotifies(env, tenant.id, watched.length, limitsOf(env, tenant).notify_per_minute);
  if (!admission.ok) {
    log(env, "warn", "gateway_notify_refused", { tenant: tenant.id, changes: watched.length, retry_after: admission.retryAfter });
    return;
  }
  const authorization = write.authorization ?? (await pollAuthorization(env, gateway));
  const dontNotify = write.dontNotify === null ? [] : parseDontNotify(write.dontNotify);
  await Promise.all(
    watched.map(async (collection) => {
      const answer = await askWhoAndWhat(`${target.prefixes.originOrigin}${collection.href}`, authorization, target.timeoutMs);
      const text = answer.status === 207 && answer.body !== null ? await textUpTo(answer.body, answer.headers.get("Content-Length"), MAX_XML_REQUEST_BYTES) : (await answer.body?.cancel(), null);
      const tokens = (text === null ? null : collectionFacts(text))?.tokens ?? { sync_token: null, ctag: null, etag: null };
      if (text !== null) await moveTokens(env.DB, gateway.tenant_id, collection.path, tokens);
      const change = writeChange(collection.topic, concerned.get(collection.path)!, {
        proppatch: write.proppatch,
        syncToken: tokens.sync_token,
        dontNotify: dontNotify === "*" ? "*" : registrationIdsOf(dontNotify),
      });
      await topicHub(env, gateway.tenant_id, collection.topic).accept(gateway.tenant_id, [change]);
    }),
  );
}
