/**
 * A tenant's quotas (issue 12): five limits, each the tenant's own (`tenant_limits`, set by
 * `PUT /v1/admin/tenants/{id}/limits`) or, where that is NULL, the default from `[vars]`.
 */
import { ApiError } from "../errors";
import type { TenantRow } from "../store/tenants";

export const LIMIT_NAMES = ["registrations", "registrations_per_user", "notify_per_minute", "sockets", "sockets_per_user"] as const;

export type LimitName = (typeof LIMIT_NAMES)[number];

export type Limits = Record<LimitName, number>;

/** The largest value a limit takes (and a default var is clamped to). */
export const MAX_LIMIT = 1_000_000_000;

/** What `[vars]` names each default, and its value when the var is absent or unreadable. */
const DEFAULTS: Record<LimitName, { variable: keyof Env; fallback: number; min: number }> = {
  registrations: { variable: "TENANT_MAX_REGISTRATIONS", fallback: 100_000, min: 0 },
  registrations_per_user: { variable: "USER_MAX_REGISTRATIONS", fallback: 1_000, min: 0 },
  // a bucket that holds nothing would refuse every notify forever
  notify_per_minute: { variable: "TENANT_NOTIFY_PER_MINUTE", fallback: 6_000, min: 1 },
  sockets: { variable: "TENANT_MAX_SOCKETS", fallback: 10_000, min: 0 },
  sockets_per_user: { variable: "USER_MAX_SOCKETS", fallback: 100, min: 0 },
};

/** The least each limit may be set to. */
export const minLimit = (name: LimitName) => DEFAULTS[name].min;

/** The five defaults, from `[vars]`. */
export function defaultLimits(env: Env): Limits {
  const out = {} as Limits;
  for (const name of LIMIT_NAMES) {
    const { variable, fallback, min } = DEFAULTS[name];
    const n = Number(env[variable] ?? "");
    out[name] = Number.isInteger(n) && n >= min ? Math.min(n, MAX_LIMIT) : fallback;
  }
  return out;
}

/** The tenant's own values, as `tenant_limits` holds them (NULL: the default applies). */
export type StoredLimits = Record<LimitName, number | null>;

/** The columns `getTenant` reads from `tenant_limits` with the tenant (one query, a JOIN). */
export const storedLimitsOf = (row: TenantRow): StoredLimits => ({
  registrations: row.limit_registrations,
  registrations_per_user: row.limit_registrations_per_user,
  notify_per_minute: row.limit_notify_per_minute,
  sockets: row.limit_sockets,
  sockets_per_user: row.limit_sockets_per_user,
});

/** The limits in force for a tenant: its own, else the default. */
export function limitsOf(env: Env, row: TenantRow): Limits {
  const stored = storedLimitsOf(row);
  const defaults = defaultLimits(env);
  const out = {} as Limits;
  for (const name of LIMIT_NAMES) out[name] = stored[name] ?? defaults[name];
  return out;
}

/** What each limit counts, and per whom, in the words of a refusal. */
const WORDING: Record<LimitName, string> = {
  registrations: "registration limit reached: {max} per tenant",
  registrations_per_user: "registration limit reached: {max} per user",
  notify_per_minute: "notify limit: {max} changes per minute",
  sockets: "socket limit reached: {max} per tenant",
  sockets_per_user: "socket limit reached: {max} per user",
};

/** The sentence that names a limit and its value (a JSON message, an XML responsedescription). */
export const limitMessage = (limit: LimitName, max: number) => WORDING[limit].replace("{max}", String(max));

/** 429 `quota_exceeded`: no slot left under `limit` (or a batch larger than the limit itself). */
export const quotaExceeded = (limit: LimitName, max: number, message = limitMessage(limit, max)) =>
  new ApiError(429, "quota_exceeded", message, {}, { limit, max });
