/**
 * The retry schedule of one target (issue 11): a temporary outcome is tried again after the push
 * resource's own Retry-After, else after a backoff of 1, 5, 15, 30 s, then doubling to at most
 * 300 s (±20 % jitter), for as long as the message lives; a next attempt past the message's
 * deadline (hub flush time + TTL) makes the target a dead letter at once, saying why.
 */

/** Backoff after the n-th failed attempt (1-based), before jitter. */
const BACKOFF_SECONDS = [1, 5, 15, 30];
export const MAX_BACKOFF_SECONDS = 300;
/** RFC 9110 §10.2.3 allows 0; a push service asking for it still gets a second's pause. */
export const MIN_RETRY_AFTER_SECONDS = 1;
/** Cloudflare Queues delay a message by at most 12 hours; longer waits are re-queued until due. */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

/** Backoff after failed attempt `attempt` (1-based), ±20 % by `random` in [0, 1): 1, 5, 15, 30, 60, 120, 240, 300, 300 … */
export function backoffSeconds(attempt: number, random: number = Math.random()): number {
  const base = attempt <= BACKOFF_SECONDS.length ? BACKOFF_SECONDS[Math.max(0, attempt - 1)] : Math.min(MAX_BACKOFF_SECONDS, 30 * 2 ** (attempt - BACKOFF_SECONDS.length));
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random)));
}

/** A seedable [0, 1) generator (mulberry32), so fault runs and tests repeat exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export type NextAttempt = { retryInSeconds: number } | { deadLetter: string };

/**
 * When to try a target again after temporary failure `attempt` (1-based) at `now` (Unix seconds),
 * or why it is a dead letter instead. `label` names the failure ("503", "network", "timeout").
 */
export function nextAttempt(options: {
  attempt: number;
  retryAfter: number | null;
  label: string;
  now: number;
  deadline: number;
  random?: number;
}): NextAttempt {
  const { attempt, retryAfter, label, now, deadline } = options;
  const asked = retryAfter !== null;
  const delay = asked ? Math.max(MIN_RETRY_AFTER_SECONDS, retryAfter) : backoffSeconds(attempt, options.random);
  const left = Math.max(0, deadline - now);
  if (now + delay > deadline) {
    const wait = asked ? `Retry-After ${delay} s` : `next attempt in ${delay} s`;
    return { deadLetter: `${label}; ${wait} is past the TTL (${left} s left)` };
  }
  return { retryInSeconds: delay };
}

/** The TTL a (re)sent message carries: the time it has left, never more than it asked for, at least 1 s. */
export const ttlLeft = (ttl: number, deadline: number, now: number): number => Math.max(1, Math.min(ttl, deadline - now));

/** What a queue delay can hold of a wait until `dueAt`: the rest is waited out by re-queueing. */
export const queueDelay = (dueAt: number, now: number): number => Math.max(0, Math.min(MAX_QUEUE_DELAY_SECONDS, dueAt - now));
