/**
 * Which credential a principal presented, as a tag a WebSocket carries, so that revoking the
 * credential (token rotation, a grant key removed) closes exactly the sockets opened with it.
 *
 * Tags: `cred:notify:<hash prefix>` (the notify token), `cred:hs256:<fingerprint>` (grants signed
 * with the grant secret), `cred:kid:<kid>` (grants signed with a registered key, ES256/EdDSA).
 */
import { keyringOf, type Keyring } from "../crypto/sealed";
import { sha256Hex } from "../crypto/secrets";
import { getTenant, openGrantSecret, type TenantRow } from "../store/tenants";
import type { GrantKey } from "./grant";

export const notifyTokenTag = (notifyTokenHash: string) => `cred:notify:${notifyTokenHash.slice(0, 32)}`;

/** A fingerprint, never the secret: tags are visible to whoever lists a hub's sockets. */
export const grantSecretTag = async (grantSecret: string) => `cred:hs256:${(await sha256Hex(`grant secret\n${grantSecret}`)).slice(0, 32)}`;

/** A registered key is named by kid and key material, so replacing a kid's key revokes it too. */
export const grantKeyTag = async (key: GrantKey) => `cred:kid:${key.kid}:${(await sha256Hex(JSON.stringify(key.jwk))).slice(0, 16)}`;

export function grantKeysOf(row: Pick<TenantRow, "grant_keys">): GrantKey[] {
  try {
    const keys = JSON.parse(row.grant_keys) as unknown;
    return Array.isArray(keys) ? (keys as GrantKey[]) : [];
  } catch {
    return [];
  }
}

/** Every credential the tenant's row accepts now, as tags. */
export async function currentCredentialTags(keyring: Keyring, row: TenantRow): Promise<Set<string>> {
  return new Set([
    notifyTokenTag(row.notify_token_hash),
    await grantSecretTag(await openGrantSecret(keyring, row)),
    ...(await Promise.all(grantKeysOf(row).map(grantKeyTag))),
  ]);
}

/**
 * Whether a socket may still open with this credential: read from D1 at the moment the TopicHub
 * accepts it, so a handshake authorised just before a rotation (or a disable) is refused.
 */
export async function credentialStillValid(env: Env, tenantId: string, tag: string): Promise<boolean> {
  const row = await getTenant(env.DB, tenantId);
  if (row === null || row.disabled_at !== null) return false;
  return (await currentCredentialTags(await keyringOf(env), row)).has(tag);
}
