import { createMiddleware } from "hono/factory";
import { readConfig } from "../config";
import { keyringOf } from "../crypto/sealed";
import { ApiError, CredentialRefused, forbidden, invalidToken, unauthorized } from "../errors";
import { matchesHash, secretsEqual } from "../crypto/secrets";
import { nowSeconds } from "../expiry";
import { cachedTenant } from "../store/tenant-cache";
import { openGrantSecret } from "../store/tenants";
import type { AppEnv, Principal } from "../types";
import { grantKeysOf, grantKeyTag, grantSecretTag, notifyTokenTag } from "./credential";
import { grantIssuer, verifyGrant } from "./grant";
import { isTenantToken, TENANT_ID, tenantIdOfToken } from "./tenant-token";

/** The token of an RFC 6750 `Authorization: Bearer` header, or undefined. */
export const bearerOf = (header: string | undefined): string | undefined => /^Bearer[ \t]+(\S+)\s*$/i.exec(header ?? "")?.[1];

/** The bearer token, or a 401 that says how to send one. */
export function bearer(header: string | undefined, hint = "send `Authorization: Bearer <token>`"): string {
  const token = bearerOf(header);
  if (token === undefined) throw unauthorized(hint);
  return token;
}

/** Operator routes: the ADMIN_TOKEN secret, compared in constant time. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const expected = c.env.ADMIN_TOKEN ?? "";
  if (expected === "") throw new ApiError(503, "admin_disabled", "the admin API is off: ADMIN_TOKEN is not set");
  if (!(await secretsEqual(bearer(c.req.header("Authorization")), expected))) throw invalidToken("invalid admin token");
  await next();
});

/** Who presents this token: the tenant (notify token) or one of its users (client grant). */
export async function authenticate(env: Env, token: string): Promise<Principal> {
  if (isTenantToken(token)) {
    const tenantId = tenantIdOfToken(token);
    const tenant = tenantId === null ? null : await cachedTenant(env, tenantId);
    if (tenant === null || !(await matchesHash(token, tenant.notify_token_hash))) throw invalidToken("invalid tenant token");
    const tag = notifyTokenTag(tenant.notify_token_hash);
    return { kind: "tenant", tenant, credential: async () => tag };
  }
  const issuer = grantIssuer(token);
  const tenant = TENANT_ID.test(issuer) ? await cachedTenant(env, issuer) : null;
  if (tenant === null) throw new CredentialRefused(401, "unknown_tenant", `no tenant ${JSON.stringify(issuer)} (the grant's iss)`);
  const grantSecret = await openGrantSecret(await keyringOf(env), tenant);
  const grantKeys = grantKeysOf(tenant);
  const grant = await verifyGrant(
    token,
    { id: tenant.id, grantSecret, grantKeys },
    { nowSeconds: nowSeconds(), maxGrantSeconds: readConfig(env).maxGrantSeconds },
  );
  const key = grant.kid === null ? undefined : grantKeys.find((k) => k.kid === grant.kid);
  // hashed only when a socket needs the tag, not on every grant-authenticated request
  const credential = () => (key === undefined ? grantSecretTag(grantSecret) : grantKeyTag(key));
  return { kind: "grant", tenant, sub: grant.sub, topics: grant.topics, expiresAt: grant.exp, credential };
}

/** Routes a tenant or one of its users may call; sets `principal`. */
export const requireTenantOrGrant = createMiddleware<AppEnv>(async (c, next) => {
  const principal = await authenticate(c.env, bearer(c.req.header("Authorization")));
  if (principal.tenant.disabled_at !== null) throw forbidden("tenant_disabled", "this tenant is disabled");
  c.set("principal", principal);
  await next();
});

/** Routes only the tenant may call (notify). */
export const requireTenant = createMiddleware<AppEnv>(async (c, next) => {
  const principal = await authenticate(c.env, bearer(c.req.header("Authorization")));
  if (principal.kind !== "tenant") {
    throw forbidden("tenant_token_required", "this route needs the tenant's notify token, not a client grant");
  }
  if (principal.tenant.disabled_at !== null) throw forbidden("tenant_disabled", "this tenant is disabled");
  c.set("principal", principal);
  await next();
});
