import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { MAX_BODY_BYTES } from "./config";
import { ApiError } from "./errors";
import { admin } from "./routes/admin";
import { demo } from "./routes/demo";
import { discovery } from "./routes/discovery";
import { notify } from "./routes/notify";
import { properties } from "./routes/properties";
import { pushRegister } from "./routes/register";
import { registrations } from "./routes/registrations";
import { subscriptions } from "./routes/subscriptions";
import { websocket } from "./routes/websocket";
import type { AppEnv } from "./types";

function errorJson(c: Context, status: number, code: string, message: string, headers: Record<string, string> = {}) {
  return c.json({ error: { code, message } }, status as 400, headers);
}

export const app = new Hono<AppEnv>();

app.use(
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) => errorJson(c, 413, "body_too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`),
  }),
);

app.get("/", (c) => c.json({ service: "push-director", discovery: "/.well-known/webdav-push" }));
app.route("/.well-known", discovery);
app.route("/demo", demo);
app.route("/v1/admin", admin);
app.route("/v1/notify", notify);
app.route("/v1/subscriptions", subscriptions);
app.route("/v1/registrations", registrations);
app.route("/v1/ws", websocket);
app.route("/v1/register", pushRegister);
app.route("/v1", properties);

app.notFound((c) => errorJson(c, 404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));

app.onError((error, c) => {
  if (error instanceof ApiError) return errorJson(c, error.status, error.code, error.message, error.headers);
  if (error instanceof HTTPException) return errorJson(c, error.status, "http_error", error.message || "request failed");
  console.error("unhandled error", error);
  return errorJson(c, 500, "internal_error", "the director failed to handle this request");
});
