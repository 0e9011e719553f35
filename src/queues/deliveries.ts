/**
 * `deliveries` consumer: sends each job's push messages through its push service (src/transports),
 * every request of the batch paced per origin (src/delivery/pacing.ts),
 * each Web Push subscription signed with its own VAPID key; records the outcomes; queues a retry
 * per target that is worth one (src/delivery/plan.ts) until the message's deadline, past which the
 * target is a dead letter; acks each message once its follow-ups are written.
 */
import { deliveryPoint, writePoint, type DeliveryPoint } from "../analytics";
import { lazyKeyringOf, SecretsKeyMissing, SecretUndecryptable, type Keyring } from "../crypto/sealed";
import { readConfig } from "../config";
import { nowSeconds } from "../expiry";
import { DEFERRED, runPaced } from "../delivery/pacing";
import { followUp } from "../delivery/plan";
import { queueDelay, ttlLeft } from "../delivery/schedule";
import { recordOutcomes, vapidKeysOfSubscriptions, type DeliveryOutcomes } from "../store/subscriptions";
import { currentVapidKeys, currentVapidPublicKey, vapidKeysByPublicKey } from "../store/vapid-keys";
import { recordDeliveryStats, type DeliveryStatsRow } from "../store/stats";
import { serviceOf } from "../transports";
import type { DeliveredTransport, Outcome, PushMessage, Sender } from "../transports/transport";
import type { DeadLetter, DeliveryJob, DeliveryTarget } from "./jobs";
import { errorFields, hostOf, log } from "../log";

/**
 * The target as its service's sender takes it, its secret opened by the service (`transport`: the
 * job's, absent for Web Push); or, when it does not open, the outcome instead.
 */
export async function openTarget(
  keyring: () => Promise<Keyring>,
  target: DeliveryTarget,
  env: Pick<Env, "LOG_LEVEL"> | undefined,
  transport: DeliveredTransport | undefined,
): Promise<{ opened: unknown } | { outcome: Outcome }> {
  try {
    return { opened: await serviceOf(transport).open(keyring, target) };
  } catch (error) {
    // a missing key is the operator's to fix: keep the message until it is set (the director's fault)
    if (error instanceof SecretsKeyMissing) return { outcome: { kind: "retry", status: null, afterSeconds: null, reason: "SECRETS_KEY is not set", director: true } };
    if (error instanceof SecretUndecryptable) {
      // not the message: it names the row, whose key holds the push URL
      log(env ?? {}, "error", "secret_undecryptable", { tenant: target.tenantId, subscription: target.subscriptionId });
      return { outcome: { kind: "failed", status: null, reason: "secret_undecryptable: the subscription's secret does not open with SECRETS_KEY or SECRETS_KEY_PREVIOUS" } };
    }
    throw error;
  }
}

/** A job's service's sender; `signWith`: the Web Push VAPID key (public half), null or absent for the current one. */
export type TransportFor = (job: DeliveryJob, signWith?: string | null) => Promise<Sender<unknown>>;

export interface DeliverOptions {
  /** Jitter source in [0, 1); seeded in tests and fault runs (src/delivery/schedule.ts seededRandom). */
  random?: () => number;
}

/** 413 twice, or no smaller form: the push service refuses even the least we can say. */
const stillTooLarge = (outcome: Outcome): Outcome =>
  outcome.kind === "too_large" ? { kind: "failed", status: 413, reason: `${outcome.reason} (the smallest form too)` } : outcome;

/** The smallest form of a message (topic and empty updates), as resent after a 413. */
const smallestOf = (message: PushMessage): PushMessage | null =>
  message.smallestXml === undefined || message.smallestXml === message.xml
    ? null
    : { ...message, xml: message.smallestXml, data: message.data?.topic === undefined ? {} : { topic: message.data.topic } };

interface Sent {
  outcome: Outcome;
  /** Accepted only when signed with the current key: bind the subscription to it. */
  rebindTo?: string;
}

/**
 * Delivers `jobs` (one queue message each); the result per job: null once its follow-ups (retries,
 * dead letters, recorded outcomes) are written, else what went wrong (the message is retried).
 */
