/**
 * `POST /v1/register`: the current draft's push-register, so a WebDAV server becomes compliant by
 * forwarding its client's POST here (topic in `Push-Topic` or `?topic=`), and passing the answer
 * back: 204 with `Location` and `Expires`, or 403 with a `{DAV:}error` precondition.
 */
import { Hono, type Context } from "hono";
import { authenticate, bearer } from "../auth/middleware";
import { ApiError, badRequest } from "../errors";
import { imfFixdate, nowSeconds } from "../expiry";
import { register } from "../registration";
import type { SubscriptionInput } from "../store/subscriptions";
import { checkPushResource, checkWebPushKeys } from "../transports/push-resource";
import { readConfig } from "../config";
import type { Requested } from "../triggers";
import type { AppEnv } from "../types";
import { parseWith, topicSchema } from "../validation";
import { parseXml } from "../xml/parse";
import { preconditionXml, type Precondition } from "../xml/properties";
import { readPushRegister, type WebPushSubscriptionXml } from "../xml/push-register";
import { actorOf, registrationUrl } from "./registrations";

const precondition = (c: Context, name: Precondition, description: string) =>
  c.body(preconditionXml(name, description), 403, { "Content-Type": 'application/xml; charset="utf-8"' });

class InvalidSubscription extends Error {}

async function subscriptionOf(xml: WebPushSubscriptionXml | null, env: Env): Promise<SubscriptionInput> {
  if (xml === null) throw new InvalidSubscription("the subscription must hold exactly one web-push-subscription");
  if (!xml.pushResource) throw new InvalidSubscription("web-push-subscription has no push-resource");
  // older DAVx⁵ sends no content-encoding: aes128gcm is meant (RFC 8291 is the only one the draft allows)
  if (xml.contentEncoding !== null && xml.contentEncoding !== "aes128gcm") {
    throw new InvalidSubscription(`content-encoding ${xml.contentEncoding} is not supported; use aes128gcm`);
  }
  if (xml.publicKeyType !== null && xml.publicKeyType !== "p256dh") {
    throw new InvalidSubscription(`subscription-public-key type ${xml.publicKeyType} is not supported; use p256dh`);
  }
  if (!xml.publicKey || !xml.authSecret) throw new InvalidSubscription("message encryption needs subscription-public-key and auth-secret (RFC 8291)");
  try {
    return {
      transport: "web_push",
      identifier: checkPushResource(xml.pushResource, readConfig(env).allowInsecurePushResources),
      keys: await checkWebPushKeys(xml.publicKey, xml.authSecret),
    };
  } catch (error) {
    throw new InvalidSubscription((error as Error).message);
  }
}

export const pushRegister = new Hono<AppEnv>();

pushRegister.post("/", async (c) => {
  const type = c.req.header("Content-Type");
  if (type !== undefined && !/^(application|text)\/([\w.+-]+\+)?xml\s*(;|$)/i.test(type)) {
    throw new ApiError(415, "unsupported_media_type", `expected Content-Type: application/xml, got ${JSON.stringify(type)}`);
  }
  const principal = await authenticate(
    c.env,
    bearer(c.req.header("Authorization"), "send `Authorization: Bearer <token>` (the tenant's notify token or a client grant)"),
  );
  const topicValue = c.req.header("Push-Topic") ?? c.req.query("topic");
  if (topicValue === undefined) throw badRequest("invalid_request", "name the topic in the Push-Topic header or ?topic=");
  const topic = parseWith(topicSchema, topicValue);

  const body = readPushRegister(parseXml(await c.req.text()));

  if (principal.tenant.disabled_at !== null) return precondition(c, "push-not-available", "push is not available: this tenant is disabled");
  if (principal.kind === "grant" && !principal.topics.includes(topic)) {
    return precondition(c, "push-not-available", "the client grant does not cover this topic");
  }
  let subscription: SubscriptionInput;
  try {
    subscription = await subscriptionOf(body.subscription, c.env);
  } catch (error) {
    if (error instanceof InvalidSubscription) return precondition(c, "invalid-subscription", error.message);
    throw error;
  }
  const now = nowSeconds();
  let requestedExpiry: number | null = null;
  if (body.expires !== null) {
    const ms = Date.parse(body.expires);
    if (Number.isNaN(ms)) throw badRequest("invalid_request", `expires ${JSON.stringify(body.expires)} is not an IMF-fixdate`);
    // a time already past (the draft's own sample has one) is taken as no wish: the maximum
    requestedExpiry = ms / 1000 > now ? Math.floor(ms / 1000) : null;
  }
  // no trigger element at all: older clients, meaning content updates of internal members
  const requested: Requested = body.trigger ?? { contentUpdate: { depth: 1 }, propertyUpdate: null };

  const result = await register(c.env, actorOf(principal), { topic, subscription, requested, clientId: null, requestedExpiry }, now);
  if (result.kind === "no_supported_trigger") {
    return precondition(c, "no-supported-trigger", "none of the requested triggers is supported for this topic");
  }
  if (result.kind === "owned_by_another") {
    return precondition(c, "push-not-available", "this push resource is registered by another user (a push resource belongs to the user who registered it)");
  }
  c.header("Location", registrationUrl(c, result.row.id));
  c.header("Expires", imfFixdate(result.row.expires_at));
  return c.body(null, 204);
});
