import { nowSeconds } from "./expiry";
import { purgeDeadLetters } from "./store/dead-letters";
import { purgeExpiredRegistrations } from "./store/registrations";
import { purgeOrphanSubscriptions } from "./store/subscriptions";

const PAGE = 500;
/** Dead letters are kept this long for the operator to look at. */
const DEAD_LETTER_SECONDS = 30 * 86_400;

/**
 * Cron: the draft says never to notify an expired registration; drop them, then subscriptions
 * nothing uses any more, then dead letters older than 30 days.
 */
export async function purge(env: Env): Promise<{ registrations: number; subscriptions: number; deadLetters: number }> {
  const now = nowSeconds();
  let registrations = 0;
  for (let n = PAGE; n === PAGE; registrations += n) n = await purgeExpiredRegistrations(env.DB, now, PAGE);
  let subscriptions = 0;
  for (let n = PAGE; n === PAGE; subscriptions += n) n = await purgeOrphanSubscriptions(env.DB, PAGE);
  let deadLetters = 0;
  for (let n = PAGE; n === PAGE; deadLetters += n) n = await purgeDeadLetters(env.DB, now - DEAD_LETTER_SECONDS, PAGE);
  return { registrations, subscriptions, deadLetters };
}
