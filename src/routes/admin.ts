import { Hono } from "hono";
import { z } from "zod";
import { requireAdmin } from "../auth/middleware";
import { newGrantSecret, newNotifyToken, newTenantId, TENANT_ID } from "../auth/tenant-token";
import { grantKeysOf, grantKeyTag, grantSecretTag, notifyTokenTag } from "../auth/credential";
import { grantKeysJson, parseGrantKeys } from "../auth/grant-keys";
import { keyringOf } from "../crypto/sealed";
import { sha256Hex } from "../crypto/secrets";
import { badRequest, notFound } from "../errors";
import { nowSeconds } from "../expiry";
import {
  countTenantRecords,
  getTenant,
  insertTenant,
  listTenants,
  newestCursor,
  openGrantSecret,
  parseNewestCursor,
  sealGrantSecret,
  setGrantKeys,
  setTenantDisabled,
  updateTenantSecrets,
  type TenantPage,
  type TenantRow,
} from "../store/tenants";
import { CLOSE } from "../hub/frames";
import { onTenantSockets } from "../hub/topic-hub";
import { listDeadLetters } from "../store/dead-letters";
import { defaultLimits, LIMIT_NAMES, limitsOf, MAX_LIMIT, minLimit, type LimitName } from "../limits/limits";
import { tenantLimiter } from "../limits/tenant-limiter";
import { liveRegistrations, setTenantLimits } from "../store/limits";
import { countUnsealed } from "../store/sealed-columns";
import { statsQuery, tenantStats } from "../store/stats";
import { getSupportedTriggers, setSupportedTriggers } from "../store/tenant-triggers";
import { currentVapidKeys, insertPendingVapidKey, pendingVapidKey, retiredVapidKeys } from "../store/vapid-keys";
import { DeadLetterNotFound, NothingToRetry, retryDeadLetter } from "../queues/dead-letters";
import { checkVapidKeys, generateVapidKeys } from "../crypto/vapid";
import { ApiError } from "../errors";
import { depthSchema } from "../validation";
import { toDepth } from "../hub/change";
import { depthToJson, type Depth } from "../depth";
import type { SecretsRotationJob, VapidRotationJob } from "../queues/jobs";
import type { AppEnv } from "../types";
import { operations } from "../openapi/operation";
import { parseWith, readJson, readOptionalJson } from "../validation";

/** A tenant as the operator sees it: never its token hash, grant secret or any `*_hash`. */
const tenantJson = (row: TenantRow) => ({
  id: row.id,
  name: row.name,
  disabled: row.disabled_at !== null,
  disabled_at: row.disabled_at,
  grant_keys: grantKeysJson(grantKeysOf(row)),
  created_at: row.created_at,
  updated_at: row.updated_at,
});

export async function tenantOr404(db: D1Database, id: string): Promise<TenantRow> {
  const row = TENANT_ID.test(id) ? await getTenant(db, id) : null;
  if (row === null) throw notFound("tenant");
  return row;
}

