/**
 * The push gateway's poller (issue 14, item 7). A change made at the origin directly (another
 * client, the server's web UI, a script) never passes the gateway, so one GatewayPoller Durable
 * Object per gateway asks the origin every `poll_seconds` for the tokens of the collections that
 * have a live registration, and tells what changed as `/v1/notify` would. An alarm, not the
 * cron: a cron trigger fires once a minute at best, and never under `wrangler dev`.
 *
 * Armed by push-register through the gateway and by a PUT of the gateway; re-armed by the hourly
 * cron (src/scheduled.ts) in case an alarm was lost. A round with nothing to ask stops it.
 */
import { DurableObject } from "cloudflare:workers";
import { readConfig } from "../config";
import { ApiError } from "../errors";
import { topicHub } from "../hub/topic-hub";
import { errorFields, log } from "../log";
import { meteredObject, tracked } from "../meter";
import { collectionsToPoll, getGatewayForProxy, recordPoll, type CollectionTokens, type TokenMove } from "../store/gateways";
import { mapWithConcurrency } from "../queues/pool";
import { pollChange } from "./changes";
import { admitGatewayChanges, pollAuthorization } from "./notify";
import { checkGatewayOrigin } from "./origin";
import { factsOf, propfindZero } from "./proxy";
import { TOKENS } from "./register";

/** Collections asked at once, and at most in one round, the longest unasked first (issue 14). */
export const POLL_CONCURRENCY = 6;
export const POLL_ROUND_SIZE = 200;

export const gatewayPoller = (env: Env, tenantId: string) => env.GATEWAY_POLLER.get(env.GATEWAY_POLLER.idFromName(tenantId));

export interface Round {
  /** seconds until the next round, or null: nothing to poll, the poller stops */
  next: number | null;
  polled: number;
  changed: number;
  /** the round's first failure, as `last_poll_error` keeps it, or null */
  error: string | null;
}

/** One collection's tokens at the origin now, or why they could not be read. */
async function tokensAt(url: string, authorization: string | null, timeoutMs: number): Promise<CollectionTokens | { failure: string }> {
  let answer: Response;
  try {
    answer = await propfindZero(url, TOKENS, authorization, timeoutMs);
  } catch (error) {
    if (error instanceof ApiError) return { failure: `${error.code}: ${error.message}` };
    throw error;
  }
  if (answer.status !== 207 || answer.body === null) {
    await answer.body?.cancel();
    return { failure: `${answer.status} ${answer.statusText}`.trim() };
  }
  const facts = await factsOf(answer);
  return facts === null ? { failure: "the answer is not a multistatus the gateway can read" } : facts.tokens;
}

const differ = (a: CollectionTokens, b: CollectionTokens) => a.sync_token !== b.sync_token || a.ctag !== b.ctag || a.etag !== b.etag;

/**
 * Changes a round found and did not tell yet, by collection path: the stored tokens they were
 * found against. A change is told on the round after the one that found it, if the stored tokens
 * are still those: a write through the gateway tells its own change with the writer's
 * Push-Dont-Notify, but only once its answer is out and the origin has been asked for the new
 * tokens, and a round in that gap would otherwise tell the same change sparing nobody (a burst
 * of 207 writes, 40 ms apart, gave a spared registration 5 pushes where it should have had 1).
 */
export type Pending = Record<string, CollectionTokens>;

/**
 * One round for the tenant's gateway at `now` (Unix seconds): each due collection's tokens asked
 * with `poll_auth` and compared with those last seen; a change found the round before, against
 * the same stored tokens, is told (see `Pending`). A collection the origin did not answer is told
 * nothing and named in `last_poll_error`; a clean round clears it.
 */
