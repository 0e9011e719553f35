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
  return {
    registrations: await drain(() => purgeExpiredRegistrations(env.DB, now, PAGE)),
    subscriptions: await drain(() => purgeOrphanSubscriptions(env.DB, PAGE)),
    deadLetters: await drain(() => purgeDeadLetters(env.DB, now - DEAD_LETTER_SECONDS, PAGE)),
  };
}

/** Runs a page-sized delete until a page comes back short (bounded statements); returns the total. */
async function drain(deletePage: () => Promise<number>): Promise<number> {
  let total = 0;
  for (let n = PAGE; n === PAGE; total += n) n = await deletePage();
  return total;
}
