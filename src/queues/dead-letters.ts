/**
 * Retrying a dead letter (issue 11): its message is queued again for the subscriptions that still
 * exist, as a first attempt with a fresh lifetime of its TTL, and the letter leaves the list.
 */
import { nowSeconds } from "../expiry";
import { deleteDeadLetter, getDeadLetter } from "../store/dead-letters";
import { existingSubscriptions } from "../store/subscriptions";
import { deliverableFor } from "../transports";
import { targetFor } from "./fanout";
import { liveTopicTargets } from "./fcm-topics";
import { sendBatches, TARGETS_PER_JOB, transportField, type DeadLetter, type DeliveryJob, type DeliveryTarget } from "./jobs";

/** No dead letter has this id. */
export class DeadLetterNotFound extends Error {}
/** None of the letter's subscriptions exists any more (or it names none). */
export class NothingToRetry extends Error {}

/** Re-queues dead letter `id`; returns how many targets were queued. */
export async function retryDeadLetter(env: Env, id: number): Promise<number> {
  const row = await getDeadLetter(env.DB, id);
  if (row === null) throw new DeadLetterNotFound(`no dead letter ${id}`);
  const letter = JSON.parse(row.body) as Partial<DeadLetter>;
  const listed = Array.isArray(letter.targets) ? letter.targets : [];
  // an FCM topic's message (issue 16) is no subscription's: it goes again to the topic while it exists
  const topics = await liveTopicTargets(env, listed);
  const ids = listed.map((t) => t.subscriptionId).filter((n) => Number.isInteger(n) && n > 0);
  if (letter.message === undefined || (ids.length === 0 && topics.listed === 0)) throw new NothingToRetry("the dead letter names no delivery");
  const deliverable = deliverableFor(env);
  // the subscriptions as they are now (keys and sealed secrets may have changed since)
  const targets = [
    ...(await existingSubscriptions(env.DB, ids)).map((row) => targetFor({ ...row, subscription_id: row.id }, row.tenant_id, deliverable)).filter((t): t is DeliveryTarget => t !== null),
    ...topics.live,
  ];
  if (targets.length === 0) throw new NothingToRetry("none of the dead letter's subscriptions (or FCM topics) exists any more");
  const now = nowSeconds();
  const message = letter.message;
  const jobs: DeliveryJob[] = [];
  for (let i = 0; i < targets.length; i += TARGETS_PER_JOB) {
    jobs.push({
      tenantId: letter.tenantId ?? row.tenant_id,
      message,
      ...transportField(letter.transport),
      targets: targets.slice(i, i + TARGETS_PER_JOB),
      attempt: 1,
      deadline: now + message.ttl,
    });
  }
  for (const batch of sendBatches(jobs)) await env.DELIVERIES.sendBatch(batch.map((body) => ({ body })));
  await deleteDeadLetter(env.DB, id);
  return targets.length;
}
