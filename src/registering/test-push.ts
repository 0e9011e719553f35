/**
 * The test push (issue 11, "why no push?"): a registration's push service is sent a small message
 * now, through the same transport and VAPID key as every delivery, and the caller is told what the
 * push service answered. Recorded like a delivery (gone deletes), counted only as a test.
 */
import { readConfig } from "../config";
import { lazyKeyringOf } from "../crypto/sealed";
import { targetFor } from "../queues/fanout";
import type { DeliveryJob } from "../queues/jobs";
import { openTarget, transportsFor } from "../queues/deliveries";
import { getRegistration, type Actor } from "../store/registrations";
import { recordDeliveryStats } from "../store/stats";
import { existingSubscriptions, recordOutcomes, type DeliveryOutcomes } from "../store/subscriptions";
import { claimTestPush } from "../store/test-pushes";
import type { Outcome, PushMessage } from "../transports/transport";
import { deliverableFor, serviceOf } from "../transports";
import { pushMessageXml } from "../xml/push-message";

/** One test push per registration per this many seconds, whoever asks. */
export const TEST_PUSH_INTERVAL_SECONDS = 10;
/** Long enough for a device that is online; a test should not be delivered tomorrow. */
export const TEST_PUSH_TTL = 60;

/** The registration is not delivered through a push service the director sends to: nothing to test. */
export class NotTestable extends Error {}

/** Another test push of this registration was sent less than TEST_PUSH_INTERVAL_SECONDS ago. */
export class TestPushRateLimited extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`one test push per registration every ${TEST_PUSH_INTERVAL_SECONDS} s; try again in ${retryAfterSeconds} s`);
  }
}

export interface TestPushResult {
  outcome: "delivered" | "gone" | "failed";
  /** The push service's HTTP status; null when it did not answer (or nothing was sent). */
  status: number | null;
  /** Why it was not delivered (the push service's words, quoted); null when delivered. */
  reason: string | null;
  /** How long the push service took to answer, in milliseconds. */
  ms: number;
}

/**
 * The message: the topic and an empty `<content-update/>`, no sync-token (a client syncs and finds
 * nothing new), and no `Topic` header, so it cannot replace a real message waiting at the push
 * service (RFC 8030 §5.4).
 */
export const testMessage = (topic: string): PushMessage => ({
  xml: pushMessageXml({ topic, contentUpdate: { syncToken: null }, propertyUpdate: null }),
  ttl: TEST_PUSH_TTL,
  urgency: "normal",
  topic: null,
  data: { topic },
});

/** The outcome table folded into what the caller is shown: everything not delivered or gone failed. */
function resultOf(outcome: Outcome, ms: number): TestPushResult {
  if (outcome.kind === "delivered") return { outcome: "delivered", status: outcome.status, reason: null, ms };
  return { outcome: outcome.kind === "gone" ? "gone" : "failed", status: outcome.status, reason: outcome.reason, ms };
}

/**
 * As the deliveries consumer records one outcome; the director's own faults say nothing of the
 * subscription. A retry a real message has queued is still due when it was: the test queues none,
 * so `next_attempt_at` (which recording a success or failure clears) is kept.
 */
function recorded(subscriptionId: number, outcome: Outcome, queuedRetryAt: number | null): DeliveryOutcomes {
  const retrying = queuedRetryAt === null ? [] : [{ id: subscriptionId, at: queuedRetryAt }];
  if (outcome.kind === "delivered") return { delivered: [subscriptionId], gone: [], failed: [], retrying };
  if (outcome.kind === "gone") return { delivered: [], gone: [subscriptionId], failed: [] };
  if (outcome.kind !== "too_large" && outcome.director === true) return { delivered: [], gone: [], failed: [] };
  return { delivered: [], gone: [], failed: [{ id: subscriptionId, reason: outcome.reason, status: outcome.status }], retrying };
}

/**
 * Sends the registration `id` a test push, if `actor` may see it (its owner, or its tenant);
 * null when it is unknown, expired or someone else's. Throws NotTestable (WebSocket, or a push
 * service this director does not send to now) and TestPushRateLimited.
 */
export async function testPush(env: Env, actor: Actor, id: string, now: number): Promise<TestPushResult | null> {
  const keys = lazyKeyringOf(env);
  const row = await getRegistration(env.DB, keys, actor, id, now);
  if (row === null) return null;
  if (row.transport === "websocket") {
    throw new NotTestable("a websocket registration gets its frames from the topic's hub, not from a push service: there is nothing to test");
  }
  const [subscription] = await existingSubscriptions(env.DB, [row.subscription_id]);
  if (subscription === undefined) return null;
  const target = targetFor({ ...subscription, subscription_id: subscription.id }, row.tenant_id, deliverableFor(env));
  if (target === null) {
    throw new NotTestable(
serviceOf(row.transport).notConfigured,
    );
  }
  const wait = await claimTestPush(env.DB, row.id, now, TEST_PUSH_INTERVAL_SECONDS);
  if (wait !== null) throw new TestPushRateLimited(wait);

  const transport = row.transport;
  const message = testMessage(row.topic);
  const job: DeliveryJob = { tenantId: row.tenant_id, message, transport, targets: [target], attempt: 1, deadline: now + TEST_PUSH_TTL };
  const started = Date.now();
  const opened = await openTarget(keys, target, undefined, transport);
  // the key the subscription is bound to, else the current one: as every delivery signs it
  const send = async (target: unknown) => (await (await transportsFor(env)(job, serviceOf(transport).vapid ? row.vapid_public_key : null)).send([target], message))[0];
  const outcome = "outcome" in opened ? opened.outcome : await send(opened.opened);
  const ms = Date.now() - started;

  const failingBefore = now - readConfig(env).failingSubscriptionDays * 86_400;
  const queuedRetryAt = row.next_attempt_at !== null && row.next_attempt_at > now ? row.next_attempt_at : null;
  await recordOutcomes(env.DB, recorded(row.subscription_id, outcome, queuedRetryAt), now, failingBefore);
  await recordDeliveryStats(env.DB, [{ tenantId: row.tenant_id, transport, tests: 1 }], now);
  return resultOf(outcome, ms);
}
