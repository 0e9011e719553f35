/** A tenant's registered grant keys: the public JWKs it signs ES256/EdDSA grants with, checked and stripped on the way in. */
import { importJWK } from "jose";
import { badRequest } from "../errors";
import { decodeBase64url } from "../crypto/base64url";
import type { GrantKey } from "./grant";

/** Enough for a rotation (old and new key) across several signing services, few enough to try cheaply. */
export const MAX_GRANT_KEYS = 10;

/** A `kid` is matched exactly against the grant header and shown back to operators, so it stays plain. */
const KID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The key types a grant may be signed with, by `kty` and `crv` (RFC 7518 §6.2, RFC 8037 §2), with
 * the `alg` a JWK may state for them and the length of each coordinate in bytes.
 */
const CURVES = [
  { kty: "EC", crv: "P-256", alg: "ES256", algNames: ["ES256"], coordinates: ["x", "y"], bytes: 32 },
  // RFC 8037 names the algorithm EdDSA; RFC 9864 adds the fully specified "Ed25519".
  { kty: "OKP", crv: "Ed25519", alg: "EdDSA", algNames: ["EdDSA", "Ed25519"], coordinates: ["x"], bytes: 32 },
] as const;

/**
 * Private members of EC, OKP and RSA keys (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2). A private key
 * sent here has leaked to us; refusing it tells the tenant so, instead of storing a secret.
 */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

const invalid = (field: string, message: string) => badRequest("invalid_grant_key", `${field}: ${message}`);

/**
 * Checks the body of `PUT /v1/admin/tenants/{id}/grant-keys`, `{"keys": [JWK, ...]}`, and returns
 * each key with only the members verification needs. `[]` is valid: it clears the keys. Every key
 * is imported once here, so a key that is stored always imports when a grant names it.
 */
export async function parseGrantKeys(body: unknown): Promise<GrantKey[]> {
  if (!isObject(body)) throw invalid("body", 'must be a JSON object {"keys": [JWK, ...]}');
  const keys = body.keys;
  if (!Array.isArray(keys)) throw invalid("keys", "must be an array of public JWKs");
  if (keys.length > MAX_GRANT_KEYS) throw invalid("keys", `at most ${MAX_GRANT_KEYS} keys (got ${keys.length})`);
  const parsed: GrantKey[] = [];
  for (const [index, jwk] of keys.entries()) {
    const key = await parseGrantKey(jwk, `keys[${index}]`);
    const first = parsed.findIndex((other) => other.kid === key.kid);
    if (first !== -1) throw invalid(`keys[${index}].kid`, `${JSON.stringify(key.kid)} is already the kid of keys[${first}]`);
    parsed.push(key);
  }
  return parsed;
}

async function parseGrantKey(jwk: unknown, field: string): Promise<GrantKey> {
  if (!isObject(jwk)) throw invalid(field, "must be a JWK object");
  const secret = PRIVATE_MEMBERS.find((member) => member in jwk);
  if (secret !== undefined) throw invalid(`${field}.${secret}`, "this is a private or secret key; register only the public key");

  const curve = CURVES.find((c) => c.kty === jwk.kty);
  if (curve === undefined) throw invalid(`${field}.kty`, `must be "EC" (P-256) or "OKP" (Ed25519), not ${JSON.stringify(jwk.kty ?? null)}`);
  if (jwk.crv !== curve.crv) throw invalid(`${field}.crv`, `must be "${curve.crv}" for kty "${curve.kty}", not ${JSON.stringify(jwk.crv ?? null)}`);

  if (typeof jwk.kid !== "string" || !KID.test(jwk.kid)) {
    throw invalid(`${field}.kid`, "must be 1–64 characters of A–Z, a–z, 0–9, '.', '_' and '-'");
  }
  if (jwk.alg !== undefined && !(curve.algNames as readonly unknown[]).includes(jwk.alg)) {
    throw invalid(`${field}.alg`, `${JSON.stringify(jwk.alg)} does not match a ${curve.crv} key; use ${curve.algNames.map((a) => `"${a}"`).join(" or ")} or leave it out`);
  }
  if (jwk.use !== undefined && jwk.use !== "sig") throw invalid(`${field}.use`, `must be "sig" for a grant key, not ${JSON.stringify(jwk.use)}`);

  const publicKey: JsonWebKey = { kty: curve.kty, crv: curve.crv };
  for (const name of curve.coordinates) {
    const value = jwk[name];
    // JWK coordinates are unpadded base64url (RFC 7517 §2, "Base64url Encoding").
    const bytes = typeof value === "string" && !value.includes("=") ? decodeBase64url(value) : null;
    if (bytes === null || bytes.length !== curve.bytes) {
      throw invalid(`${field}.${name}`, `must be ${curve.bytes} bytes in unpadded base64url`);
    }
    publicKey[name] = value as string;
  }
  try {
    // Decoding is not enough: the EC point must lie on the curve, which only an import proves.
    await importJWK({ ...publicKey }, curve.alg);
  } catch {
    throw invalid(field, `is not a valid ${curve.crv} public key`);
  }
  return { kid: jwk.kid, alg: curve.alg, jwk: publicKey };
}

/** The keys as the admin API shows them: which kids are registered, for which algorithm. */
export function grantKeysJson(keys: GrantKey[]): { kid: string; alg: GrantKey["alg"] }[] {
  return keys.map(({ kid, alg }) => ({ kid, alg }));
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