const createSchema = z.object({ name: z.string().trim().min(1, "must not be empty").max(200) });
const rotateSchema = z.object({
  notify_token: z.boolean().default(true),
  grant_secret: z.boolean().default(true),
});
const listQuery = z.object({
  order: z.enum(["id", "newest"]).default("id"),
  cursor: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

/** The page a list query asks for; a cursor from the other order (or none of ours) is 400. */
function tenantPage(order: "id" | "newest", cursor: string | undefined): TenantPage {
  if (order === "id") {
    if (cursor !== undefined && !TENANT_ID.test(cursor)) throw badRequest("invalid_request", "cursor: must be a next_cursor of order=id");
    return { order, after: cursor ?? "" };
  }
  const after = cursor === undefined ? null : parseNewestCursor(cursor);
  if (cursor !== undefined && after === null) throw badRequest("invalid_request", "cursor: must be a next_cursor of order=newest");
  return { order, after };
}

export const admin = new Hono<AppEnv>();

const operation = operations("Operator");
const ok = (description: string, json: true = true) => ({ description, json });
const NO_TENANT = { description: "no such tenant" };

admin.use(requireAdmin);

/** The notify token and grant secret are shown here once; only the token's hash is kept. */
admin.post(
  "/tenants",
  operation({
    summary: "Create a tenant",
    description: "The notify token and grant secret are in this answer only.",
    body: { json: createSchema },
    responses: { 201: { ...ok("{id, name, notify_token, grant_secret, created_at}"), headers: { Location: "the tenant's admin URL" } } },
  }),
  async (c) => {
  const { name } = await readJson(c, createSchema);
  const id = newTenantId();
  const notifyToken = newNotifyToken(id);
  const grantSecret = newGrantSecret();
  const now = nowSeconds();
  await insertTenant(c.env.DB, {
    id,
    name,
    notify_token_hash: await sha256Hex(notifyToken),
    grant_secret: await sealGrantSecret(await keyringOf(c.env), id, grantSecret),
    disabled_at: null,
    created_at: now,
    updated_at: now,
  });
  return c.json({ id, name, notify_token: notifyToken, grant_secret: grantSecret, created_at: now }, 201, {
    Location: `${new URL(c.req.url).origin}/v1/admin/tenants/${id}`,
  });
});

admin.get(
  "/tenants",
  operation({ summary: "List tenants", description: "order=id (default) or newest; next_cursor belongs to its order.", query: listQuery, responses: { 200: ok("{tenants, next_cursor}") } }),
  async (c) => {
  const query = parseWith(listQuery, c.req.query());
  const rows = await listTenants(c.env.DB, tenantPage(query.order, query.cursor), query.limit);
  const last = rows.length === query.limit ? rows[rows.length - 1] : null;
  return c.json({
    tenants: rows.map(tenantJson),
    next_cursor: last === null ? null : query.order === "id" ? last.id : newestCursor(last),
  });
});

const depthJson = (depth: Depth | null) => (depth === null ? null : { depth: depthToJson(depth) });

admin.get(
  "/tenants/:id",
  operation({ summary: "A tenant with its counts and supported triggers", responses: { 200: ok("the tenant, counts, supported_triggers"), 404: NO_TENANT } }),
  async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  const supported = await getSupportedTriggers(c.env.DB, row.id);
  return c.json({
    ...tenantJson(row),
    counts: await countTenantRecords(c.env.DB, row.id, nowSeconds()),
    supported_triggers: { content_update: depthJson(supported.contentUpdate), property_update: depthJson(supported.propertyUpdate) },
  });
});

const triggersSchema = z.object({
  content_update: z.object({ depth: depthSchema }).nullable(),
  property_update: z.object({ depth: depthSchema }).nullable(),
});

/** What the tenant's collections support (the draft's supported-triggers); null = not supported. */
admin.put(
  "/tenants/:id/triggers",
  operation({ summary: "Set the triggers a tenant's collections support", body: { json: triggersSchema }, responses: { 200: ok("{id, supported_triggers}"), 404: NO_TENANT } }),
  async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  const input = await readJson(c, triggersSchema);
  const supported = {
    contentUpdate: input.content_update === null ? null : toDepth(input.content_update.depth, 1),
    propertyUpdate: input.property_update === null ? null : toDepth(input.property_update.depth, 0),
  };
  await setSupportedTriggers(c.env.DB, row.id, supported, nowSeconds());
  return c.json({ id: row.id, supported_triggers: { content_update: depthJson(supported.contentUpdate), property_update: depthJson(supported.propertyUpdate) } });
});

/**
 * Issues new secrets (both unless told otherwise); the old ones stop working at once, and every
 * socket opened with one of them closes (4001) before this answers.
 */
