import { Hono } from "hono";
import { z } from "zod";
import { requireTenantOrGrant } from "../auth/middleware";
import { readConfig } from "../config";
import { ApiError, badRequest, forbidden } from "../errors";
import { imfFixdate, nowSeconds, parseExpires } from "../expiry";
import { toDepth } from "../hub/change";
import { register } from "../registration";
import type { Requested } from "../triggers";
import type { SubscriptionInput } from "../store/subscriptions";
import { serviceAccountOf } from "../transports/fcm";
import { checkPushResource, checkWebPushKeys } from "../transports/push-resource";
import type { AppEnv } from "../types";
import { depthSchema, readJson, topicSchema } from "../validation";
import { actorOf, registrationJson, registrationUrl } from "./registrations";

const webPushSchema = z.object({
  endpoint: z.string().min(1),
  keys: z.object({ p256dh: z.string().min(1), auth: z.string().min(1) }),
  content_encoding: z.literal("aes128gcm", { error: 'only "aes128gcm" is supported (RFC 8291)' }).optional(),
});

const subscribeSchema = z.object({
  client_id: z.string().min(1).max(256).optional(),
  topic: topicSchema,
  push_services: z.object({
    web_push: webPushSchema.optional(),
    // UnifiedPush endpoints are Web Push resources; the draft requires message encryption, so keys too.
    unified_push: webPushSchema.optional(),
    fcm: z.object({ registration_token: z.string().min(1).max(4096) }).optional(),
  }),
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

type SubscribeInput = z.infer<typeof subscribeSchema>;

async function subscriptionOf(input: SubscribeInput, env: Env): Promise<SubscriptionInput> {
  const named = Object.entries(input.push_services).filter(([, value]) => value !== undefined);
  if (named.length !== 1) {
    throw badRequest(
      "invalid_request",
      `push_services must name exactly one of web_push, unified_push, fcm (got ${named.length}); register each separately`,
    );
  }
  const webPush = input.push_services.web_push ?? input.push_services.unified_push;
  if (webPush !== undefined) {
    return {
      transport: "web_push",
      identifier: checkPushResource(webPush.endpoint, readConfig(env).allowInsecurePushResources),
      keys: await checkWebPushKeys(webPush.keys.p256dh, webPush.keys.auth),
    };
  }
  if (serviceAccountOf(env) === null) throw new ApiError(400, "transport_unavailable", "the fcm transport is not configured on this director");
  return { transport: "fcm", identifier: input.push_services.fcm!.registration_token, keys: null };
}

/** Without a trigger a registration follows content updates of internal members (draft leniency). */
function requestedTriggers(input: SubscribeInput): Requested {
  const { content_update: content, property_update: property } = input.trigger ?? {};
  if (content === undefined && property === undefined) return { contentUpdate: { depth: 1 }, propertyUpdate: null };
  return {
    contentUpdate: content === undefined ? null : { depth: toDepth(content.depth, 1) },
    propertyUpdate: property === undefined ? null : { depth: toDepth(property.depth, 0), props: property.props ?? null },
  };
}

export const subscriptions = new Hono<AppEnv>();

subscriptions.post("/", requireTenantOrGrant, async (c) => {
  const input = await readJson(c, subscribeSchema);
  const principal = c.get("principal");
  if (principal.kind === "grant" && !principal.topics.includes(input.topic)) {
    throw forbidden("topic_not_granted", "the client grant does not cover this topic");
  }
  const now = nowSeconds();
  let requested: number | null = null;
  if (input.expires !== undefined) {
    requested = parseExpires(input.expires);
    if (requested === null) throw badRequest("invalid_request", "expires: must be Unix seconds or an IMF-fixdate");
    if (requested <= now) throw badRequest("invalid_request", "expires: lies in the past");
  }
  const subscription = await subscriptionOf(input, c.env);
  const result = await register(
    c.env,
    actorOf(principal),
    { topic: input.topic, subscription, requested: requestedTriggers(input), clientId: input.client_id ?? null, requestedExpiry: requested },
    now,
  );
  if (result.kind === "no_supported_trigger") {
    throw forbidden("no_supported_trigger", "this tenant supports none of the requested triggers (see its supported-triggers)");
  }
  if (result.kind === "owned_by_another") {
    throw forbidden("registration_owned_by_another", "this push resource is registered by another user (a push resource belongs to the user who registered it)");
  }
  const { row, created } = result;
  // The draft answers a registration and an update alike; `created` tells them apart.
  return c.json({ ...registrationJson(c, row), created }, 201, {
    Location: registrationUrl(c, row.id),
    Expires: imfFixdate(row.expires_at),
  });
});
