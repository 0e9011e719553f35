/** Client grants: the JWTs a tenant mints for its users, read and verified against that tenant's secret or keys. */
import { compactVerify, errors, importJWK, type JWK } from "jose";
import { ApiError, CredentialRefused } from "../errors";
import { decodeBase64url } from "../crypto/base64url";
import { topicProblem } from "../topic";

/** A public key a tenant registered for grants (src/auth/grant-keys.ts checks it on the way in). */
export interface GrantKey {
  kid: string;
  alg: "ES256" | "EdDSA";
  /** The public members only: kty, crv, x and (for EC) y. */
  jwk: JsonWebKey;
}

export type GrantAlgorithm = "HS256" | "ES256" | "EdDSA";

export interface GrantClaims {
  iss: string;
  sub: string;
  topics: string[];
  /** `exp`, Unix seconds */
  exp: number;
  /** The registered key that verified the grant; null for HS256 (the grant secret). */
  kid: string | null;
  alg: GrantAlgorithm;
}

export interface GrantTenant {
  id: string;
  grantSecret: string;
  grantKeys: GrantKey[];
}

export interface GrantOptions {
  nowSeconds: number;
  /** How long a grant may live: `exp` at most this far ahead of now (plus the skew), and `exp - iat` at most this. */
  maxGrantSeconds: number;
}

/**
 * The algorithms a grant may name, compared exactly (RFC 7515 §4.1.1: `alg` is case-sensitive).
 * HS256 is the tenant's shared grant secret; ES256 and EdDSA are keys the tenant registered, so
 * it can mint grants without holding a secret the director also holds.
 */
const ALGORITHMS: readonly GrantAlgorithm[] = ["HS256", "ES256", "EdDSA"];

/**
 * Headers that carry or point to a key (RFC 7515 §4.1.2–4.1.6). A verifier that honoured them
 * would let the token choose its own key; the key always comes from the tenant, so a token that
 * offers one is refused rather than ignored, and nothing is ever fetched.
 */
const EMBEDDED_KEY_HEADERS = ["jwk", "jku", "x5u", "x5c"] as const;

/** Clocks of tenant and director may differ by this much (`nbf`, `iat`, and the upper bound of `exp`). */
const SKEW_SECONDS = 60;

/** A JWT claims set (RFC 7519 §4), as decoded: nothing in it is trusted to have a type. */
type Claims = Record<string, unknown>;

/** Anything short of a verified grant (an expired one aside) is refused, and counts as a failed authentication. */
const refuse = (message: string) => new CredentialRefused(401, "invalid_grant", message);

