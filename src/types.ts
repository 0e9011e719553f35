import type { TenantRow } from "./store/tenants";

/** Who is calling: the tenant with its notify token, or one of its users with a client grant. */
export type Principal =
  | { kind: "tenant"; tenant: TenantRow }
  | { kind: "grant"; tenant: TenantRow; sub: string; topics: string[]; expiresAt: number };

/** The Hono environment of every sub-app. */
export type AppEnv = { Bindings: Env; Variables: { principal: Principal } };
