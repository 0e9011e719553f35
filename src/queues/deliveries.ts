/**
 * `deliveries` consumer: sends each chunk's push messages with bounded concurrency, records the
 * outcomes, and re-enqueues only the targets worth another try (Retry-After, else exponential
 * backoff with jitter) until their attempts run out and they go to the dead-letter queue.
 */
import { keyringOf, SecretsKeyMissing, SecretUndecryptable, type Keyring } from "../crypto/sealed";
import { nowSeconds } from "../expiry";
import { openAuth, openToken, recordOutcomes, type DeliveryOutcomes } from "../store/subscriptions";
import { currentVapidKeys, vapidKeysByPublicKey } from "../store/vapid-keys";
import type { Outcome, Transport } from "../transports/transport";
import { webPushTransport, type WebPushTarget } from "../transports/web-push";
import { fcmTransport, serviceAccountOf, type FcmTarget } from "../transports/fcm";
import { MAX_DELIVERY_ATTEMPTS, SEND_CONCURRENCY, type DeadLetter, type DeliveryJob, type DeliveryTarget } from "./jobs";
import { mapWithConcurrency } from "./pool";

/** Queues delay messages by at most 12 hours. */
const MAX_DELAY_SECONDS = 43_200;

/** Exponential backoff with full jitter around the doubling step: ~10 s, 20 s, 40 s, … ≤ 1 h. */
export function backoffSeconds(attempt: number, random = Math.random()): number {
  const step = Math.min(3600, 5 * 2 ** attempt);
  return Math.max(1, Math.round(step * (0.5 + random)));
}

/** What to do with a chunk's failures: one retry job (the slowest Retry-After wins) or a dead letter. */
export function planRetry(
  job: DeliveryJob,
  retries: { target: DeliveryTarget; afterSeconds: number | null; reason: string }[],
): { retry: DeliveryJob; delaySeconds: number } | { deadLetter: DeadLetter } | null {
  if (retries.length === 0) return null;
  const targets = retries.map((r) => r.target);
  if (job.attempt >= MAX_DELIVERY_ATTEMPTS) {
    const reasons = Object.fromEntries(retries.map((r) => [r.target.subscriptionId, r.reason]));
    return { deadLetter: { ...job, targets, reasons } };
  }
  const asked = retries.map((r) => r.afterSeconds).filter((s): s is number => s !== null);
  const delaySeconds = Math.min(MAX_DELAY_SECONDS, asked.length > 0 ? Math.max(1, ...asked) : backoffSeconds(job.attempt));
  return { retry: { ...job, targets, attempt: job.attempt + 1 }, delaySeconds };
}

/** The target as a transport sends to it, its secret opened; a failure is the outcome instead. */
export async function openTarget(keyring: () => Promise<Keyring>, target: DeliveryTarget): Promise<WebPushTarget | FcmTarget | Outcome> {
  try {
    if ("sealedToken" in target) {
      return { subscriptionId: target.subscriptionId, token: await openToken(await keyring(), target.tenantId, target.tokenDigest, target.sealedToken) };
    }
    if ("plain" in target) return { subscriptionId: target.subscriptionId, endpoint: target.endpoint, p256dh: null, auth: null };
    const auth = await openAuth(await keyring(), target.tenantId, target.endpoint, target.sealedAuth);
    return { subscriptionId: target.subscriptionId, endpoint: target.endpoint, p256dh: target.p256dh, auth };
  } catch (error) {
    // a missing key is the operator's to fix: keep the message until it is set
    if (error instanceof SecretsKeyMissing) return { kind: "retry", afterSeconds: null, reason: "SECRETS_KEY is not set" };
    if (error instanceof SecretUndecryptable) {
      console.error(JSON.stringify({ event: "secret_undecryptable", subscription: target.subscriptionId, message: error.message }));
      return { kind: "failed", reason: "secret_undecryptable: the subscription's secret does not open with SECRETS_KEY or SECRETS_KEY_PREVIOUS" };
    }
    throw error;
  }
}

export async function deliver(jobs: DeliveryJob[], env: Env, transportFor: (job: DeliveryJob) => Promise<Transport<WebPushTarget | FcmTarget>>): Promise<void> {
  const sends = jobs.flatMap((job) => job.targets.map((target) => ({ job, target })));
  let keyring: Promise<Keyring> | undefined;
  const keys = () => (keyring ??= keyringOf(env));
  const outcomes = await mapWithConcurrency(sends, SEND_CONCURRENCY, async ({ job, target }) => {
    const opened = await openTarget(keys, target);
    return "kind" in opened ? opened : (await transportFor(job)).send(opened, job.message);
  });

  const record: DeliveryOutcomes = { delivered: [], gone: [], failed: [] };
  const retries = new Map<DeliveryJob, { target: DeliveryTarget; afterSeconds: number | null; reason: string }[]>();
  outcomes.forEach((outcome: Outcome, i) => {
    const { job, target } = sends[i];
    const id = target.subscriptionId;
    if (outcome.kind === "delivered") record.delivered.push(id);
    else if (outcome.kind === "gone") record.gone.push(id);
    else {
      record.failed.push({ id, reason: outcome.reason });
      if (outcome.kind === "retry") {
        const list = retries.get(job) ?? [];
        list.push({ target, afterSeconds: outcome.afterSeconds, reason: outcome.reason });
        retries.set(job, list);
      }
    }
  });

  for (const [job, failed] of retries) {
    const plan = planRetry(job, failed);
    if (plan === null) continue;
    if ("retry" in plan) await env.DELIVERIES.send(plan.retry, { delaySeconds: plan.delaySeconds });
    else await env.DEAD_LETTERS.send(plan.deadLetter);
  }
  await recordOutcomes(env.DB, record, nowSeconds());
}

const FCM_NOT_CONFIGURED: Transport<WebPushTarget | FcmTarget> = {
  send: async () => ({ kind: "failed", reason: "FCM is not configured (FCM_SERVICE_ACCOUNT)" }),
};

/** One transport per kind and signing key: Web Push with the current key or the one a rotation job names, or FCM. */
export function transportsFor(env: Env): (job: DeliveryJob) => Promise<Transport<WebPushTarget | FcmTarget>> {
  const transports = new Map<string, Promise<Transport<WebPushTarget | FcmTarget>>>();
  return (job) => {
    const key = job.transport === "fcm" ? "fcm" : `web_push ${job.signWith ?? ""}`;
    let transport = transports.get(key);
    if (transport === undefined) {
      if (job.transport === "fcm") {
        const account = serviceAccountOf(env);
        transport = Promise.resolve(account === null ? FCM_NOT_CONFIGURED : (fcmTransport(env, account) as Transport<WebPushTarget | FcmTarget>));
      } else {
        const keys = job.signWith === undefined ? currentVapidKeys(env) : vapidKeysByPublicKey(env, job.signWith);
        transport = keys.then((pair) => webPushTransport(env, pair) as Transport<WebPushTarget | FcmTarget>);
      }
      transports.set(key, transport);
    }
    return transport;
  };
}

export async function consumeDeliveries(batch: MessageBatch<DeliveryJob>, env: Env): Promise<void> {
  await deliver(
    batch.messages.map((m) => m.body),
    env,
    transportsFor(env),
  );
  batch.ackAll();
}