interface DecodedGrant {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

/** Decodes the JWS Compact Serialization (RFC 7515 §7.1) without verifying anything. */
function decodeGrant(token: string): DecodedGrant {
  const segments = token.split(".");
  if (segments.length !== 3) {
    throw refuse(`the bearer token is neither a tenant token nor a JWT grant: a JWT has 3 dot-separated segments, this has ${segments.length}`);
  }
  return { header: decodeSegment(segments[0], "header"), payload: decodeSegment(segments[1], "payload") };
}

function decodeSegment(segment: string, what: "header" | "payload"): Record<string, unknown> {
  const bytes = decodeBase64url(segment);
  // RFC 7515 §2: base64url here is without padding.
  if (bytes === null || segment.includes("=")) throw refuse(`the grant's ${what} is not base64url`);
  return jsonObject(bytes, what);
}

function jsonObject(bytes: Uint8Array, what: "header" | "payload"): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch {
    throw refuse(`the grant's ${what} is not UTF-8 JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw refuse(`the grant's ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Checks the protected header: an accepted `alg`, no `crit`, no key of the token's own. */
function checkHeader(header: Record<string, unknown>): { alg: GrantAlgorithm; kid: string | null } {
  const alg = header.alg;
  if (!ALGORITHMS.includes(alg as GrantAlgorithm)) {
    throw refuse(`grant algorithm ${JSON.stringify(alg ?? null)} is not accepted; use ${ALGORITHMS.join(", ")}`);
  }
  // RFC 7515 §4.1.11: a verifier must refuse a `crit` extension it does not understand; we understand none.
  if ("crit" in header) throw refuse("the grant's header has `crit`; no JWS extensions are accepted");
  for (const name of EMBEDDED_KEY_HEADERS) {
    if (name in header) throw refuse(`the grant's header has \`${name}\`; keys are never taken from the token, register them with the director`);
  }
  if (alg === "HS256") return { alg, kid: null };
  if (typeof header.kid !== "string" || header.kid === "") throw refuse(`a ${alg} grant needs a \`kid\` header naming one of the tenant's registered keys`);
  return { alg: alg as GrantAlgorithm, kid: header.kid };
}

/** Reads `iss` without trusting it yet: it says whose secret or keys verify the grant. The header is checked already. */
export function grantIssuer(token: string): string {
  const { header, payload } = decodeGrant(token);
  checkHeader(header);
  if (typeof payload.iss !== "string" || payload.iss === "") throw refuse("grant has no `iss` (the tenant id)");
  return payload.iss;
}

/**
 * Verifies a client grant for `tenant`: header, signature (HS256 with the grant secret, ES256 or
 * EdDSA with the registered key its `kid` names), then every claim. Any refusal is a 401, and so
 * is anything unexpected: a grant is either verified or refused, never a 500.
 */
export async function verifyGrant(token: string, tenant: GrantTenant, options: GrantOptions): Promise<GrantClaims> {
  try {
    return await verify(token, tenant, options);
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw refuse("the client grant could not be verified");
  }
}

async function verify(token: string, tenant: GrantTenant, options: GrantOptions): Promise<GrantClaims> {
  const { alg, kid } = checkHeader(decodeGrant(token).header);
  const key = await verificationKey(alg, kid, tenant);
  let verified: Uint8Array;
  try {
    // jose checks the signature and the algorithm only; the claims are checked once, in checkClaims,
    // on exactly the bytes the signature covers (jwtVerify would check exp/nbf a second way).
    ({ payload: verified } = await compactVerify(token, key, { algorithms: [alg] }));
  } catch (error) {
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      throw refuse(
        kid === null
          ? "the client grant's signature does not verify with this tenant's grant secret"
          : `the client grant's signature does not verify with the tenant's key ${JSON.stringify(kid)}`,
      );
    }
    if (error instanceof errors.JOSEError) throw refuse(`invalid client grant: ${error.message}`);
    throw error;
  }
  return { ...checkClaims(jsonObject(verified, "payload"), tenant.id, options), kid, alg };
}

async function verificationKey(alg: GrantAlgorithm, kid: string | null, tenant: GrantTenant) {
  if (alg === "HS256") return new TextEncoder().encode(tenant.grantSecret);
  const registered = tenant.grantKeys.find((key) => key.kid === kid);
  if (registered === undefined) throw refuse(`the tenant has no registered grant key ${JSON.stringify(kid)}`);
  // A key registered for one algorithm never verifies another (RFC 8725 §3.1).
  if (registered.alg !== alg) throw refuse(`the tenant's grant key ${JSON.stringify(kid)} is for ${registered.alg}, not ${alg}`);
  return importJWK(registered.jwk as JWK, alg);
}

/**
 * The claims of a grant whose signature verified: issued by this tenant, for a user whose name is
 * as safe as a topic (it reaches logs and limits), for at least one valid topic, and short-lived:
 * `exp` is required and at most `maxGrantSeconds` (plus skew) ahead, so a leaked grant cannot
 * outlive a rotation by years.
 */
function checkClaims(payload: Claims, tenantId: string, options: GrantOptions): Omit<GrantClaims, "kid" | "alg"> {
  const { nowSeconds: now, maxGrantSeconds } = options;
  if (payload.iss !== tenantId) throw refuse(`grant \`iss\` ${JSON.stringify(payload.iss ?? null)} is not this tenant`);

  const sub: unknown = payload.sub;
  const subProblem = typeof sub === "string" ? topicProblem(sub) : "must be a string";
  if (subProblem !== null) throw refuse(`grant \`sub\` ${subProblem}`);

  const exp = numericDate(payload, "exp");
  if (exp === undefined) throw refuse("grant `exp` is required");
  if (exp <= now) throw new ApiError(401, "grant_expired", "the client grant has expired");
  if (exp > now + maxGrantSeconds + SKEW_SECONDS) {
    throw refuse(`grant \`exp\` is too far ahead: a grant lives at most ${maxGrantSeconds} seconds`);
  }
  const iat = numericDate(payload, "iat");
  if (iat !== undefined) {
    if (iat > now + SKEW_SECONDS) throw refuse("grant `iat` is in the future");
    if (exp - iat > maxGrantSeconds) throw refuse(`grant \`exp\` - \`iat\` exceeds ${maxGrantSeconds} seconds`);
  }
  const nbf = numericDate(payload, "nbf");
  if (nbf !== undefined && nbf > now + SKEW_SECONDS) throw refuse("grant `nbf` is in the future");

  return { iss: tenantId, sub: sub as string, topics: grantTopics(payload), exp };
}

/** A NumericDate claim (RFC 7519 §2): absent, or a finite number; anything else refuses the grant. */
function numericDate(payload: Claims, claim: "exp" | "iat" | "nbf"): number | undefined {
  const value: unknown = payload[claim];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) throw refuse(`grant \`${claim}\` must be a number of seconds`);
  return value;
}

/** `topics` (an array) and `topic` (one), together; each passes the topic rule, and there is at least one. */
function grantTopics(payload: Claims): string[] {
  const named: [string, unknown][] = [];
  if (payload.topics !== undefined) {
    if (!Array.isArray(payload.topics)) throw refuse("grant `topics` must be an array of topics");
    named.push(...payload.topics.map((topic, index): [string, unknown] => [`topics[${index}]`, topic]));
  }
  if (payload.topic !== undefined) named.push(["topic", payload.topic]);
  if (named.length === 0) throw refuse("grant names no topic: give `topics` or `topic`");
  for (const [name, topic] of named) {
    const problem = topicProblem(topic);
    if (problem !== null) throw refuse(`grant \`${name}\` ${problem}`);
  }
  return named.map(([, topic]) => topic as string);
}
