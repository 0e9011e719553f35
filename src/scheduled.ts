import { readConfig } from "./config";
import { nowSeconds } from "./expiry";
import { gatewayPoller } from "./gateway/poller";
import { gatewaysToPoll } from "./store/gateways";
import { purgeDeadLetters } from "./store/dead-letters";
import { purgeDeliveryStats, STATS_KEEP_SECONDS } from "./store/stats";
import { purgeExpiredRegistrations } from "./store/registrations";
import { purgeFailingSubscriptions, purgeOrphanSubscriptions } from "./store/subscriptions";
import { dropUnusedRetiredKeys } from "./store/vapid-keys";
import { removePendingLeaving } from "./queues/fcm-topics";

const PAGE = 500;
/** Dead letters are kept this long for the operator to look at. */
const DEAD_LETTER_SECONDS = 30 * 86_400;

/**
 * Cron: the draft says never to notify an expired registration; drop them, then subscriptions
 * failing for FAILING_SUBSCRIPTION_DAYS (with their registrations), then subscriptions nothing uses
 * any more, dead letters older than 30 days, hourly delivery counts older than 31 days, and
 * retired VAPID keys no subscription is bound to; and removes from their FCM topics the tokens
 * whose registration left one (issue 16), those purged here included, from up to 50 topics an hour (a
 * group's next topic message removes its own first in any case).
 */
export async function purge(
  env: Env,
): Promise<{ registrations: number; failing: number; subscriptions: number; deadLetters: number; deliveryStats: number; vapidKeys: number; fcmTopicLeaves: number }> {
  const now = nowSeconds();
  const failingBefore = now - readConfig(env).failingSubscriptionDays * 86_400;
  return {
    registrations: await drain(() => purgeExpiredRegistrations(env.DB, now, PAGE)),
    failing: await drain(() => purgeFailingSubscriptions(env.DB, failingBefore, PAGE)),
    subscriptions: await drain(() => purgeOrphanSubscriptions(env.DB, PAGE)),
    deadLetters: await drain(() => purgeDeadLetters(env.DB, now - DEAD_LETTER_SECONDS, PAGE)),
    deliveryStats: await drain(() => purgeDeliveryStats(env.DB, now - STATS_KEEP_SECONDS, PAGE)),
    vapidKeys: await dropUnusedRetiredKeys(env.DB),
    // up to 50 topics a run: each is at most 10 batchRemove requests, within a cron's 1000 subrequests
    fcmTopicLeaves: await removePendingLeaving(env, 50),
  };
}

/** Runs a page-sized delete until a page comes back short (bounded statements); returns the total. */
async function drain(deletePage: () => Promise<number>): Promise<number> {
  let total = 0;
  for (let n = PAGE; n === PAGE; total += n) n = await deletePage();
  return total;
}

/**
 * Cron: wakes the poller of every gateway that polls and has a collection with a live
 * registration (issue 14, item 7). Its alarm keeps it going; this brings back one that was lost.
 */
export async function wakePollers(env: Env): Promise<number> {
  const gateways = await gatewaysToPoll(env.DB, nowSeconds());
  await Promise.all(gateways.map((g) => gatewayPoller(env, g.tenant_id).arm(g.tenant_id, g.poll_seconds)));
  return gateways.length;
}