admin.post(
  "/tenants/:id/rotate",
  operation({
    summary: "Rotate a tenant's notify token and/or grant secret",
    description: "The old ones stop working at once; sockets opened with one close (4001) before this answers.",
    body: { json: rotateSchema, optional: true },
    responses: { 200: ok("{id, notify_token, grant_secret, closed_sockets}"), 404: NO_TENANT },
  }),
  async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  const which = await readOptionalJson(c, rotateSchema);
  const keyring = await keyringOf(c.env);
  const notifyToken = which.notify_token ? newNotifyToken(row.id) : undefined;
  const grantSecret = which.grant_secret ? newGrantSecret() : undefined;
  const revoked = [
    ...(notifyToken ? [notifyTokenTag(row.notify_token_hash)] : []),
    ...(grantSecret ? [await grantSecretTag(await openGrantSecret(keyring, row))] : []),
  ];
  await updateTenantSecrets(
    c.env.DB,
    row.id,
    {
      notify_token_hash: notifyToken && (await sha256Hex(notifyToken)),
      grant_secret: grantSecret && (await sealGrantSecret(keyring, row.id, grantSecret)),
    },
    nowSeconds(),
  );
  const closed = revoked.length === 0 ? 0 : await onTenantSockets(c.env, row.id, (hub) => hub.closeCredentials(revoked, CLOSE.credentialInvalid, "credentials rotated"));
  return c.json({ id: row.id, notify_token: notifyToken ?? null, grant_secret: grantSecret ?? null, closed_sockets: closed });
});

/** The tenant's delivery counts over `?hours=` (1–720, default 24), as `GET /v1/stats` shows the tenant. */
admin.get(
  "/tenants/:id/stats",
  operation({ summary: "A tenant's delivery counts", query: statsQuery, responses: { 200: ok("delivery counts per outcome and transport"), 404: NO_TENANT } }),
  async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  const { hours } = parseWith(statsQuery, c.req.query());
  return c.json(await tenantStats(c.env.DB, row.id, hours, nowSeconds()));
});

admin.get(
  "/tenants/:id/grant-keys",
  operation({ summary: "A tenant's public keys for ES256/EdDSA grants", responses: { 200: ok("{id, grant_keys: [{kid, alg}]}"), 404: NO_TENANT } }),
  async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  return c.json({ id: row.id, grant_keys: grantKeysJson(grantKeysOf(row)) });
});

/**
 * Replaces the tenant's public keys for ES256/EdDSA grants (`[]` clears them). Sockets opened
 * with a grant whose key is gone (or whose kid now names other key material) close with 4001.
 */
admin.put(
  "/tenants/:id/grant-keys",
  operation({
    summary: "Replace a tenant's public keys for grants",
    body: { json: z.unknown(), description: '{"keys": [public JWK, …]}: ES256 or EdDSA keys, each with its own kid; [] clears them' },
    responses: { 200: ok("{id, grant_keys, closed_sockets}"), 404: NO_TENANT },
  }),
  async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  const keys = await parseGrantKeys(await readJson(c, z.unknown()));
  const kept = new Set(await Promise.all(keys.map(grantKeyTag)));
  const revoked = (await Promise.all(grantKeysOf(row).map(grantKeyTag))).filter((tag) => !kept.has(tag));
  await setGrantKeys(c.env.DB, row.id, JSON.stringify(keys), nowSeconds());
  const closed = revoked.length === 0 ? 0 : await onTenantSockets(c.env, row.id, (hub) => hub.closeCredentials(revoked, CLOSE.credentialInvalid, "grant key removed"));
  return c.json({ id: row.id, grant_keys: grantKeysJson(keys), closed_sockets: closed });
});

/** Each limit: an integer 0…MAX_LIMIT (notify_per_minute at least 1), or null for the default. */
const limitValue = (name: LimitName) =>
  z
    .number({ error: "must be an integer or null" })
    .int("must be an integer")
    .min(minLimit(name), `must be at least ${minLimit(name)}`)
    .max(MAX_LIMIT, `must be at most ${MAX_LIMIT}`)
    .nullable();

/** All five keys, each named: a PUT replaces the whole set, so a forgotten key is an error, not a default. */
const limitsSchema = z.strictObject(
  Object.fromEntries(LIMIT_NAMES.map((name) => [name, limitValue(name)])) as Record<LimitName, ReturnType<typeof limitValue>>,
  { error: (issue) => (issue.code === "unrecognized_keys" ? `unknown limit ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}` : "must be a JSON object") },
);

