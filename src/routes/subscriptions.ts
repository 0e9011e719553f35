/**
 * The JSON Subscription API: `POST /v1/subscriptions` and `POST /v1/unsubscribe`, mounted again at
 * the early draft's `POST /subscribe` and `POST /unsubscribe` (same auth, bodies and answers).
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireTenantOrGrant } from "../auth/middleware";
import { badRequest, forbidden, notFound } from "../errors";
import { imfFixdate, nowSeconds } from "../expiry";
import { limitsOf, quotaExceeded } from "../limits/limits";
import { toDepth } from "../hub/change";
import {
  actorOf,
  chooseService,
  InvalidSubscription,
  NoUsableService,
  pushServicesSchema,
  pushServicesToForgetSchema,
  register,
  type PushServices,
  registrationJson,
  registrationUrl,
  subscriptionOf,
  unsubscribe as unsubscribeFrom,
} from "../registering";
import type { SubscriptionInput } from "../store/subscriptions";
import type { Requested } from "../triggers";
import type { AppEnv } from "../types";
import { depthSchema, readJson, topicSchema } from "../validation";
import { operations } from "../openapi/operation";

const subscribeSchema = z.object({
  client_id: z.string().min(1).max(256).optional(),
  topic: topicSchema,
  push_services: pushServicesSchema,
  trigger: z
    .object({
      content_update: z.object({ depth: depthSchema.optional() }).optional(),
      property_update: z
        .object({ depth: depthSchema.optional(), props: z.array(z.string().min(1).max(256)).max(100).optional() })
        .optional(),
    })
    .optional(),
  expires: z.union([z.number(), z.string().max(64)]).optional(),
});

const unsubscribeSchema = z.object({ topic: topicSchema, push_services: pushServicesToForgetSchema });

type SubscribeInput = z.infer<typeof subscribeSchema>;

const operation = operations("Client");

/** Without a trigger a registration follows content updates of internal members (draft leniency). */
function requestedTriggers(input: SubscribeInput): Requested {
  const { content_update: content, property_update: property } = input.trigger ?? {};
  if (content === undefined && property === undefined) return { contentUpdate: { depth: 1 }, propertyUpdate: null };
  return {
    contentUpdate: content === undefined ? null : { depth: toDepth(content.depth, 1) },
    propertyUpdate: property === undefined ? null : { depth: toDepth(property.depth, 0), props: property.props ?? null },
  };
}

/** The chosen push service's subscription; the registering module's refusals are 400s here, with their code. */
async function usableSubscription(env: Env, services: PushServices): Promise<SubscriptionInput> {
  try {
    return await subscriptionOf(env, chooseService(env, services));
  } catch (error) {
    if (error instanceof InvalidSubscription || error instanceof NoUsableService) throw badRequest(error.code, error.message);
    throw error;
  }
}

export const subscriptions = new Hono<AppEnv>();

subscriptions.post(
  "/",
  operation({
    summary: "Register a push subscription for a topic",
    description: "Also the early draft's POST /subscribe. An update of a live registration answers the same, with created false.",
    body: { json: subscribeSchema },
    responses: {
      201: {
        description: "the registration (created tells a new one from an update)",
        json: true,
        headers: { Location: "the registration URL (DELETE it to unregister)", Expires: "when the registration expires (IMF-fixdate)" },
      },
      404: { description: "the connection named in push_services.websocket is unknown" },
    },
  }),
  requireTenantOrGrant,
  async (c) => {
  const input = await readJson(c, subscribeSchema);
  const principal = c.get("principal");
  if (principal.kind === "grant" && !principal.topics.includes(input.topic)) {
    throw forbidden("topic_not_granted", "the client grant does not cover this topic");
  }
  const subscription = await usableSubscription(c.env, input.push_services);
  const result = await register(
    c.env,
    actorOf(principal),
    limitsOf(c.env, principal.tenant),
    { topic: input.topic, subscription, requested: requestedTriggers(input), clientId: input.client_id ?? null, expires: input.expires ?? null },
    nowSeconds(),
  );
  switch (result.kind) {
    case "no_supported_trigger":
      throw forbidden("no_supported_trigger", "this tenant supports none of the requested triggers (see its supported-triggers)");
    case "owned_by_another":
      throw forbidden("registration_owned_by_another", "this push resource is registered by another user (a push resource belongs to the user who registered it)");
    case "quota_exceeded":
      throw quotaExceeded(result.limit, result.max);
    case "connection_unknown":
      throw notFound("connection");
    case "connection_not_yours":
      throw forbidden("connection_not_yours", "this connection was opened by another user");
  }
  const { row, created } = result;
  // The draft answers a registration and an update alike; `created` tells them apart.
  return c.json({ ...registrationJson(c.env, c.req.url, row), created }, 201, {
    Location: registrationUrl(c.env, c.req.url, row.id),
    Expires: imfFixdate(row.expires_at),
  });
});

export const unsubscribe = new Hono<AppEnv>();

/**
 * Deletes the caller's registrations of the topic for each push service named: 204, or 404 when
 * none was theirs. Only the caller's own go, so a grant need not cover the topic any more.
 */
unsubscribe.post(
  "/",
  operation({
    summary: "Delete the caller's registrations of a topic for the push services named",
    description: "Also the early draft's POST /unsubscribe.",
    body: { json: unsubscribeSchema },
    responses: { 204: { description: "deleted" }, 404: { description: "none was the caller's" } },
  }),
  requireTenantOrGrant,
  async (c) => {
  const input = await readJson(c, unsubscribeSchema);
  const principal = c.get("principal");
  const deleted = await unsubscribeFrom(c.env, actorOf(principal), input.topic, input.push_services, nowSeconds());
  if (deleted === 0) throw notFound("registration");
  return c.body(null, 204);
});
