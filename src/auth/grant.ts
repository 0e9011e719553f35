import { decodeJwt, decodeProtectedHeader, errors, jwtVerify } from "jose";
import { ApiError, unauthorized } from "../errors";
import { MAX_TOPIC_LENGTH } from "../config";

export interface GrantClaims {
  iss: string;
  sub: string;
  topics: string[];
  /** `exp`, Unix seconds */
  exp: number;
}

/** Reads `iss` without trusting it yet: it says whose secret verifies the grant. */
export function grantIssuer(token: string): string {
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(token);
    claims = decodeJwt(token);
  } catch {
    throw new ApiError(401, "invalid_grant", "the bearer token is neither a tenant token nor a well-formed JWT grant");
  }
  if (header.alg !== "HS256") {
    throw new ApiError(401, "invalid_grant", `grant algorithm ${JSON.stringify(header.alg ?? null)} is not accepted; use HS256`);
  }
  if (typeof claims.iss !== "string" || claims.iss === "") {
    throw new ApiError(401, "invalid_grant", "grant has no `iss` (the tenant id)");
  }
  return claims.iss;
}

/** Verifies an HS256 client grant against the tenant's grant secret (signature, `exp`, `iss`). */
export async function verifyGrant(token: string, tenantId: string, grantSecret: string): Promise<GrantClaims> {
  let payload: Awaited<ReturnType<typeof jwtVerify>>["payload"];
  try {
    ({ payload } = await jwtVerify(token, new TextEncoder().encode(grantSecret), {
      algorithms: ["HS256"],
      issuer: tenantId,
      requiredClaims: ["exp", "sub"],
    }));
  } catch (error) {
    if (error instanceof errors.JWTExpired) throw new ApiError(401, "grant_expired", "the client grant has expired");
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      throw new ApiError(401, "invalid_grant", "the client grant's signature does not verify with this tenant's grant secret");
    }
    if (error instanceof errors.JOSEError) throw new ApiError(401, "invalid_grant", `invalid client grant: ${error.message}`);
    throw unauthorized("invalid client grant");
  }
  if (typeof payload.sub !== "string" || payload.sub === "") {
    throw new ApiError(401, "invalid_grant", "grant `sub` must be a non-empty string");
  }
  return { iss: tenantId, sub: payload.sub, topics: grantTopics(payload), exp: payload.exp! };
}

function grantTopics(payload: Record<string, unknown>): string[] {
  const topics: unknown[] = [];
  if (payload.topics !== undefined) {
    if (!Array.isArray(payload.topics)) throw new ApiError(401, "invalid_grant", "grant `topics` must be an array of strings");
    topics.push(...payload.topics);
  }
  if (payload.topic !== undefined) topics.push(payload.topic);
  for (const topic of topics) {
    if (typeof topic !== "string" || topic === "" || topic.length > MAX_TOPIC_LENGTH) {
      throw new ApiError(401, "invalid_grant", "grant topics must be non-empty strings");
    }
  }
  return topics as string[];
}
