/**
 * The arithmetic of the rate limits, as pure functions of explicit times (ms): the notify budget's
 * leaky bucket and a socket's frame allowance. I/O lives in the callers.
 */

/**
 * A leaky bucket of notifications (issue 12): `level` changes counted, as of `at`. It drains at
 * `perMinute / 60` per second; `n` more are accepted while `level + n <= perMinute`, so a burst
 * up to the limit passes and then the steady rate does.
 */
export interface Bucket {
  level: number;
  at: number;
}

export const EMPTY_BUCKET: Bucket = { level: 0, at: 0 };

/** The level at `now`. */
export function levelAt(bucket: Bucket, perMinute: number, now: number): number {
  return Math.max(0, bucket.level - (Math.max(0, now - bucket.at) * perMinute) / 60_000);
}

export type Take =
  | { ok: true; bucket: Bucket }
  /** `retryAfter`: whole seconds (at least 1) until `n` fits. */
  | { ok: false; bucket: Bucket; retryAfter: number };

/** Takes `n` from the bucket at `now`, or says how long until they fit. */
export function take(bucket: Bucket, n: number, perMinute: number, now: number): Take {
  const level = levelAt(bucket, perMinute, now);
  if (level + n <= perMinute) return { ok: true, bucket: { level: level + n, at: now } };
  const seconds = ((level + n - perMinute) * 60) / perMinute;
  return { ok: false, bucket: { level, at: now }, retryAfter: Math.max(1, Math.ceil(seconds)) };
}

/** Gives back what was taken but not used (a lease that ended): never below empty. */
export function giveBack(bucket: Bucket, n: number, perMinute: number, now: number): Bucket {
  return { level: Math.max(0, levelAt(bucket, perMinute, now) - n), at: now };
}

/**
 * How much notify budget an isolate takes at once beyond what it needs (issue 12: at most a
 * second's worth, or a tenth of the limit, whichever is less; at least 1), so most notifies are
 * admitted from the lease without asking the tenant's limiter.
 */
export const leaseSize = (perMinute: number) => Math.max(1, Math.min(Math.ceil(perMinute / 60), Math.floor(perMinute / 10)));

/** A socket's frame allowance: `tokens` left as of `at`; refills at `perSecond` up to `burst`. */
export interface FrameAllowance {
  tokens: number;
  at: number;
}

/** Spends one frame at `now`; `ok: false` when the allowance is used up (the socket is closed 1008). */
export function spendFrame(allowance: FrameAllowance | undefined, burst: number, perSecond: number, now: number): { ok: boolean; allowance: FrameAllowance } {
  const tokens = allowance === undefined ? burst : Math.min(burst, allowance.tokens + (Math.max(0, now - allowance.at) * perSecond) / 1000);
  if (tokens < 1) return { ok: false, allowance: { tokens, at: now } };
  return { ok: true, allowance: { tokens: tokens - 1, at: now } };
}
