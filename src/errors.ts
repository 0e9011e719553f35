import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * The one error type of the API: an HTTP status, a machine-readable code and a sentence for
 * people. `app.onError` turns it into `{ error: { code, message } }`.
 */
export class ApiError extends HTTPException {
  readonly code: string;
  readonly headers: Record<string, string>;
  /** More machine-readable members of the error object (a quota's `limit` and `max`). */
  readonly details: Record<string, unknown>;

  constructor(status: ContentfulStatusCode, code: string, message: string, headers: Record<string, string> = {}, details: Record<string, unknown> = {}) {
    super(status, { message });
    this.code = code;
    this.headers = headers;
    this.details = details;
  }
}

export const badRequest = (code: string, message: string) => new ApiError(400, code, message);

/**
 * A credential that was presented and failed to verify: a wrong admin or notify token, a grant
 * naming no tenant or not verifying. Only these count against the client IP's failed
 * authentications (src/limits/auth-failures.ts); a missing token or an expired grant whose
 * signature verified is a plain ApiError, since neither is a guess at a secret.
 */
export class CredentialRefused extends ApiError {}

const BEARER_CHALLENGE = { "WWW-Authenticate": 'Bearer realm="push-director"' };

export const unauthorized = (message: string) => new ApiError(401, "unauthorized", message, BEARER_CHALLENGE);

/** `unauthorized`, for a token that was sent and is wrong. */
export const invalidToken = (message: string) => new CredentialRefused(401, "unauthorized", message, BEARER_CHALLENGE);

export const forbidden = (code: string, message: string) => new ApiError(403, code, message);

export const notFound = (what: string) => new ApiError(404, "not_found", `${what} not found`);