export async function pollRound(env: Env, tenantId: string, now: number, pending: Pending = {}): Promise<Round & { pending: Pending }> {
  const idle = (next: number | null, error: string | null = null) => ({ next, polled: 0, changed: 0, error, pending: next === null ? {} : pending });
  const gateway = await getGatewayForProxy(env.DB, tenantId);
  if (gateway === null || gateway.poll_seconds === 0) return idle(null);
  // a disabled tenant's gateway proxies without push; polling goes on, so that enabling it resumes
  if (gateway.tenant_disabled) return idle(gateway.poll_seconds);
  const config = readConfig(env);
  let origin: URL;
  try {
    const self = config.publicBaseUrl === null ? [] : [new URL(config.publicBaseUrl).origin];
    origin = new URL(checkGatewayOrigin(gateway.origin, { insecure: config.allowInsecurePushResources, selfOrigins: self }));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // the operator turned insecure origins off since the PUT: asked nothing, said why
    const why = `${new Date(now * 1000).toISOString()} not polled: the gateway's ${error.message}`;
    await recordPoll(env.DB, tenantId, [], [], why, now);
    return idle(gateway.poll_seconds, why);
  }
  const due = await collectionsToPoll(env.DB, tenantId, now, POLL_ROUND_SIZE);
  if (due.length === 0) return idle(null);

  const authorization = await pollAuthorization(env, gateway);
  const found = await mapWithConcurrency(due, POLL_CONCURRENCY, (collection) => tokensAt(`${origin.origin}${collection.href}`, authorization, config.gatewayOriginTimeoutMs));
  const failures: string[] = [];
  const waiting: Pending = {};
  const moves: (TokenMove & { topic: string })[] = [];
  due.forEach((collection, i) => {
    const answer = found[i];
    if ("failure" in answer) {
      failures.push(`${collection.href}: ${answer.failure}`);
      return;
    }
    const stored = tokensOf(collection);
    if (!differ(stored, answer)) return;
    const since = pending[collection.path];
    if (since !== undefined && !differ(since, stored)) moves.push({ path: collection.path, was: stored, now: answer, topic: collection.topic });
    else waiting[collection.path] = stored;
  });
  const changes = moves.flatMap((move) => {
    const change = pollChange(move.topic, move.was, move.now);
    return change === null ? [] : [{ move, change }];
  });

  // each change counts against the tenant's notify budget, as a /v1/notify of as many would
  // (issue 12); past it the tokens stay and the changes wait, to be told by a later round
  let refused: string | null = null;
  if (changes.length > 0 && !(await admitGatewayChanges(env, tenantId, changes.length, { by: "poller" }))) {
    refused = `${changes.length} changes wait: past the tenant's notify_per_minute`;
    for (const { move } of changes) waiting[move.path] = move.was;
  }
  const first = failures[0] ?? refused;
  const error = first === null ? null : `${new Date(now * 1000).toISOString()} ${first}${failures.length > 1 ? ` (and ${failures.length - 1} more)` : ""}`;
  const moved = await recordPoll(
    env.DB,
    tenantId,
    due.map((c) => c.path),
    refused === null ? moves : [],
    error,
    now,
  );
  // only what this round moved: a write through the gateway that moved the tokens first has told it
  const told = refused === null ? changes.filter(({ move }) => moved.has(move.path)) : [];
  await Promise.all(told.map(({ change }) => topicHub(env, tenantId, change.topic).accept(tenantId, [change])));
  return { next: gateway.poll_seconds, polled: due.length, changed: told.length, error, pending: waiting };
}

const tokensOf = (c: CollectionTokens): CollectionTokens => ({ sync_token: c.sync_token, ctag: c.ctag, etag: c.etag });

/** One gateway's poller: it keeps only which tenant it polls for, and its alarm. */
export class GatewayPoller extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    [this.ctx, this.env] = meteredObject(this.ctx, this.env);
  }

  /** Polls within `pollSeconds` from now (sooner if already armed sooner); 0 = polling off. */
  async arm(tenantId: string, pollSeconds: number): Promise<void> {
    if (pollSeconds <= 0) return;
    this.ctx.storage.kv.put("tenant", tenantId);
    const at = Date.now() + pollSeconds * 1000;
    const armed = await this.ctx.storage.getAlarm();
    if (armed === null || armed > at) await this.ctx.storage.setAlarm(at);
  }

  alarm(): Promise<void> {
    return tracked(this.ctx, "GatewayPoller.alarm", () => this.poll());
  }

  private async poll(): Promise<void> {
    const tenantId = this.ctx.storage.kv.get<string>("tenant");
    if (tenantId === undefined) return;
    const started = Date.now();
    let round: Round & { pending: Pending };
    try {
      round = await pollRound(this.env, tenantId, Math.floor(started / 1000), this.ctx.storage.kv.get<Pending>("pending") ?? {});
    } catch (error) {
      // the runtime retries a failed alarm, with backoff
      log(this.env, "error", "gateway_poll_failed", { tenant: tenantId, ...errorFields(error) });
      throw error;
    }
    const { pending, ...told } = round;
    if (told.changed > 0 || told.error !== null) log(this.env, told.error === null ? "info" : "warn", "gateway_poll", { tenant: tenantId, ...told, waiting: Object.keys(pending).length });
    if (round.next === null) {
      // nothing left to poll: the object keeps nothing until armed again
      await this.ctx.storage.deleteAll();
      return;
    }
    this.ctx.storage.kv.put("pending", pending);
    await this.ctx.storage.setAlarm(Math.max(started + round.next * 1000, Date.now() + 1000));
  }
}
