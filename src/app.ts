/** The Hono app: every route mounted, the body limit, URL decoding, and one error shape for all. */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { routePath } from "hono/route";
import { requestPoint, writePoint } from "./analytics";
import { MAX_BODY_BYTES } from "./config";
import { SecretsKeyMissing, SecretUndecryptable } from "./crypto/sealed";
import { ApiError } from "./errors";
import { authFailureLimit } from "./limits/auth-failures";
import { errorFields, log } from "./log";
import { operations } from "./openapi/operation";
import { REGISTRATIONS_PATH } from "./registering";
import { admin } from "./routes/admin";
import { adminGateway } from "./routes/admin-gateway";
import { adminUi } from "./routes/admin-ui";
import { dav } from "./routes/dav";
import { demo } from "./routes/demo";
import { discovery } from "./routes/discovery";
import { healthz } from "./routes/healthz";
import { notify } from "./routes/notify";
import { apiDocs } from "./routes/openapi";
import { properties } from "./routes/properties";
import { pushRegister } from "./routes/register";
import { registrations } from "./routes/registrations";
import { stats } from "./routes/stats";
import { subscriptions, unsubscribe } from "./routes/subscriptions";
import { websocket } from "./routes/websocket";
import type { AppEnv } from "./types";

function errorJson(c: Context, status: number, code: string, message: string, headers: Record<string, string> = {}, details: Record<string, unknown> = {}) {
  return c.json({ error: { code, message, ...details } }, status as 400, headers);
}

export const app = new Hono<AppEnv>();

/**
 * One log line per request, written after the answer. Only the matched pattern is logged, never
 * the path or query: both carry registration ids and `?access_token=` grants (RFC 6750 §5.3).
 */
app.use(async (c, next) => {
  const started = Date.now();
  await next();
  const request = { method: c.req.method, route: routePath(c, -1), status: c.res.status, ms: Date.now() - started, tenant: c.get("principal")?.tenant.id ?? null };
  log(c.env, request.status >= 500 ? "error" : "info", "request", { ...request });
  writePoint(c.env, requestPoint(request));
});

const apiBodyLimit = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: (c) => errorJson(c, 413, "body_too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`),
});

// The gateway streams a calendar's PUT through as it comes, and caps the XML it reads itself.
app.use((c, next) => (c.req.path.startsWith("/dav/") ? next() : apiBodyLimit(c, next)));

/**
 * Percent-encoding must decode to UTF-8 (RFC 3986 §2.5): otherwise the router would keep the
 * bytes as literal `%XX` text, and a topic in `?topic=` or a path would silently become another.
 */
app.use(async (c, next) => {
  const url = new URL(c.req.url);
  try {
    decodeURIComponent(url.pathname);
    decodeURIComponent(url.search);
  } catch {
    throw new ApiError(400, "invalid_url", "the URL's percent-encoding does not decode to UTF-8 (RFC 3986 §2.5)");
  }
  await next();
});

app.use(authFailureLimit);

app.get(
  "/",
  operations("Public")({ summary: "Who answers here", responses: { 200: { description: '{"service": "push-director", "discovery": …, "docs": "/docs"}', json: true } } }),
  (c) => c.json({ service: "push-director", discovery: "/.well-known/webdav-push", docs: "/docs" }),
);
app.route("/healthz", healthz);
app.route("/", apiDocs(() => app.routes));
app.route("/.well-known", discovery);
app.route("/demo", demo);
app.route("/v1/admin", admin);
app.route("/v1/admin/tenants", adminGateway);
app.route("/admin", adminUi);
app.route("/v1/notify", notify);
app.route("/v1/subscriptions", subscriptions);
app.route("/v1/unsubscribe", unsubscribe);
app.route(REGISTRATIONS_PATH, registrations);
app.route("/v1/ws", websocket);
app.route("/v1/register", pushRegister);
app.route("/v1/stats", stats);
app.route("/v1", properties);
// the push gateway: a tenant's own WebDAV server behind the director (issue 14)
app.route("/dav", dav);
// The early draft's paths (seed 002), as written: the same sub-apps, so the same auth, bodies and answers.
app.route("/notify", notify);
app.route("/subscribe", subscriptions);
app.route("/unsubscribe", unsubscribe);

app.notFound((c) => errorJson(c, 404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));

app.onError((error, c) => {
  if (error instanceof ApiError) return errorJson(c, error.status, error.code, error.message, error.headers, error.details);
  if (error instanceof HTTPException) return errorJson(c, error.status, "http_error", error.message || "request failed");
  // secrets at rest: never served in clear as a fallback, the operator is told instead
  if (error instanceof SecretsKeyMissing) {
    log(c.env, "error", "secrets_key_missing", { message: error.message });
    return errorJson(c, 503, "secrets_key_missing", "the director cannot read its stored secrets: SECRETS_KEY is not set (operator: see README, Security)");
  }
  if (error instanceof SecretUndecryptable) {
    // not the message: it names the row, and a subscription's row key holds its push URL
    log(c.env, "error", "secret_undecryptable", { route: routePath(c, -1) });
    return errorJson(c, 503, "secret_undecryptable", "a stored secret does not open with SECRETS_KEY or SECRETS_KEY_PREVIOUS");
  }
  log(c.env, "error", "unhandled_error", { route: routePath(c, -1), ...errorFields(error) });
  return errorJson(c, 500, "internal_error", "the director failed to handle this request");
});
