/**
 * `fanout` consumer: expands one topic message into chunks of recipients for `deliveries`,
 * reading the topic's live registrations page by page (keyset pagination over an index).
 */
import { nowSeconds } from "../expiry";
import type { Change } from "../hub/change";
import { DEFAULT_TTL_SECONDS } from "../hub/merge";
import type { FanoutJob } from "../hub/topic-hub";
import { pageTopicRecipients, topicRecipientsStatement, type RecipientRow } from "../store/registrations";
import type { DeliveredTransport, Deliverable, PushMessage, QueueableRow } from "../transports/transport";
import { deliverableFor, serviceOf, serviceStoredAs } from "../transports";
import { topicHeader } from "../transports/web-push";
import { pushMessageXml } from "../xml/push-message";
import { bindUnboundWebPush, pageWebPushSubscriptions } from "../store/subscriptions";
import { activateVapidKey, keepVapidKey, vapidKeysByPublicKey } from "../store/vapid-keys";
import { keyringOf } from "../crypto/sealed";
import { resealPage, SEALED_TABLES } from "../store/sealed-columns";
import { recordDeliveryStats, type DeliveryStatsRow } from "../store/stats";
import {
  FANOUT_PAGE_SIZE,
  FANOUT_PAGES_PER_JOB,
  sendBatches,
  TARGETS_PER_JOB,
  transportField,
  type DeliveryJob,
  type DeliveryTarget,
  type SecretsRotationJob,
  type VapidRotationJob,
} from "./jobs";
import { variantFor, type Variant } from "./recipients";
import { planFcmTopics, reachedByTopic, resumedPlan } from "./fcm-topics";
import { errorFields, log } from "../log";

function messageFor(change: Change, variant: Variant, topic: string | null): PushMessage {
  return {
    xml: pushMessageXml({
      topic: change.topic,
      contentUpdate: variant.content ? { syncToken: change.contentUpdate!.syncToken } : null,
      propertyUpdate: variant.property ? { transports: false } : null,
    }),
    ttl: change.ttl ?? DEFAULT_TTL_SECONDS,
    urgency: change.urgency,
    topic,
    // resent at once after a 413 (issue 11): the topic and empty updates, valid per the draft's schema
    smallestXml: pushMessageXml({
      topic: change.topic,
      contentUpdate: variant.content ? { syncToken: null } : null,
      propertyUpdate: variant.property ? { transports: false } : null,
    }),
    data: {
      topic: change.topic,
      ...(variant.content && change.contentUpdate!.syncToken !== null ? { sync_token: change.contentUpdate!.syncToken } : {}),
    },
  };
}

/**
 * A subscription as the deliveries queue carries it (its service's queued form, secrets still
 * sealed), or null when it is not sent to from here: a WebSocket connection (its TopicHub sends
 * those frames itself, in the flush that queued this job), or what its service says it does not
 * send to (not configured; for Web Push, a keyless endpoint while plain messages are refused).
 */
export function targetFor(row: QueueableRow, tenantId: string, deliverable: Deliverable): DeliveryTarget | null {
  return (serviceStoredAs(row.transport)?.queued(row, tenantId, deliverable) as DeliveryTarget | null | undefined) ?? null;
}

/** Fans out one job; returns the continuation job when the topic has more pages than one job reads. */
export async function fanOut(job: FanoutJob, env: Env): Promise<FanoutJob | null> {
  const now = nowSeconds();
  const { rest, stats } = await fanOutJob(job, env, now);
  await recordDeliveryStats(env.DB, stats, now);
  return rest;
}

/**
 * One job's fan-out: its delivery chunks queued; answers the continuation job, if any, and the
 * counts to record (the caller writes them, once for a whole queue batch). `firstPage`: its first
 * page of recipients, when the caller read it with other jobs' in one D1 round trip.
 */