export async function deliver(jobs: DeliveryJob[], env: Env, transportFor: TransportFor, options: DeliverOptions = {}): Promise<(Error | null)[]> {
  const now = nowSeconds();
  const random = options.random ?? Math.random;
  const keys = lazyKeyringOf(env);
  const results: (Error | null)[] = jobs.map(() => null);
  const deadlineOf = (job: DeliveryJob) => job.deadline ?? now + job.message.ttl;

  // a job not yet due (its wait was longer than a queue delay) goes back until it is
  const due: number[] = [];
  for (const [j, job] of jobs.entries()) {
    if (job.dueAt !== undefined && job.dueAt > now) {
      try {
        await env.DELIVERIES.send(job, { delaySeconds: queueDelay(job.dueAt, now) });
      } catch (error) {
        results[j] = error as Error;
      }
    } else due.push(j);
  }

  const webPushIds = due.flatMap((j) => (serviceOf(jobs[j].transport).vapid ? jobs[j].targets.map((t) => t.subscriptionId) : []));
  const bound = await vapidKeysOfSubscriptions(env.DB, webPushIds);
  let current: Promise<string | null> | undefined;
  const currentKey = () => (current ??= currentVapidPublicKey(env));

  // One request per target, or per job for a service that takes a whole chunk in one (issue 16).
  // Every request of the batch, whatever its job and service, goes through one runPaced, so Web
  // Push's per-origin pacing (issue 11) spans the batch as before: the consumer paces, each
  // service's `send` only sends.
  type Request = { j: number; job: DeliveryJob; targets: DeliveryTarget[] };
  const requests: Request[] = due.flatMap((j) => {
    const job = jobs[j];
    return serviceOf(job.transport).request === "chunk" ? [{ j, job, targets: job.targets }] : job.targets.map((target) => ({ j, job, targets: [target] }));
  });
  const failedJobs = new Map<number, Error>();
  const took = new Map<Request, number>();
  const sendOne = async (request: Request): Promise<Sent[]> => {
    const started = Date.now();
    const sent = await attempt(request);
    took.set(request, Date.now() - started);
    return sent;
  };
  const attempt = async ({ j, job, targets }: Request): Promise<Sent[]> => {
    try {
      const service = serviceOf(job.transport);
      const results: Sent[] = [];
      const sending: { k: number; opened: unknown }[] = [];
      // a chunk's secrets opened together, not one after another
      const openedAll = await Promise.all(targets.map((target) => openTarget(keys, target, env, job.transport)));
      for (const [k, result] of openedAll.entries()) {
        if ("outcome" in result) results[k] = { outcome: result.outcome };
        else sending.push({ k, opened: result.opened });
      }
      if (sending.length === 0) return results;
      // a first attempt carries the TTL as notified; a retry, the time left (issue 11)
      const message = job.attempt > 1 ? { ...job.message, ttl: ttlLeft(job.message.ttl, deadlineOf(job), now) } : job.message;
      // a VAPID-signing service sends per target: the key is the one target's
      const key = service.vapid ? (bound.get(targets[0].subscriptionId) ?? job.signWith ?? null) : null;
      const transport = await transportFor(job, key);
      const outcomes = await transport.send(
        sending.map((s) => s.opened),
        message,
      );
      // 413: the smallest form, once, to those that refused the message
      const large = outcomes.flatMap((outcome, n) => (outcome.kind === "too_large" ? [n] : []));
      if (large.length > 0) {
        const smallest = smallestOf(message);
        const again = smallest === null ? large.map((n) => outcomes[n]) : await transport.send(large.map((n) => sending[n].opened), smallest);
        large.forEach((n, i) => (outcomes[n] = stillTooLarge(again[i])));
      }
      for (const [n, { k, opened }] of sending.entries()) {
        const outcome = outcomes[n];
        results[k] = { outcome };
        // a subscription on a retired key that the push service refuses: once more with the current key
        if (outcome.kind === "failed" && (outcome.status === 401 || outcome.status === 403) && key !== null) {
          const signing = await currentKey();
          if (signing !== null && signing !== key) {
            const [retried] = await (await transportFor(job, null)).send([opened], message);
            if (retried.kind === "delivered") results[k] = { outcome: retried, rebindTo: signing };
          }
        }
      }
      return results;
    } catch (error) {
      failedJobs.set(j, error as Error);
      return targets.map(() => ({ outcome: { kind: "failed", status: null, reason: "internal error", director: true } }));
    }
  };
  const paced = await runPaced(
    requests,
    ({ job, targets }) => serviceOf(job.transport).paceKey(targets[0]),
    sendOne,
    (results) => results.some((result) => result.outcome.kind === "retry" && result.outcome.timeout === true),
  );
  // back to one entry per target: a deferred request defers each of its targets
  const sends = requests.flatMap((request, r) =>
    request.targets.map((target, k) => ({ j: request.j, job: request.job, target, request, sent: paced[r] === DEFERRED ? DEFERRED : (paced[r] as Sent[])[k] }) as { j: number; job: DeliveryJob; target: DeliveryTarget; request: Request; sent: Sent | typeof DEFERRED }),
  );

  // sends left for a later batch (DEFERRED) were not made: no line
  const made = sends.flatMap((send) =>
    send.sent === DEFERRED ? [] : [{ job: send.job, target: send.target, outcome: send.sent.outcome, ms: took.get(send.request) ?? 0 }],
  );
  for (const line of attemptLines(env, made)) {
    log(env, line.outcome === "delivered" || line.outcome === "gone" ? "info" : "warn", "delivery", { ...line });
    writePoint(env, deliveryPoint(line));
  }

  // every job's follow-ups decided, then written once for the batch (issue 15: a write per job
  // made each delivery of a one-recipient topic two D1 queries and two rows)
  const plans: FollowUps[] = [];
  const planned: number[] = [];
  for (const j of due) {
    if (failedJobs.has(j)) {
      results[j] = failedJobs.get(j)!;
      continue;
    }
    plans.push(followUpsOf(env, jobs[j], sends.flatMap((s) => (s.j === j ? [{ target: s.target, sent: s.sent }] : [])), now, deadlineOf(jobs[j]), random));
    planned.push(j);
  }
  try {
    await writeFollowUps(env, plans, now);
  } catch (error) {
    for (const j of planned) results[j] = error as Error;
  }
  return results;
}

