/**
 * Failed authentication per client IP (issue 12): past `AUTH_FAILURES_PER_MINUTE` credentials
 * from one `CF-Connecting-IP` that fail to verify in a minute, that IP's credentialed requests get
 * 429 until the minute ends. One Durable Object per IP counts; the isolate remembers the blocks it
 * learnt, so a blocked IP is refused before any D1 read, and a good request pays nothing.
 */
import { DurableObject } from "cloudflare:workers";
import { createMiddleware } from "hono/factory";
import { ApiError, CredentialRefused } from "../errors";
import type { AppEnv } from "../types";

export const WINDOW_MS = 60_000;

/** High, because a NAT's clients share one IP and the limit locks them all out for a minute. */
export const DEFAULT_AUTH_FAILURES_PER_MINUTE = 300;

/** `AUTH_FAILURES_PER_MINUTE`: an integer of at least 1, else the default. */
export function authFailuresPerMinute(env: Pick<Env, "AUTH_FAILURES_PER_MINUTE">): number {
  const n = Number(env.AUTH_FAILURES_PER_MINUTE ?? "");
  return Number.isInteger(n) && n >= 1 ? n : DEFAULT_AUTH_FAILURES_PER_MINUTE;
}

/** A fixed window: the failures counted since `start` (ms). */
export interface FailureWindow {
  start: number;
  count: number;
}

/**
 * Counts one failure at `now`: in the window, or in a new one when the last has ended. Past
 * `limit` in a window, the IP is blocked until that window ends (`blockedUntil`, ms), else null.
 */
export function countFailure(window: FailureWindow | undefined, now: number, limit: number): { window: FailureWindow; blockedUntil: number | null } {
  const current = window !== undefined && now < window.start + WINDOW_MS ? window : { start: now, count: 0 };
  const next = { start: current.start, count: current.count + 1 };
  return { window: next, blockedUntil: next.count > limit ? next.start + WINDOW_MS : null };
}

/** Whole seconds, at least 1, from `now` until `until` (RFC 9110 §10.2.3 delay-seconds). */
export const retryAfterSeconds = (until: number, now: number) => Math.max(1, Math.ceil((until - now) / 1000));

/** One client IP's failures; it only stores, `countFailure` decides. */
export class AuthFailures extends DurableObject<Env> {
  /** Counts a failure; the time (ms) until which the IP is blocked, or null. */
  async fail(limit: number): Promise<number | null> {
    const counted = countFailure(this.ctx.storage.kv.get<FailureWindow>("window"), Date.now(), limit);
    this.ctx.storage.kv.put("window", counted.window);
    // a new window: forget the IP when it ends, or every address that ever failed would keep storage
    if (counted.window.count === 1) await this.ctx.storage.setAlarm(counted.window.start + WINDOW_MS);
    return counted.blockedUntil;
  }

  /** Set for the end of the current window (a new window moves it), so nothing left is needed. */
  async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }
}

/** The blocks this isolate learnt: IP → until (ms), oldest first; bounded, so a spray of addresses cannot grow it. */
const blocks = new Map<string, number>();
const MAX_BLOCKS = 10_000;

function remember(ip: string, until: number): void {
  blocks.delete(ip);
  blocks.set(ip, until);
  if (blocks.size > MAX_BLOCKS) blocks.delete(blocks.keys().next().value!);
}

/** Until when (ms) this isolate knows `ip` to be blocked, or null. */
function blockedUntil(ip: string, now: number): number | null {
  const until = blocks.get(ip);
  if (until === undefined) return null;
  if (until > now) return until;
  blocks.delete(ip);
  return null;
}

const rateLimited = (limit: number, until: number, now: number) => {
  const seconds = retryAfterSeconds(until, now);
  return new ApiError(
    429,
    "rate_limited",
    `more than ${limit} credentials from this IP failed to verify in a minute (AUTH_FAILURES_PER_MINUTE); try again in ${seconds} s`,
    { "Retry-After": String(seconds) },
  );
};

/** A credential in any place a route reads one: the Authorization header, a `bearer.` subprotocol, `?access_token=`. */
function carriesCredential(request: Request): boolean {
  if (request.headers.has("Authorization")) return true;
  const protocols = request.headers.get("Sec-WebSocket-Protocol") ?? "";
  if (protocols.split(",").some((p) => p.trim().startsWith("bearer."))) return true;
  return new URL(request.url).searchParams.has("access_token");
}

/**
 * The guard: a request without `CF-Connecting-IP` or without a credential passes untouched. A
 * blocked IP's credentialed request is a 429 at once; otherwise the route runs, and only when it
 * refused a credential (`CredentialRefused`) is the IP's object told, with one call.
 */
export const authFailureLimit = createMiddleware<AppEnv>(async (c, next) => {
  const ip = c.req.header("CF-Connecting-IP");
  if (ip === undefined || !carriesCredential(c.req.raw)) return next();
  const limit = authFailuresPerMinute(c.env);
  const now = Date.now();
  const known = blockedUntil(ip, now);
  if (known !== null) throw rateLimited(limit, known, now);

  await next();
  // app.onError has answered the route's error by now and left it in c.error (hono's compose)
  if (!(c.error instanceof CredentialRefused)) return;
  const until = await c.env.AUTH_FAILURES.get(c.env.AUTH_FAILURES.idFromName(ip)).fail(limit);
  if (until === null) return;
  remember(ip, until);
  // dropped first: hono would copy the 401's headers (WWW-Authenticate) into the 429
  c.res = undefined;
  throw rateLimited(limit, until, Date.now());
});
