import { Hono } from "hono";
import { z } from "zod";
import { requireAdmin } from "../auth/middleware";
import { newGrantSecret, newNotifyToken, newTenantId } from "../auth/tenant-token";
import { sha256Hex } from "../crypto/secrets";
import { notFound } from "../errors";
import { nowSeconds } from "../expiry";
import {
  countTenantRecords,
  getTenant,
  insertTenant,
  listTenants,
  setTenantDisabled,
  updateTenantSecrets,
  type TenantRow,
} from "../store/tenants";
import { CLOSE } from "../hub/frames";
import { topicHubName } from "../hub/topic-hub";
import { listDeadLetters } from "../store/dead-letters";
import { tenantWebSocketTopics } from "../store/websocket-topics";
import type { AppEnv } from "../types";
import { parseWith, readJson } from "../validation";

/** A tenant as the operator sees it: never its token hash or grant secret. */
const tenantJson = (row: TenantRow) => ({
  id: row.id,
  name: row.name,
  disabled: row.disabled_at !== null,
  disabled_at: row.disabled_at,
  created_at: row.created_at,
  updated_at: row.updated_at,
});

const TENANT_ID = /^[0-9a-f]{24}$/;

async function tenantOr404(db: D1Database, id: string): Promise<TenantRow> {
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
  cursor: z.string().regex(TENANT_ID, "must be a tenant id from next_cursor").optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

export const admin = new Hono<AppEnv>();

admin.use(requireAdmin);

/** The notify token and grant secret are shown here once; only the token's hash is kept. */
admin.post("/tenants", async (c) => {
  const { name } = await readJson(c, createSchema);
  const id = newTenantId();
  const notifyToken = newNotifyToken(id);
  const grantSecret = newGrantSecret();
  const now = nowSeconds();
  await insertTenant(c.env.DB, {
    id,
    name,
    notify_token_hash: await sha256Hex(notifyToken),
    grant_secret: grantSecret,
    disabled_at: null,
    created_at: now,
    updated_at: now,
  });
  return c.json({ id, name, notify_token: notifyToken, grant_secret: grantSecret, created_at: now }, 201, {
    Location: `${new URL(c.req.url).origin}/v1/admin/tenants/${id}`,
  });
});

admin.get("/tenants", async (c) => {
  const query = parseWith(listQuery, c.req.query());
  const rows = await listTenants(c.env.DB, query.cursor ?? "", query.limit);
  return c.json({
    tenants: rows.map(tenantJson),
    next_cursor: rows.length === query.limit ? rows[rows.length - 1].id : null,
  });
});

admin.get("/tenants/:id", async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  return c.json({ ...tenantJson(row), counts: await countTenantRecords(c.env.DB, row.id, nowSeconds()) });
});

/** Issues new secrets (both unless told otherwise); the old ones stop working at once. */
admin.post("/tenants/:id/rotate", async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  const hasBody = (c.req.header("Content-Length") ?? "0") !== "0" || c.req.header("Transfer-Encoding") !== undefined;
  const which = hasBody ? await readJson(c, rotateSchema) : parseWith(rotateSchema, {});
  const notifyToken = which.notify_token ? newNotifyToken(row.id) : undefined;
  const grantSecret = which.grant_secret ? newGrantSecret() : undefined;
  await updateTenantSecrets(
    c.env.DB,
    row.id,
    { notify_token_hash: notifyToken && (await sha256Hex(notifyToken)), grant_secret: grantSecret },
    nowSeconds(),
  );
  return c.json({ id: row.id, notify_token: notifyToken ?? null, grant_secret: grantSecret ?? null });
});

/** A disabled tenant's tokens and grants are refused and its WebSocket clients disconnected (4003). */
admin.post("/tenants/:id/disable", async (c) => {
  const row = await tenantOr404(c.env.DB, c.req.param("id"));
  const now = nowSeconds();
  if (row.disabled_at === null) await setTenantDisabled(c.env.DB, row.id, now, now);
  const topics = await tenantWebSocketTopics(c.env.DB, row.id);
  const closed = await Promise.all(
    topics.map((topic) => c.env.TOPIC_HUB.get(c.env.TOPIC_HUB.idFromName(topicHubName(row.id, topic))).closeAll(CLOSE.tenantDisabled, "tenant disabled")),
  );
  return c.json({ ...tenantJson(await tenantOr404(c.env.DB, row.id)), closed_sockets: closed.reduce((a, b) => a + b, 0) });
});

admin.post("/tenants/:id/enable", async (c) => {
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
admin.get("/dead-letters", async (c) => {
  const query = parseWith(deadLetterQuery, c.req.query());
  const rows = await listDeadLetters(c.env.DB, query.tenant ?? null, query.before ?? Number.MAX_SAFE_INTEGER, query.limit);
  return c.json({
    dead_letters: rows.map((row) => ({ id: row.id, tenant_id: row.tenant_id, queue: row.queue, created_at: row.created_at, job: JSON.parse(row.body) })),
    next_before: rows.length === query.limit ? rows[rows.length - 1].id : null,
  });
});
