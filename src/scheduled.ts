import { nowSeconds } from "./expiry";
import { purgeExpiredRegistrations } from "./store/registrations";
import { purgeOrphanSubscriptions } from "./store/subscriptions";

const PAGE = 500;

/** Cron: the draft says never to notify an expired registration; drop them, then unused subscriptions. */
export async function purge(env: Env): Promise<{ registrations: number; subscriptions: number }> {
  const now = nowSeconds();
  let registrations = 0;
  for (let n = PAGE; n === PAGE; registrations += n) n = await purgeExpiredRegistrations(env.DB, now, PAGE);
  let subscriptions = 0;
  for (let n = PAGE; n === PAGE; subscriptions += n) n = await purgeOrphanSubscriptions(env.DB, PAGE);
  return { registrations, subscriptions };
}