async function fanOutJob(job: FanoutJob, env: Env, now: number, firstPage?: RecipientRow[]): Promise<{ rest: FanoutJob | null; stats: DeliveryStatsRow[] }> {
  const { change, tenantId } = job;
  if (change.dontNotify === "*") return { rest: null, stats: [] };
  const spared = new Set(change.dontNotify);
  const topic = await topicHeader(tenantId, change.topic);
  // the message lives from the hub's flush for its TTL, retries included (issue 11)
  const deadline = (job.flushedAt ?? now) + (change.ttl ?? DEFAULT_TTL_SECONDS);
  const deliverable = deliverableFor(env);
  // one chunk list per transport and message variant (content, property or both)
  type Entry = { transport: DeliveredTransport; message: PushMessage; targets: DeliveryTarget[] };
  const byVariant = new Map<string, Entry>();
  const jobs: DeliveryJob[] = [];
  const flush = (entry: Entry) => {
    if (entry.targets.length > 0) {
      jobs.push({ tenantId, message: entry.message, targets: entry.targets, attempt: 1, deadline, ...transportField(entry.transport) });
    }
    entry.targets = [];
  };

  let after = job.after ?? "";
  let more = true;
  const first = firstPage ?? (await pageTopicRecipients(env.DB, tenantId, change.topic, after, now, FANOUT_PAGE_SIZE));
  // FCM groups above FCM_TOPIC_THRESHOLD: one topic message each, decided by the job that starts
  // the fan-out before anything is queued; its continuations skip the same members
  const topics =
    job.after === undefined
      ? await planFcmTopics(env, job, first, first.length < FANOUT_PAGE_SIZE, now, deadline, (variant) => messageFor(change, variant, topic))
      : resumedPlan(job);
  jobs.push(...topics.jobs);
  for (let page = 0; page < FANOUT_PAGES_PER_JOB && more; page++) {
    const rows = page === 0 ? first : await pageTopicRecipients(env.DB, tenantId, change.topic, after, now, FANOUT_PAGE_SIZE);
    more = rows.length === FANOUT_PAGE_SIZE;
    if (rows.length > 0) after = rows[rows.length - 1].id;
    for (const row of rows) {
      if (reachedByTopic(topics, row)) continue;
      const target = targetFor(row, tenantId, deliverable);
      if (target === null) continue;
      const variant = variantFor(row, change, spared);
      if (variant === null) continue;
      // keyed and keyless Web Push share chunks: the transport encrypts per target
      const transport = row.transport as DeliveredTransport;
      const key = `${transport}/${variant.content}/${variant.property}`;
      let entry = byVariant.get(key);
      if (entry === undefined) byVariant.set(key, (entry = { transport, message: messageFor(change, variant, topic), targets: [] }));
      entry.targets.push(target);
      if (entry.targets.length === TARGETS_PER_JOB) flush(entry);
    }
  }
  for (const entry of byVariant.values()) flush(entry);
  for (const batch of sendBatches(jobs)) await env.DELIVERIES.sendBatch(batch.map((body) => ({ body })));
  log(env, "info", "fanout", { tenant: tenantId, recipients: jobs.reduce((n, j) => n + j.targets.length, 0), chunks: jobs.length, more });
  // one message per transport it goes out by, counted by the job that starts its fan-out
  const transports = job.after === undefined ? new Set(jobs.map((j) => serviceOf(j.transport).transport)) : new Set<DeliveredTransport>();
  const rest: FanoutJob = { ...job, after, ...(topics.viaTopic.size > 0 ? { fcmTopics: Object.fromEntries(topics.viaTopic) } : {}) };
  return { rest: more ? rest : null, stats: [...transports].map((transport) => ({ tenantId, transport, messages: 1 })) };
}

/**
 * Each fan-out job's first page of recipients, all in one D1 round trip (issue 15): a batch of
 * jobs for topics nobody registered to costs that and nothing more. Null when the batch read
 * failed: each job then reads its own, and fails (and is retried) on its own.
 */
async function firstPages(env: Env, jobs: FanoutJob[], now: number): Promise<Map<FanoutJob, RecipientRow[]> | null> {
  const reading = jobs.filter((job) => job.change.dontNotify !== "*");
  if (reading.length === 0) return new Map();
  try {
    const results = await env.DB.batch<RecipientRow>(
      reading.map((job) => topicRecipientsStatement(env.DB, job.tenantId, job.change.topic, job.after ?? "", now, FANOUT_PAGE_SIZE)),
    );
    return new Map(reading.map((job, i) => [job, results[i].results]));
  } catch (error) {
    log(env, "warn", "fanout_batch_read_failed", errorFields(error));
    return null;
  }
}

/** The batch's counts, one row per tenant and transport. */
function summed(rows: DeliveryStatsRow[]): DeliveryStatsRow[] {
  const out = new Map<string, DeliveryStatsRow>();
  for (const row of rows) {
    const key = `${row.tenantId}\n${row.transport}`;
    const known = out.get(key);
    out.set(key, known === undefined ? { ...row } : { ...known, messages: (known.messages ?? 0) + (row.messages ?? 0) });
  }
  return [...out.values()];
}

/** Key-rotation push message (draft: Key Rotation): kept a week, as clients may be offline. */
const ROTATION_MESSAGE: PushMessage = {
  xml: pushMessageXml({ topic: null, contentUpdate: null, propertyUpdate: { transports: true } }),
  ttl: 7 * 86_400,
  urgency: "normal",
  topic: null,
};

