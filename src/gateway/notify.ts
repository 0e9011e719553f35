/**
 * Pushes after writes through the gateway (issue 14, item 6), the I/O around src/gateway/changes.ts:
 * which watched collections a write concerns (one query), their new tokens from the origin, and
 * the change to each topic's hub. The notify budget and `poll_auth` are asked the same way by the
 * poller (src/gateway/poller.ts).
 */
import { limitsOf } from "../limits/limits";
import { admitNotifies } from "../limits/notify-budget";
import { log } from "../log";
import { cachedTenant } from "../store/tenant-cache";
import { parseDontNotify } from "../hub/dont-notify";
import { topicHub } from "../hub/topic-hub";
import { registrationIdsOf } from "../registering";
import { keyringOf } from "../crypto/sealed";
import { moveTokens, openPollPassword, watchedAmong, type GatewayRow } from "../store/gateways";
import { concernedCollections, writeChange } from "./changes";
import { askWhoAndWhat, MAX_XML_REQUEST_BYTES, textUpTo, type ProxyTarget } from "./proxy";
import { collectionFacts } from "./register";

/**
 * Whether `n` changes the gateway found fit the tenant's notify budget: they count as a
 * /v1/notify of as many would (issue 12). Past it, a `warn` line `gateway_notify_refused` says so
 * (with `fields`), and nothing is told.
 */
export async function admitGatewayChanges(env: Env, tenantId: string, n: number, fields: Record<string, unknown> = {}): Promise<boolean> {
  const tenant = await cachedTenant(env, tenantId);
  if (tenant === null) return false;
  const admission = await admitNotifies(env, tenant.id, n, limitsOf(env, tenant).notify_per_minute);
  if (!admission.ok) log(env, "warn", "gateway_notify_refused", { tenant: tenant.id, changes: n, retry_after: admission.retryAfter, ...fields });
  return admission.ok;
}

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
  if (!(await admitGatewayChanges(env, gateway.tenant_id, watched.length))) return;
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

/** `poll_auth` as a Basic header (RFC 7617), or null: what the poller, and a write without credentials, ask with. */
export async function pollAuthorization(env: Env, gateway: GatewayRow): Promise<string | null> {
  const password = await openPollPassword(await keyringOf(env), gateway);
  if (password === null || gateway.poll_username === null) return null;
  const bytes = new TextEncoder().encode(`${gateway.poll_username}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}