/**
 * The delivery lines of one batch: a line per job attempt, tenant, push service host, outcome and
 * status, with how many sends it counts and the slowest one's ms. A line per send made a
 * 10,000-recipient fan-out under `npm start` 2.7× slower (issue 13's closing note); failures still
 * come apart by status. The host alone, as the endpoint's path is the subscription's secret.
 */
export function attemptLines(env: Pick<Env, "FCM_API_BASE"> & Partial<Pick<Env, "HMS_API_BASE">>, sends: { job: DeliveryJob; target: DeliveryTarget; outcome: Outcome; ms: number }[]): DeliveryPoint[] {
  const lines = new Map<string, DeliveryPoint>();
  for (const { job, target, outcome, ms } of sends) {
    const service = serviceOf(job.transport);
    const line: DeliveryPoint = {
      tenant: target.tenantId || null,
      transport: service.transport,
      // the service's one host, else (Web Push) the target's own push service
      host: service.host(env) ?? ("endpoint" in target ? hostOf(target.endpoint) : null),
      outcome: outcome.kind,
      status: outcome.status,
      count: 1,
      ms,
      attempt: job.attempt,
    };
    const key = JSON.stringify([line.tenant, line.transport, line.host, line.outcome, line.status, line.attempt]);
    const same = lines.get(key);
    if (same === undefined) lines.set(key, line);
    else {
      same.count++;
      same.ms = Math.max(same.ms, ms);
    }
  }
  return [...lines.values()];
}

/** What one job's sends call for: outcomes to record, counts, retries and dead letters to queue. */
interface FollowUps {
  record: DeliveryOutcomes;
  stats: DeliveryStatsRow[];
  retries: MessageSendRequest<DeliveryJob>[];
  letters: MessageSendRequest<DeadLetter>[];
}

/** One job's follow-ups, decided (no I/O but the log lines of refusals that are ours). */
function followUpsOf(
  env: Env,
  job: DeliveryJob,
  sends: { target: DeliveryTarget; sent: Sent | typeof DEFERRED }[],
  now: number,
  deadline: number,
  random: () => number,
): FollowUps {
  const record: DeliveryOutcomes = { delivered: [], gone: [], failed: [], retrying: [], rebound: [] };
  const retries: MessageSendRequest<DeliveryJob>[] = [];
  const letters: MessageSendRequest<DeadLetter>[] = [];
  // counts per tenant (a rotation job spans tenants) for the hourly stats
  const stats = new Map<string, DeliveryStatsRow>();
  const count = (tenantId: string, what: "delivered" | "retried" | "refused" | "gone" | "dead_lettered") => {
    let row = stats.get(tenantId);
    if (row === undefined) stats.set(tenantId, (row = { tenantId, transport: serviceOf(job.transport).transport }));
    row[what] = (row[what] ?? 0) + 1;
  };
  for (const { target, sent } of sends) {
    const id = target.subscriptionId;
    const next = followUp(sent === DEFERRED ? "deferred" : sent.outcome, { attempt: job.attempt, now, deadline, random: random() });
    if (sent !== DEFERRED && sent.rebindTo !== undefined) record.rebound!.push({ id, key: sent.rebindTo });
    switch (next.kind) {
      case "delivered":
        record.delivered.push(id);
        count(target.tenantId, "delivered");
        break;
      case "gone":
        record.gone.push(id);
        count(target.tenantId, "gone");
        break;
      case "refused":
        count(target.tenantId, "refused");
        if (next.director) log(env, "error", "delivery_refused_by_director", { tenant: target.tenantId, subscription: id, reason: next.reason });
        else record.failed.push({ id, reason: next.reason, status: next.status });
        break;
      case "retry": {
        if (next.failure !== null) record.failed.push({ id, ...next.failure });
        const dueAt = now + next.delaySeconds;
        const delaySeconds = queueDelay(dueAt, now);
        const retry: DeliveryJob = { ...job, targets: [target], attempt: next.attempt, deadline };
        delete retry.dueAt;
        if (delaySeconds < next.delaySeconds) retry.dueAt = dueAt;
        retries.push({ body: retry, delaySeconds });
        count(target.tenantId, "retried");
        record.retrying!.push({ id, at: dueAt });
        break;
      }
      case "dead_letter":
        if (next.failure !== null) record.failed.push({ id, ...next.failure });
        letters.push({ body: { ...job, targets: [target], deadline, reasons: { [id]: next.reason }, reason: next.reason } });
        count(target.tenantId, "dead_lettered");
        break;
    }
  }
  return { record, stats: [...stats.values()], retries, letters };
}

