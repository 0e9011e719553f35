/** `GET /.well-known/webdav-push`: what a client or tenant needs to know before talking to us. */
import { Hono } from "hono";
import { MAX_BODY_BYTES, MAX_NOTIFY_BATCH, MAX_TOPIC_LENGTH, MIN_MAX_REGISTRATION_SECONDS, readConfig } from "../config";
import { defaultLimits } from "../limits/limits";
import { enabledServices, REGISTRATIONS_PATH } from "../registering";
import { currentVapidPublicKey } from "../store/vapid-keys";
import { PUSH_SERVICE_TABLE } from "../transports";
import type { AppEnv } from "../types";
import { SUBPROTOCOL } from "../hub/frames";
import { operations } from "../openapi/operation";

/** The draft revision whose wire formats (XML, headers, push messages) the director follows. */
export const DRAFT_VERSION = "draft-bitfire-webdav-push-00";

/** How each API authenticates: RFC 6750 Bearer, with which of the credentials the director knows. */
const BEARER = (...credentials: ("grant" | "notify_token" | "admin_token")[]) => ({ scheme: "Bearer", credentials });

export const discovery = new Hono<AppEnv>();

const operation = operations("Public");

discovery.get(
  "/webdav-push",
  operation({ summary: "Discovery: transports, endpoints, auth and limits", responses: { 200: { description: "what a client or tenant needs to know first", json: true } } }),
  async (c) => {
  const config = readConfig(c.env);
  const base = config.publicBaseUrl ?? new URL(c.req.url).origin;
  const transports: Record<string, unknown> = {};
  const context = { vapidPublicKey: await currentVapidPublicKey(c.env), requireEncryption: config.requireEncryption };
  // each push service says what a client needs of it (src/transports), nothing when not configured
  for (const service of PUSH_SERVICE_TABLE) Object.assign(transports, service.discovery(c.env, context));
  const ws = new URL("/v1/ws", base);
  ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
  transports.websocket = {
    url: ws.href,
    subprotocol: SUBPROTOCOL,
    auth: ["Authorization: Bearer", `Sec-WebSocket-Protocol: ${SUBPROTOCOL}, bearer.<grant>`, "?access_token="],
    replay: { max_messages: config.websocket.replaySize, max_seconds: config.websocket.replaySeconds },
  };
  const client = BEARER("grant", "notify_token");
  return c.json(
    {
      version: DRAFT_VERSION,
      service: "push-director",
      // what a subscription's push_services may name here, most preferred first
      push_service_preference: enabledServices(c.env),
      transports,
      endpoints: {
        notify: `${base}/v1/notify`,
        subscriptions: `${base}/v1/subscriptions`,
        unsubscribe: `${base}/v1/unsubscribe`,
        registrations: `${base}${REGISTRATIONS_PATH}`,
        register: `${base}/v1/register`,
        transports_xml: `${base}/v1/transports.xml`,
        // the early draft's paths, the same APIs
        early_draft: { notify: `${base}/notify`, subscribe: `${base}/subscribe`, unsubscribe: `${base}/unsubscribe` },
      },
      auth: {
        notify: BEARER("notify_token"),
        // /v1/subscriptions, /v1/unsubscribe and the early draft's /subscribe and /unsubscribe
        subscriptions: client,
        register: client,
        // a registration URL is a capability: DELETE needs no credentials
        registrations: { ...client, delete: { credentials: [] } },
        websocket: client,
        admin: BEARER("admin_token"),
      },
      limits: {
        max_registration_seconds: config.maxRegistrationSeconds,
        min_honoured_registration_seconds: MIN_MAX_REGISTRATION_SECONDS,
        notify_batch_max: MAX_NOTIFY_BATCH,
        max_topic_length: MAX_TOPIC_LENGTH,
        max_body_bytes: MAX_BODY_BYTES,
        // every tenant's limits unless the operator set its own (README: Quotas and rate limits)
        default_quotas: defaultLimits(c.env),
        ws_frame_burst: config.websocket.frameBurst,
        ws_frames_per_second: config.websocket.framesPerSecond,
      },
    },
    200,
    { "Cache-Control": "public, max-age=300" },
  );
});
