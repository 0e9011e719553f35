/**
 * `POST /v1/notify` (and the early draft's `POST /notify`): a tenant's changes, one or a batch,
 * handed to each topic's TopicHub; delivery happens later, off the request.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireTenant } from "../auth/middleware";
import { MAX_NOTIFY_BATCH, MAX_TTL_SECONDS } from "../config";
import { toDepth, type Change } from "../hub/change";
import { parseDontNotify } from "../hub/dont-notify";
import { topicHub } from "../hub/topic-hub";
import { ApiError } from "../errors";
import { limitMessage, limitsOf, quotaExceeded } from "../limits/limits";
import { admitNotifies } from "../limits/notify-budget";
import { registrationIdsOf } from "../registering";
import type { AppEnv, Principal } from "../types";
import { depthSchema, parseWith, readJson, topicSchema } from "../validation";
import { operations } from "../openapi/operation";

const changeSchema = z.object({
  topic: topicSchema,
  content_update: z
    .object({ sync_token: z.string().max(1024).optional(), depth: depthSchema.optional() })
    .optional(),
  property_update: z
    .object({ props: z.array(z.string().min(1).max(256)).max(100).optional(), depth: depthSchema.optional() })
    .optional(),
  urgency: z.enum(["very-low", "low", "normal", "high"]).optional(),
  ttl: z.number().int().min(1).max(MAX_TTL_SECONDS).optional(),
  dont_notify: z.union([z.literal("*"), z.array(z.string().max(2048)).max(1000)]).optional(),
  /** The client's Push-Dont-Notify header as received (one string, or one per header line). */
  dont_notify_header: z.union([z.string().max(16_384), z.array(z.string().max(16_384)).max(50)]).optional(),
});

type ChangeInput = z.infer<typeof changeSchema>;

const batchSchema = z.object({ notifications: z.array(changeSchema).min(1).max(MAX_NOTIFY_BATCH) });

/** A bare `{topic}` is a content update of an internal member (depth 1), as the early draft sends. */
export function normalizeChange(input: ChangeInput): Change {
  const bare = input.content_update === undefined && input.property_update === undefined;
  const content = input.content_update ?? (bare ? {} : undefined);
  return {
    topic: input.topic,
    contentUpdate: content === undefined ? null : { syncToken: content.sync_token ?? null, depth: toDepth(content.depth, 1) },
    propertyUpdate:
      input.property_update === undefined
        ? null
        : { props: input.property_update.props ?? null, depth: toDepth(input.property_update.depth, 1) },
    urgency: input.urgency ?? "normal",
    ttl: input.ttl ?? null,
    dontNotify: dontNotifyOf(input),
  };
}

/** `dont_notify` and the raw `dont_notify_header` together: "*" in either spares everyone. */
function dontNotifyOf(input: ChangeInput): string[] | "*" {
  const fromHeader = input.dont_notify_header === undefined ? [] : parseDontNotify(input.dont_notify_header);
  if (input.dont_notify === "*" || fromHeader === "*") return "*";
  return registrationIdsOf([...(input.dont_notify ?? []), ...fromHeader]);
}

function parseChanges(body: unknown): Change[] {
  if (typeof body === "object" && body !== null && "notifications" in body) {
    return parseWith(batchSchema, body).notifications.map(normalizeChange);
  }
  return [normalizeChange(parseWith(changeSchema, body))];
}

export const notify = new Hono<AppEnv>();

const operation = operations("Tenant");

/**
 * Each change counts against the tenant's notify budget (issue 12), a batch of n as n: a refused
 * notify reaches no hub and takes nothing from the budget.
 */
async function admit(env: Env, tenant: Principal["tenant"], n: number): Promise<void> {
  const max = limitsOf(env, tenant).notify_per_minute;
  if (n > max) throw quotaExceeded("notify_per_minute", max, `a batch of ${n} changes is more than the notify limit allows at once (${max} per minute)`);
  const admission = await admitNotifies(env, tenant.id, n, max);
  if (!admission.ok) {
    throw new ApiError(
      429,
      "rate_limited",
      `${limitMessage("notify_per_minute", max)}; ${n} more fit in ${admission.retryAfter} s`,
      { "Retry-After": String(admission.retryAfter) },
      { limit: "notify_per_minute", max },
    );
  }
}

notify.post(
  "/",
  operation({
    summary: "Hand over changes: one, or a batch of notifications",
    description: "Also the early draft's POST /notify. A 202 means the changes are stored; delivery happens later.",
    body: { json: z.union([changeSchema, batchSchema]), description: "a change, or {notifications: [change, …]}" },
    responses: { 202: { description: "{accepted, topics}", json: true } },
  }),
  requireTenant,
  async (c) => {
  const changes = parseChanges(await readJson(c, z.unknown()));
  const tenant = c.get("principal").tenant;
  await admit(c.env, tenant, changes.length);
  const tenantId = tenant.id;
  const byTopic = Map.groupBy(changes, (change) => change.topic);
  // Each topic's changes go to that topic's hub; delivery happens later, off this request.
  await Promise.all(
    [...byTopic].map(([topic, topicChanges]) =>
      topicHub(c.env, tenantId, topic).accept(tenantId, topicChanges),
    ),
  );
  return c.json({ accepted: changes.length, topics: byTopic.size }, 202);
});