/** Adds up the hourly counts of several jobs: one row per tenant and transport. */
function mergeStats(rows: DeliveryStatsRow[]): DeliveryStatsRow[] {
  const merged = new Map<string, DeliveryStatsRow>();
  for (const row of rows) {
    const key = `${row.tenantId}\n${row.transport}`;
    const into = merged.get(key);
    if (into === undefined) {
      merged.set(key, { ...row });
      continue;
    }
    for (const [field, n] of Object.entries(row)) {
      if (typeof n === "number") (into as unknown as Record<string, number>)[field] = ((into as unknown as Record<string, number>)[field] ?? 0) + n;
    }
  }
  return [...merged.values()];
}

/**
 * Writes a batch's follow-ups: retries and dead letters queued first, then the outcomes and the
 * hourly counts recorded, each in one D1 round trip for the whole batch.
 */
async function writeFollowUps(env: Env, plans: FollowUps[], now: number): Promise<void> {
  const retries = plans.flatMap((plan) => plan.retries);
  const letters = plans.flatMap((plan) => plan.letters);
  for (let i = 0; i < retries.length; i += 100) await env.DELIVERIES.sendBatch(retries.slice(i, i + 100));
  for (let i = 0; i < letters.length; i += 100) await env.DEAD_LETTERS.sendBatch(letters.slice(i, i + 100));
  const record: DeliveryOutcomes = { delivered: [], gone: [], failed: [], retrying: [], rebound: [] };
  for (const plan of plans) {
    record.delivered.push(...plan.record.delivered);
    record.gone.push(...plan.record.gone);
    record.failed.push(...plan.record.failed);
    record.retrying!.push(...plan.record.retrying!);
    record.rebound!.push(...plan.record.rebound!);
  }
  const failingBefore = now - readConfig(env).failingSubscriptionDays * 86_400;
  await recordOutcomes(env.DB, record, now, failingBefore);
  await recordDeliveryStats(env.DB, mergeStats(plans.flatMap((plan) => plan.stats)), now);
}

/**
 * One sender per service and signing key: Web Push with the key a subscription is bound to (else
 * the current one), every other service its own.
 */
export function transportsFor(env: Env): TransportFor {
  const senders = new Map<string, Promise<Sender<unknown>>>();
  return (job, signWith) => {
    const service = serviceOf(job.transport);
    const keyName = signWith === undefined ? (job.signWith ?? null) : signWith;
    const key = service.vapid ? `${service.transport} ${keyName ?? ""}` : service.transport;
    let sender = senders.get(key);
    if (sender === undefined) {
      sender = service.vapid
        ? (keyName === null ? currentVapidKeys(env) : vapidKeysByPublicKey(env, keyName)).then((vapid) => service.sender(env, { vapid }))
        : Promise.resolve(service.sender(env));
      senders.set(key, sender);
      sender.catch(() => senders.delete(key));
    }
    return sender;
  };
}

/** Acks each message once its follow-ups are written; retries only those whose handling threw. */
export async function consumeDeliveries(batch: MessageBatch<DeliveryJob>, env: Env, options: DeliverOptions = {}): Promise<void> {
  let results: (Error | null)[];
  try {
    results = await deliver(
      batch.messages.map((m) => m.body),
      env,
      transportsFor(env),
      options,
    );
  } catch (error) {
    results = batch.messages.map(() => error as Error);
  }
  batch.messages.forEach((message, i) => {
    const error = results[i];
    if (error === null) return message.ack();
    log(env, "error", "delivery_job_failed", { tenant: message.body.tenantId || null, message_id: message.id, ...errorFields(error) });
    message.retry({ delaySeconds: Math.min(60, 2 ** message.attempts) });
  });
}
