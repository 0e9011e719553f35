import type { TenantRow } from "./store/tenants";

/** Who is calling: the tenant with its notify token, or one of its users with a client grant. */
export type Principal =
  | { kind: "tenant"; tenant: TenantRow; credential: () => Promise<string> }
  | { kind: "grant"; tenant: TenantRow; sub: string; topics: string[]; expiresAt: number; credential: () => Promise<string> };
// `credential`: which token or key it presented, as a tag (src/auth/credential.ts)

/** The Hono environment of every sub-app. */
export type AppEnv = { Bindings: Env; Variables: { principal: Principal } };
