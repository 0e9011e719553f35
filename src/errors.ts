import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * The one error type of the API: an HTTP status, a machine-readable code and a sentence for
 * people. `app.onError` turns it into `{ error: { code, message } }`.
 */
export class ApiError extends HTTPException {
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: ContentfulStatusCode, code: string, message: string, headers: Record<string, string> = {}) {
    super(status, { message });
    this.code = code;
    this.headers = headers;
  }
}

export const badRequest = (code: string, message: string) => new ApiError(400, code, message);

export const unauthorized = (message: string) =>
  new ApiError(401, "unauthorized", message, { "WWW-Authenticate": 'Bearer realm="push-director"' });

export const forbidden = (code: string, message: string) => new ApiError(403, code, message);

export const notFound = (what: string) => new ApiError(404, "not_found", `${what} not found`);
