/**
 * `/v1/registrations`: the caller's registrations, listed, read and sent a test push (Bearer: the
 * notify token or a grant), and the registration URL's DELETE, which needs no credentials: the URL
 * is a capability.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireTenantOrGrant } from "../auth/middleware";
import { keyringOf } from "../crypto/sealed";
import { ApiError, badRequest, notFound } from "../errors";
import { imfFixdate, nowSeconds } from "../expiry";
import { actorOf, isRegistrationId, NotTestable, registrationJson, testPush, TestPushRateLimited, unregister } from "../registering";
import { getRegistration, listRegistrations } from "../store/registrations";
import type { AppEnv } from "../types";
import { parseWith, topicSchema } from "../validation";
import { operations } from "../openapi/operation";

const listQuery = z.object({
  topic: topicSchema.optional(),
  cursor: z.string().refine(isRegistrationId, "must be a registration id from next_cursor").optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

export const registrations = new Hono<AppEnv>();

const operation = operations("Client");
const NO_REGISTRATION = { description: "unknown, expired, or not the caller's" };

/** A user's own live registrations, or with the tenant token all of the tenant's. */
registrations.get(
  "/",
  operation({ summary: "The caller's live registrations", description: "A user's own; with the notify token all of the tenant's.", query: listQuery, responses: { 200: { description: "{registrations, next_cursor}", json: true } } }),
  requireTenantOrGrant,
  async (c) => {
  const query = parseWith(listQuery, c.req.query());
  const rows = await listRegistrations(c.env.DB, () => keyringOf(c.env), actorOf(c.get("principal")), {
    topic: query.topic ?? null,
    after: query.cursor ?? "",
    limit: query.limit,
    now: nowSeconds(),
  });
  return c.json({
    registrations: rows.map((row) => registrationJson(c.env, c.req.url, row)),
    next_cursor: rows.length === query.limit ? rows[rows.length - 1].id : null,
  });
});

// Another user's registration answers 404 like an unknown one: its existence is not theirs to learn.
registrations.get(
  "/:id",
  operation({
    summary: "One of the caller's registrations",
    responses: { 200: { description: "the registration", json: true, headers: { Expires: "when it expires (IMF-fixdate)" } }, 404: NO_REGISTRATION },
  }),
  requireTenantOrGrant,
  async (c) => {
  const id = c.req.param("id");
  const row = isRegistrationId(id) ? await getRegistration(c.env.DB, () => keyringOf(c.env), actorOf(c.get("principal")), id, nowSeconds()) : null;
  if (row === null) throw notFound("registration");
  return c.json(registrationJson(c.env, c.req.url, row), 200, { Expires: imfFixdate(row.expires_at) });
});

/**
 * A test push (issue 11): sent now, answered once the push service answered. Someone else's
 * registration is 404 like a missing one; one test per registration per 10 s, whoever asks.
 */
registrations.post(
  "/:id/test",
  operation({
    summary: "Send a test push now",
    description: "Answered once the push service answered; one test per registration per 10 s.",
    responses: {
      200: { description: "what the push service answered", json: true },
      400: { description: "not_testable" },
      404: NO_REGISTRATION,
      429: { description: "test_rate_limited, with Retry-After" },
    },
  }),
  requireTenantOrGrant,
  async (c) => {
  const id = c.req.param("id");
  try {
    const result = isRegistrationId(id) ? await testPush(c.env, actorOf(c.get("principal")), id, nowSeconds()) : null;
    if (result === null) throw notFound("registration");
    return c.json(result);
  } catch (error) {
    if (error instanceof NotTestable) throw badRequest("not_testable", error.message);
    if (error instanceof TestPushRateLimited) {
      throw new ApiError(429, "test_rate_limited", error.message, { "Retry-After": String(error.retryAfterSeconds) });
    }
    throw error;
  }
});

/**
 * With Bearer credentials, today's rules: only the owner (or the tenant) deletes, others get 404.
 * Without (none, or another scheme such as Basic), the URL itself is the credential: DAVx⁵
 * unregisters with a bare DELETE of the Location it got, sending no credentials to another host,
 * and 128 random bits in the id cannot be guessed.
 */
registrations.delete(
  "/:id",
  operation({
    summary: "Unregister",
    description: "The registration URL is a capability: without Bearer credentials its DELETE removes it. With them, only the owner or the tenant may.",
    security: [[], ["notifyToken"], ["clientGrant"]],
    responses: { 204: { description: "unregistered" }, 404: { description: "unknown, expired, or (with credentials) not the caller's" } },
  }),
  async (c, next) => {
  if (/^Bearer(\s|$)/i.test(c.req.header("Authorization") ?? "")) return requireTenantOrGrant(c, next);
  if (!(await unregister(c.env, null, c.req.param("id"), nowSeconds()))) throw notFound("registration");
  return c.body(null, 204);
});

registrations.delete("/:id", async (c) => {
  if (!(await unregister(c.env, actorOf(c.get("principal")), c.req.param("id"), nowSeconds()))) throw notFound("registration");
  return c.body(null, 204);
});