/**
 * Sends the key-rotation message to every Web Push subscription, each signed with the key it is
 * bound to (keyless ones plain, as everything they get): first, subscriptions still unbound are
 * bound to the outgoing key, which made them. When the last page is queued, the outgoing key is
 * kept (a configured pair copied into vapid_keys) and the new key becomes the one that signs new
 * subscriptions; every key still bound keeps signing its own.
 */
export async function rotateVapidKey(job: VapidRotationJob, env: Env): Promise<VapidRotationJob | null> {
  let after = job.after;
  let more = true;
  const jobs: DeliveryJob[] = [];
  const deliverable = deliverableFor(env);
  const now = nowSeconds();
  if (job.after === 0 && job.oldPublicKey !== null) await bindUnboundWebPush(env.DB, job.oldPublicKey);
  for (let page = 0; page < FANOUT_PAGES_PER_JOB && more && job.oldPublicKey !== null; page++) {
    const rows = await pageWebPushSubscriptions(env.DB, after, FANOUT_PAGE_SIZE);
    more = rows.length === FANOUT_PAGE_SIZE;
    if (rows.length > 0) after = rows[rows.length - 1].id;
    const targets = rows
      .map((r) => targetFor({ subscription_id: r.id, transport: "web_push", identifier: r.identifier, p256dh: r.p256dh, auth: r.auth, sealed_token: null, platform: null }, r.tenant_id, deliverable))
      .filter((target) => target !== null);
    for (let i = 0; i < targets.length; i += TARGETS_PER_JOB) {
      jobs.push({ tenantId: "", message: ROTATION_MESSAGE, targets: targets.slice(i, i + TARGETS_PER_JOB), attempt: 1, deadline: now + ROTATION_MESSAGE.ttl });
    }
  }
  for (const batch of sendBatches(jobs)) await env.DELIVERIES.sendBatch(batch.map((body) => ({ body })));
  if (more && job.oldPublicKey !== null) return { ...job, after };
  if (job.oldPublicKey !== null) {
    const outgoing = await vapidKeysByPublicKey(env, job.oldPublicKey);
    if (outgoing !== null) await keepVapidKey(env.DB, await keyringOf(env), outgoing, now);
  }
  await activateVapidKey(env.DB, job.keyId, now);
  return null;
}

/** Re-seals one page of stored secrets; the job for the next page, or null when all tables are done. */
export async function resealSecrets(job: SecretsRotationJob, env: Env): Promise<SecretsRotationJob | null> {
  const page = await resealPage(env.DB, await keyringOf(env), job.table, job.after);
  if (page.next !== null) return { ...job, after: page.next };
  const next = SEALED_TABLES[SEALED_TABLES.indexOf(job.table) + 1];
  return next === undefined ? null : { kind: "secrets-rotation", table: next, after: "" };
}

/**
 * The fanout queue's batch: the fan-out jobs' first pages read in one round trip, each job then
 * queued and acknowledged on its own (a failure retries that job only), and the batch's message
 * counts written once, after: a failed count is logged, never a reason to send a message twice.
 */
export async function consumeFanout(batch: MessageBatch<FanoutJob | VapidRotationJob | SecretsRotationJob>, env: Env): Promise<void> {
  const now = nowSeconds();
  const fanouts = batch.messages.map((m) => m.body).filter((body): body is FanoutJob => !("kind" in body));
  const pages = await firstPages(env, fanouts, now);
  const stats: DeliveryStatsRow[] = [];
  for (const message of batch.messages) {
    const body = message.body;
    try {
      let rest: FanoutJob | VapidRotationJob | SecretsRotationJob | null;
      if (!("kind" in body)) {
        const done = await fanOutJob(body, env, now, pages?.get(body));
        stats.push(...done.stats);
        rest = done.rest;
      } else rest = body.kind === "vapid-rotation" ? await rotateVapidKey(body, env) : await resealSecrets(body, env);
      if (rest !== null) await env.FANOUT.send(rest);
      message.ack();
    } catch (error) {
      log(env, "error", "fanout_job_failed", { tenant: "kind" in body ? null : body.tenantId, job: "kind" in body ? body.kind : "fanout", ...errorFields(error) });
      message.retry({ delaySeconds: Math.min(60, 2 ** message.attempts) });
    }
  }
  try {
    await recordDeliveryStats(env.DB, summed(stats), now);
  } catch (error) {
    log(env, "error", "fanout_stats_failed", errorFields(error));
  }
}
