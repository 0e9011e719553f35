import { Hono } from "hono";
import { z } from "zod";
import { authenticate, bearerOf } from "../auth/middleware";
import { ApiError, forbidden, unauthorized } from "../errors";
import { isTenantToken } from "../auth/tenant-token";
import { openConnection } from "../hub/connections";
import { SUBPROTOCOL } from "../hub/frames";
import { hubConnectUrl, topicHub } from "../hub/topic-hub";
import { socketLimitsOf } from "../limits/socket-slots";
import type { AppEnv } from "../types";
import { parseWith, topicSchema } from "../validation";
import { operations } from "../openapi/operation";

/** Prefix of the subprotocol entry that carries the token: `Sec-WebSocket-Protocol: webdav-push, bearer.<token>`. */
const TOKEN_PREFIX = "bearer.";

/**
 * `?topic=` (and `?since=`): a socket of one topic. Without a topic: a connection of the early
 * draft's connection-ID flow, new, or `?connection_id=` to reconnect (any value: an unknown one
 * is a 404, never a 400).
 */
const query = z
  .object({
    topic: topicSchema.optional(),
    since: z.coerce.number().int().min(0).optional(),
    connection_id: z.string().optional(),
    access_token: z.string().min(1).optional(),
  })
  .refine((q) => q.topic !== undefined || q.since === undefined, { message: "since: only with a topic", path: ["since"] })
  .refine((q) => q.topic === undefined || q.connection_id === undefined, {
    message: "connection_id: a connection has no topic (its topics are attached through the Subscription API)",
    path: ["connection_id"],
  });

/**
 * A browser cannot set headers on a WebSocket handshake, so the token may come in the
 * `Authorization` header, as a `bearer.<token>` subprotocol next to `webdav-push`, or as the
 * `access_token` query parameter (RFC 6750 §2.3). URLs end up in logs and browser histories
 * (RFC 6750 §5.3), so the query takes only a short-lived grant, never the tenant's notify token.
 */
function tokenOf(authorization: string | undefined, protocols: string[], accessToken: string | undefined): string {
  const fromHeader = bearerOf(authorization);
  const fromProtocol = protocols.find((p) => p.startsWith(TOKEN_PREFIX))?.slice(TOKEN_PREFIX.length);
  const token = fromHeader ?? fromProtocol ?? accessToken;
  if (token === undefined || token === "") {
    throw unauthorized(`send the grant as Authorization: Bearer, as a "${TOKEN_PREFIX}<grant>" subprotocol, or as ?access_token=`);
  }
  if (token === accessToken && isTenantToken(token)) {
    throw new ApiError(401, "token_in_query", "a notify token must never travel in a URL: send it as Authorization: Bearer (?access_token= takes client grants only)", {
      "WWW-Authenticate": 'Bearer realm="push-director", error="invalid_request"',
    });
  }
  return token;
}

export const websocket = new Hono<AppEnv>();

const operation = operations("Client");

websocket.get(
  "/",
  operation({
    summary: "Live pushes over WebSocket (subprotocol webdav-push)",
    description: "With ?topic= a socket of one topic (?since= replays); without, a connection of the early draft's connection-ID flow. The grant may come as Authorization: Bearer, a bearer.<grant> subprotocol, or ?access_token= (grants only).",
    security: [["notifyToken"], ["clientGrant"]],
    query,
    responses: {
      101: { description: "switching protocols: frames hello, push, error (README)" },
      404: { description: "unknown connection_id" },
      426: { description: "upgrade_required: send Upgrade: websocket" },
    },
  }),
  async (c) => {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "upgrade_required", "this endpoint speaks WebSocket: send Upgrade: websocket", { Upgrade: "websocket" });
  }
  const { topic, since, connection_id: connectionId, access_token: accessToken } = parseWith(query, c.req.query());
  const protocols = (c.req.header("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  if (protocols.length > 0 && !protocols.includes(SUBPROTOCOL)) {
    throw new ApiError(400, "invalid_request", `offer the "${SUBPROTOCOL}" subprotocol (the one this endpoint answers with)`);
  }
  const principal = await authenticate(c.env, tokenOf(c.req.header("Authorization"), protocols, accessToken));
  if (principal.tenant.disabled_at !== null) throw forbidden("tenant_disabled", "this tenant is disabled");
  c.set("principal", principal);
  if (topic === undefined) return openConnection(c.env, principal, connectionId ?? null, protocols.length > 0 ? SUBPROTOCOL : null);
  if (principal.kind === "grant" && !principal.topics.includes(topic)) {
    throw forbidden("topic_not_granted", "the client grant does not cover this topic");
  }
  const hub = topicHub(c.env, principal.tenant.id, topic);
  const connect = hubConnectUrl({
    tenantId: principal.tenant.id,
    topic,
    owner: principal.kind === "grant" ? principal.sub : null,
    expiresAt: principal.kind === "grant" ? principal.expiresAt : null,
    credential: await principal.credential(),
    protocol: protocols.length > 0 ? SUBPROTOCOL : null,
    since: since ?? null,
    // the hub takes the socket's slot in the tenant's limiter under these limits (issue 12)
    socket: crypto.randomUUID(),
    limits: socketLimitsOf(c.env, principal.tenant),
  });
  return hub.fetch(connect, { headers: { Upgrade: "websocket" } });
});