/** The limits in force, the defaults they fall back to, and what the tenant uses now. */
async function limitsJson(env: Env, row: TenantRow) {
  const limits = limitsOf(env, row);
  const limiter = tenantLimiter(env, row.id);
  const [registrations, sockets, notifyLevel] = await Promise.all([
    liveRegistrations(env.DB, row.id, nowSeconds()),
    limiter.openSockets(),
    limiter.notifyLevel(limits.notify_per_minute),
  ]);
  return {
    tenant_id: row.id,
    limits,
    defaults: defaultLimits(env),
    // notify_per_minute: the bucket's level (changes counted in the last minute, drained at the limit's rate)
    usage: { registrations, sockets, notify_per_minute: Math.ceil(notifyLevel) },
  };
}

admin.get(
  "/tenants/:id/limits",
  operation({ summary: "A tenant's quotas in force, the defaults and its usage", responses: { 200: ok("{tenant_id, limits, defaults, usage}"), 404: NO_TENANT } }),
  async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  return c.json(await limitsJson(c.env, row));
});

/**
 * Sets the tenant's five limits (null: the default). Applies to the next request: a raised limit
 * frees capacity at once; a lowered one refuses new work but deletes and closes nothing.
 */
admin.put(
  "/tenants/:id/limits",
  operation({ summary: "Set a tenant's five limits (null: the default)", body: { json: limitsSchema }, responses: { 200: ok("{tenant_id, limits, defaults, usage}"), 404: NO_TENANT } }),
  async (c) => {
  const id = c.req.param("id");
  await tenantOr404(c.env.DB, id);
  const limits = await readJson(c, limitsSchema);
  if (!(await setTenantLimits(c.env.DB, id, limits, nowSeconds()))) throw notFound("tenant");
  return c.json(await limitsJson(c.env, await tenantOr404(c.env.DB, id)));
});

/** A disabled tenant's tokens and grants are refused and its WebSocket clients disconnected (4003). */
admin.post(
  "/tenants/:id/disable",
  operation({ summary: "Disable a tenant", description: "Its token and grants get 403; its sockets close (4003).", responses: { 200: ok("the tenant and closed_sockets"), 404: NO_TENANT } }),
  async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  const now = nowSeconds();
  if (row.disabled_at === null) await setTenantDisabled(c.env.DB, row.id, now, now);
  const closed = await onTenantSockets(c.env, row.id, (hub) => hub.closeAll(CLOSE.tenantDisabled, "tenant disabled"));
  return c.json({ ...tenantJson(await tenantOr404(c.env.DB, row.id)), closed_sockets: closed });
});

admin.post(
  "/tenants/:id/enable",
  operation({ summary: "Enable a tenant again", responses: { 200: ok("the tenant"), 404: NO_TENANT } }),
  async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  await setTenantDisabled(c.env.DB, row.id, null, nowSeconds());
  return c.json(tenantJson(await tenantOr404(c.env.DB, row.id)));
});

