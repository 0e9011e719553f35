/**
 * The expiry rule (the draft's Expiration), one for the JSON API and push-register: what the
 * client asked for, clamped to the maximum; nothing asked, or a time already past, is no wish and
 * gets the maximum (the draft's own samples carry expiries long gone).
 */
import { badRequest } from "../errors";

/** Unix seconds from a number of seconds, an IMF-fixdate or an ISO 8601 date; null if unreadable. */
function parseExpires(value: number | string): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? Math.floor(value) : null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

/** When a registration asked to expire at `wish` (absent: null) expires; an unreadable wish is a 400. */
export function expiresAt(wish: number | string | null, now: number, maxSeconds: number): number {
  const latest = now + maxSeconds;
  if (wish === null) return latest;
  const asked = parseExpires(wish);
  if (asked === null) throw badRequest("invalid_request", `expires ${JSON.stringify(wish)} is neither Unix seconds nor an IMF-fixdate`);
  return asked <= now ? latest : Math.min(asked, latest);
}
