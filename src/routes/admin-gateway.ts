/**
 * `/v1/admin/tenants/{id}/gateway`: the tenant's push gateway (issue 14), its WebDAV server
 * proxied at `/dav/<id>/`. The poll password is kept sealed and never shown again; the topic key
 * is made once and kept by every later PUT, so a collection's topic never changes under clients.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireAdmin } from "../auth/middleware";
import { readConfig } from "../config";
import { encodeBase64url } from "../crypto/base64url";
import { keyringOf } from "../crypto/sealed";
import { notFound } from "../errors";
import { nowSeconds } from "../expiry";
import { checkGatewayOrigin } from "../gateway/origin";
import { gatewayPoller } from "../gateway/poller";
import { operations } from "../openapi/operation";
import { countWatchedCollections, deleteGateway, getGateway, putGateway, sealPollPassword, sealTopicKey, type GatewayRow } from "../store/gateways";
import { tenantOr404 } from "./admin";
import type { AppEnv } from "../types";
import { readJson } from "../validation";

const operation = operations("Operator");

/** `poll_seconds` as asked: 0 (no polling) or 1–3600, raised to GATEWAY_MIN_POLL_SECONDS in force. */
const gatewaySchema = z.strictObject({
  origin: z.string({ error: "must be a string: the WebDAV server's URL" }),
  poll_seconds: z.number({ error: "must be an integer" }).int("must be an integer").min(0, "must be at least 0").max(3600, "must be at most 3600").default(60),
  poll_auth: z
    .strictObject({
      username: z.string({ error: "must be a string" }).min(1, "must not be empty").max(256).refine((u) => !u.includes(":"), "must not contain ':' (RFC 7617 §2)"),
      password: z.string({ error: "must be a string" }).min(1, "must not be empty").max(1024),
    })
    .nullable()
    .default(null),
});

/** The seconds in force: 0 stays 0 (off), anything else at least the minimum. */
export const pollSecondsInForce = (asked: number, minimum: number) => (asked === 0 ? 0 : Math.max(asked, minimum));

function gatewayJson(base: string, row: GatewayRow) {
  return {
    tenant_id: row.tenant_id,
    origin: row.origin,
    poll_seconds: row.poll_seconds,
    poll_auth: row.poll_username === null ? null : { username: row.poll_username },
    dav_url: `${base}/dav/${row.tenant_id}/`,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export const adminGateway = new Hono<AppEnv>();

adminGateway.use(requireAdmin);

adminGateway.put(
  "/:id/gateway",
  operation({
    summary: "Set a tenant's push gateway: its WebDAV server, proxied at /dav/{id}/",
    body: { json: gatewaySchema },
    responses: {
      200: { description: "updated: {tenant_id, origin, poll_seconds, poll_auth: {username} | null, dav_url, created_at, updated_at}", json: true },
      201: { description: "created: the same", json: true },
      404: { description: "no such tenant" },
    },
  }),
  async (c) => {
    const id = c.req.param("id");
    await tenantOr404(c.env.DB, id);
    const input = await readJson(c, gatewaySchema);
    const config = readConfig(c.env);
    const self = new URL(c.req.url).origin;
    const base = config.publicBaseUrl ?? self;
    const origin = checkGatewayOrigin(input.origin, { insecure: config.allowInsecurePushResources, selfOrigins: [self, new URL(base).origin] });
    const keyring = await keyringOf(c.env);
    const topicKey = await sealTopicKey(keyring, id, encodeBase64url(crypto.getRandomValues(new Uint8Array(32))));
    const stored = await putGateway(
      c.env.DB,
      id,
      {
        origin,
        poll_seconds: pollSecondsInForce(input.poll_seconds, config.gatewayMinPollSeconds),
        poll_username: input.poll_auth?.username ?? null,
        poll_password: input.poll_auth === null ? null : await sealPollPassword(keyring, id, input.poll_auth.password),
      },
      topicKey,
      nowSeconds(),
    );
    if (stored === null) throw notFound("tenant");
    const row = await getGateway(c.env.DB, id);
    if (row === null) throw notFound("gateway");
    // a new poll_seconds takes effect at once, not after the round armed under the old one
    await gatewayPoller(c.env, id).arm(id, row.poll_seconds);
    return c.json(gatewayJson(base, row), stored.created ? 201 : 200);
  },
);

adminGateway.get(
  "/:id/gateway",
  operation({
    summary: "A tenant's push gateway",
    responses: { 200: { description: "the gateway with watched_collections (how many) and last_poll_error", json: true }, 404: { description: "no such tenant, or it has no gateway" } },
  }),
  async (c) => {
    const id = c.req.param("id");
    await tenantOr404(c.env.DB, id);
    const row = await getGateway(c.env.DB, id);
    if (row === null) throw notFound("gateway");
    const base = readConfig(c.env).publicBaseUrl ?? new URL(c.req.url).origin;
    return c.json({ ...gatewayJson(base, row), watched_collections: await countWatchedCollections(c.env.DB, id), last_poll_error: row.last_poll_error });
  },
);

adminGateway.delete(
  "/:id/gateway",
  operation({ summary: "Remove a tenant's push gateway, its watched collections and the registrations made through it", responses: { 204: { description: "removed; /dav/{id}/ answers 404 gateway_not_configured" }, 404: { description: "no such tenant, or it has no gateway" } } }),
  async (c) => {
    const id = c.req.param("id");
    await tenantOr404(c.env.DB, id);
    if (!(await deleteGateway(c.env.DB, id))) throw notFound("gateway");
    return c.body(null, 204);
  },
);
