/** Registration lifetimes (draft: Expiration) and the IMF-fixdate they are told in. */

/**
 * The expiry the director grants: what the client asked for, or the maximum when it asked for
 * nothing or for more (clamped, not refused, as real clients over-ask).
 */
export function grantedExpiry(requested: number | null, now: number, maxSeconds: number): number {
  const latest = now + maxSeconds;
  return requested === null ? latest : Math.min(requested, latest);
}

/** RFC 9110 §5.6.7 IMF-fixdate, e.g. `Wed, 20 Dec 2023 10:03:31 GMT`. */
export const imfFixdate = (unixSeconds: number) => new Date(unixSeconds * 1000).toUTCString();

/** Unix seconds from a number of seconds, an IMF-fixdate or an ISO 8601 date; null if unreadable. */
export function parseExpires(value: number | string): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? Math.floor(value) : null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);