const deadLetterQuery = z.object({
  tenant: z.string().regex(TENANT_ID, "must be a tenant id").optional(),
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

/** Jobs whose delivery retries ran out, newest first. */
admin.get(
  "/dead-letters",
  operation({ summary: "Deliveries that ran out of time, newest first", query: deadLetterQuery, responses: { 200: ok("{dead_letters: [{id, tenant_id, queue, created_at, reason, job}], next_before}") } }),
  async (c) => {
  const query = parseWith(deadLetterQuery, c.req.query());
  const rows = await listDeadLetters(c.env.DB, query.tenant ?? null, query.before ?? Number.MAX_SAFE_INTEGER, query.limit);
  return c.json({
    dead_letters: rows.map((row) => ({ id: row.id, tenant_id: row.tenant_id, queue: row.queue, created_at: row.created_at, reason: row.reason, job: JSON.parse(row.body) })),
    next_before: rows.length === query.limit ? rows[rows.length - 1].id : null,
  });
});

/**
 * Re-queues a dead letter for its subscriptions that still exist, as a first attempt with a fresh
 * lifetime of its TTL (issue 11); the letter leaves the list.
 */
admin.post(
  "/dead-letters/:id/retry",
  operation({
    summary: "Send a dead letter again",
    responses: { 202: ok("{id, queued}"), 404: { description: "no such dead letter" }, 409: { description: "nothing_to_retry: none of its subscriptions is left" } },
  }),
  async (c) => {
  const id = Number(c.req.param("id"));
  try {
    if (!Number.isSafeInteger(id) || id <= 0) throw new DeadLetterNotFound("not a dead-letter id");
    return c.json({ id, queued: await retryDeadLetter(c.env, id) }, 202);
  } catch (error) {
    if (error instanceof DeadLetterNotFound) throw notFound("dead letter");
    if (error instanceof NothingToRetry) throw new ApiError(409, "nothing_to_retry", error.message);
    throw error;
  }
});

/** The key that signs new subscriptions, one being rotated in, and retired keys still signing their own. */
admin.get(
  "/vapid",
  operation({ summary: "The VAPID keys: signing, pending and retired", responses: { 200: ok("{public_key, pending_public_key, retired: [{public_key, subscriptions}]}") } }),
  async (c) => {
  const [current, pending, retired] = await Promise.all([currentVapidKeys(c.env), pendingVapidKey(c.env.DB), retiredVapidKeys(c.env.DB)]);
  return c.json({ public_key: current?.publicKey ?? null, pending_public_key: pending?.public_key ?? null, retired });
});

const rotateVapidSchema = z.object({ public_key: z.string().min(1), private_key: z.string().min(1) }).partial();

/**
 * VAPID key rotation (the draft's Key Rotation): a new key pair (generated, or the one given) is
 * pending while every Web Push subscription is sent the key-rotation message signed with the old
 * key; then it signs. Answers 202 at once; GET /v1/admin/vapid shows when the switch is done.
 */
admin.post(
  "/vapid/rotate",
  operation({
    summary: "Rotate the VAPID key",
    description: "A generated pair, or the one given; every Web Push subscription is told (the draft's Key Rotation) before the new key signs.",
    body: { json: rotateVapidSchema, optional: true },
    responses: { 202: ok("{public_key, pending_public_key}"), 409: { description: "rotation_in_progress" } },
  }),
  async (c) => {
  if ((await pendingVapidKey(c.env.DB)) !== null) throw new ApiError(409, "rotation_in_progress", "a VAPID key rotation is still under way");
  const given = await readOptionalJson(c, rotateVapidSchema);
  if ((given.public_key === undefined) !== (given.private_key === undefined)) {
    throw badRequest("invalid_request", "give both public_key and private_key, or neither for a generated pair");
  }
  const keys = given.public_key !== undefined ? { publicKey: given.public_key, privateKey: given.private_key! } : await generateVapidKeys();
  await checkVapidKeys(keys).catch((error: Error) => {
    throw badRequest("invalid_request", error.message);
  });
  const current = await currentVapidKeys(c.env);
  if (current?.publicKey === keys.publicKey) throw badRequest("invalid_request", "that key already signs");
  const keyId = await insertPendingVapidKey(c.env.DB, await keyringOf(c.env), keys, nowSeconds());
  const job: VapidRotationJob = { kind: "vapid-rotation", keyId, oldPublicKey: current?.publicKey ?? null, after: 0 };
  await c.env.FANOUT.send(job);
  return c.json({ public_key: current?.publicKey ?? null, pending_public_key: keys.publicKey }, 202);
});

/** Which key seals the stored secrets, and how many values are not sealed with it yet. */
admin.get(
  "/secrets",
  operation({ summary: "Which key seals stored secrets", responses: { 200: ok("{key_id, previous_key_id, pending}") } }),
  async (c) => {
  const keyring = await keyringOf(c.env);
  return c.json({ key_id: keyring.current.id, previous_key_id: keyring.previous?.id ?? null, pending: await countUnsealed(c.env.DB, keyring.current.id) });
});

/**
 * Re-seals, in queued pages, every stored secret not sealed with SECRETS_KEY: values sealed with
 * SECRETS_KEY_PREVIOUS, and rows from before secrets were sealed, still in clear. Answers 202.
 */
admin.post(
  "/secrets/rotate",
  operation({ summary: "Re-seal every stored secret with SECRETS_KEY", responses: { 202: ok("{key_id, pending}") } }),
  async (c) => {
  const keyring = await keyringOf(c.env);
  const job: SecretsRotationJob = { kind: "secrets-rotation", table: "tenants", after: "" };
  await c.env.FANOUT.send(job);
  return c.json({ key_id: keyring.current.id, pending: await countUnsealed(c.env.DB, keyring.current.id) }, 202);
});
