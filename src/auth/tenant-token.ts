import { randomHex, randomToken } from "../crypto/secrets";

/**
 * Tenant notify tokens carry the tenant id, so a token is checked against one stored hash (in
 * constant time) instead of being looked up by value: `pdn_<tenant id>_<43 base64url chars>`.
 */
/** A tenant id as newTenantId makes it: 12 random bytes, hex. */
export const TENANT_ID = /^[0-9a-f]{24}$/;

const TOKEN = /^pdn_([0-9a-f]{24})_[A-Za-z0-9_-]{43}$/;

export const newTenantId = () => randomHex(12);

export const newNotifyToken = (tenantId: string) => `pdn_${tenantId}_${randomToken(32)}`;

/** HS256 key material for client grants, used as the UTF-8 bytes of this string. */
export const newGrantSecret = () => randomToken(32);

export function tenantIdOfToken(token: string): string | null {
  return TOKEN.exec(token)?.[1] ?? null;
}

export const isTenantToken = (token: string) => token.startsWith("pdn_");
