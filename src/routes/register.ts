/**
 * `POST /v1/register`: the current draft's push-register, so a WebDAV server becomes compliant by
 * forwarding its client's POST here (topic in `Push-Topic` or `?topic=`), and passing the answer
 * back: 204 with `Location` and `Expires`, or 403 with a `{DAV:}error` precondition.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { authenticate, bearer } from "../auth/middleware";
import { ApiError, badRequest } from "../errors";
import { imfFixdate, nowSeconds } from "../expiry";
import { limitMessage, limitsOf } from "../limits/limits";
import { actorOf, entryOfXml, InvalidSubscription, register, registrationUrl, subscriptionOf, type RegisterResult } from "../registering";
import type { SubscriptionInput } from "../store/subscriptions";
import type { Requested } from "../triggers";
import type { AppEnv } from "../types";
import { parseWith, topicSchema } from "../validation";
import { parseXml } from "../xml/parse";
import { preconditionXml, type Precondition } from "../xml/properties";
import { readPushRegister, type PushRegister } from "../xml/push-register";
import { operations } from "../openapi/operation";

const precondition = (c: Context, name: Precondition, description: string) =>
  c.body(preconditionXml(name, description), 403, { "Content-Type": 'application/xml; charset="utf-8"' });

/**
 * push-register's answer to what `register` did: 204 with the registration URL (`urlOf` its id)
 * and `Expires`, or 403 with the draft's precondition. Shared with the push gateway's push-register.
 */
export function pushRegisterAnswer(c: Context, result: RegisterResult, urlOf: (id: string) => string): Response {
  switch (result.kind) {
    case "registered":
      c.header("Location", urlOf(result.row.id));
      c.header("Expires", imfFixdate(result.row.expires_at));
      return c.body(null, 204);
    case "no_supported_trigger":
      return precondition(c, "no-supported-trigger", "none of the requested triggers is supported for this topic");
    case "owned_by_another":
      return precondition(c, "push-not-available", "this push resource is registered by another user (a push resource belongs to the user who registered it)");
    case "quota_exceeded":
      return precondition(c, "push-not-available", limitMessage(result.limit, result.max));
    case "connection_unknown":
    case "connection_not_yours":
      // push-register names Web Push subscriptions only
      throw new Error(`push-register cannot register a connection (${result.kind})`);
  }
}

/** The draft's precondition answer, for the gateway's push-register too. */
export { precondition as pushRegisterPrecondition };

/** The push-register's subscription as stored, or the invalid-subscription precondition to answer. */
export async function subscriptionOrRefusal(c: Context, entry: PushRegister["subscription"]): Promise<SubscriptionInput | Response> {
  try {
    return await subscriptionOf(c.env, entryOfXml(entry));
  } catch (error) {
    if (error instanceof InvalidSubscription) return precondition(c, "invalid-subscription", error.message);
    throw error;
  }
}

export const pushRegister = new Hono<AppEnv>();

const operation = operations("Client");

pushRegister.post(
  "/",
  operation({
    summary: "The draft's push-register",
    description: "A WebDAV server forwards its client's POST here; the topic comes in Push-Topic or ?topic=.",
    security: [["notifyToken"], ["clientGrant"]],
    query: z.object({ topic: topicSchema.optional() }),
    body: { content: "application/xml", description: "a {DAV:}push-register document (the draft's XML)" },
    responses: {
      204: {
        description: "registered",
        headers: { Location: "the registration URL (DELETE it to unregister)", Expires: "when the registration expires (IMF-fixdate)" },
      },
      403: { description: "a {DAV:}error precondition: push-not-available, invalid-subscription or no-supported-trigger", content: "application/xml" },
    },
  }),
  async (c) => {
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
  const subscription = await subscriptionOrRefusal(c, body.subscription);
  if (subscription instanceof Response) return subscription;
  // no trigger element at all: older clients, meaning content updates of internal members
  const requested: Requested = body.trigger ?? { contentUpdate: { depth: 1 }, propertyUpdate: null };

  const result = await register(c.env, actorOf(principal), limitsOf(c.env, principal.tenant), { topic, subscription, requested, clientId: null, expires: body.expires }, nowSeconds());
  return pushRegisterAnswer(c, result, (id) => registrationUrl(c.env, c.req.url, id));
});
