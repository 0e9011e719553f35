/**
 * D1 access to push gateways (issue 14): one per tenant, its origin, polling and two sealed
 * secrets: the poll password (replayed to the origin, so never shown again) and the key that
 * turns a collection's path into its topic.
 */
import { open, seal, type Keyring } from "../crypto/sealed";

export interface GatewayRow {
  tenant_id: string;
  origin: string;
  poll_seconds: number;
  poll_username: string | null;
  /** Sealed: open with `openPollPassword`. */
  poll_password: string | null;
  /** Sealed: open with `openTopicKey`. */
  topic_key: string;
  last_poll_error: string | null;
  created_at: number;
  updated_at: number;
}

export const POLL_PASSWORD_COLUMN = "gateways.poll_password";
export const TOPIC_KEY_COLUMN = "gateways.topic_key";

export const sealPollPassword = (keyring: Keyring, tenantId: string, password: string) => seal(keyring, POLL_PASSWORD_COLUMN, tenantId, password);
export const openPollPassword = (keyring: Keyring, row: Pick<GatewayRow, "tenant_id" | "poll_password">) =>
  row.poll_password === null ? Promise.resolve(null) : open(keyring, POLL_PASSWORD_COLUMN, row.tenant_id, row.poll_password);
export const sealTopicKey = (keyring: Keyring, tenantId: string, key: string) => seal(keyring, TOPIC_KEY_COLUMN, tenantId, key);
export const openTopicKey = (keyring: Keyring, row: Pick<GatewayRow, "tenant_id" | "topic_key">) => open(keyring, TOPIC_KEY_COLUMN, row.tenant_id, row.topic_key);

export function getGateway(db: D1Database, tenantId: string): Promise<GatewayRow | null> {
  return db.prepare("SELECT * FROM gateways WHERE tenant_id = ?").bind(tenantId).first<GatewayRow>();
}

/** The gateway with whether its tenant is disabled (a disabled tenant's gateway proxies without push), in one query. */
export function getGatewayForProxy(db: D1Database, tenantId: string): Promise<(GatewayRow & { tenant_disabled: number }) | null> {
  return db
    .prepare("SELECT g.*, t.disabled_at IS NOT NULL AS tenant_disabled FROM gateways g JOIN tenants t ON t.id = g.tenant_id WHERE g.tenant_id = ?")
    .bind(tenantId)
    .first();
}

/** The gateway's settings; a new one takes `topicKey` (sealed), an existing one keeps its own. */
export interface GatewaySettings {
  origin: string;
  poll_seconds: number;
  poll_username: string | null;
  poll_password: string | null;
}

/**
 * Creates or replaces the tenant's gateway settings in one statement; the topic key and
 * created_at of an existing gateway stay, so topics do not change under registered clients.
 * Answers whether it was created; null when there is no such tenant.
 */
export async function putGateway(db: D1Database, tenantId: string, settings: GatewaySettings, sealedTopicKey: string, now: number): Promise<{ created: boolean } | null> {
  const row = await db
    .prepare(
      `INSERT INTO gateways (tenant_id, origin, poll_seconds, poll_username, poll_password, topic_key, created_at, updated_at)
       SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?7 FROM tenants WHERE id = ?1
       ON CONFLICT (tenant_id) DO UPDATE SET origin = excluded.origin, poll_seconds = excluded.poll_seconds,
         poll_username = excluded.poll_username, poll_password = excluded.poll_password, updated_at = excluded.updated_at
       RETURNING topic_key = ?6 AS created`,
    )
    .bind(tenantId, settings.origin, settings.poll_seconds, settings.poll_username, settings.poll_password, sealedTopicKey, now)
    .first<{ created: number }>();
  return row === null ? null : { created: row.created === 1 };
}

/**
 * Deletes the gateway, the registrations made for its collections' topics (push-register through
 * it) and, by the foreign key, its watched collections: one batch, one transaction.
 */
export async function deleteGateway(db: D1Database, tenantId: string): Promise<boolean> {
  const [, gone] = await db.batch([
    db.prepare("DELETE FROM registrations WHERE tenant_id = ?1 AND topic IN (SELECT topic FROM watched_collections WHERE tenant_id = ?1)").bind(tenantId),
    db.prepare("DELETE FROM gateways WHERE tenant_id = ?").bind(tenantId),
  ]);
  return gone.meta.changes > 0;
}

/** A collection's tokens as last seen (RFC 6578 sync-token, CalendarServer getctag, getetag). */
export interface CollectionTokens {
  sync_token: string | null;
  ctag: string | null;
  etag: string | null;
}

/**
 * Watches a collection from its first registration on, its tokens then the baseline; a collection
 * already watched keeps its own (a later change must still be told).
 */
export async function watchCollection(db: D1Database, tenantId: string, collection: { path: string; href: string; topic: string } & CollectionTokens, now: number): Promise<void> {
  await db
    .prepare(
      `INSERT INTO watched_collections (tenant_id, path, href, topic, sync_token, ctag, etag, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, path) DO NOTHING`,
    )
    .bind(tenantId, collection.path, collection.href, collection.topic, collection.sync_token, collection.ctag, collection.etag, now)
    .run();
}

export async function countWatchedCollections(db: D1Database, tenantId: string): Promise<number> {
  return (await db.prepare("SELECT COUNT(*) AS n FROM watched_collections WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>())?.n ?? 0;
}

export interface WatchedCollection {
  path: string;
  href: string;
  topic: string;
}

/** Which of these collection paths the gateway watches: one query, on the primary key. */
export async function watchedAmong(db: D1Database, tenantId: string, paths: string[]): Promise<WatchedCollection[]> {
  if (paths.length === 0) return [];
  const { results } = await db
    .prepare(`SELECT path, href, topic FROM watched_collections WHERE tenant_id = ? AND path IN (${paths.map(() => "?").join(", ")})`)
    .bind(tenantId, ...paths)
    .all<WatchedCollection>();
  return results;
}

/** The tokens a collection has now, told: the poller compares against these. */
export async function moveTokens(db: D1Database, tenantId: string, path: string, tokens: CollectionTokens): Promise<void> {
  await db
    .prepare("UPDATE watched_collections SET sync_token = ?, ctag = ?, etag = ? WHERE tenant_id = ? AND path = ?")
    .bind(tokens.sync_token, tokens.ctag, tokens.etag, tenantId, path)
    .run();
}

/** A watched collection as the poller asks after it: where, its topic, and its tokens as last seen. */
export interface PolledCollection extends WatchedCollection, CollectionTokens {}

/**
 * The poller's round (issue 14, item 7): the collections with a live registration, the ones asked
 * longest ago first, at most `limit`. The rest wait for the next round. One query: the gateway's
 * watched collections by `watched_collections_by_poll`, each one's registrations by
 * `registrations_by_topic`.
 */
export async function collectionsToPoll(db: D1Database, tenantId: string, now: number, limit: number): Promise<PolledCollection[]> {
  const { results } = await db.prepare(COLLECTIONS_TO_POLL).bind(tenantId, now, limit).all<PolledCollection>();
  return results;
}

/**
 * The round's query (its plan is tested): tenant, now, limit. The unary `+` keeps SQLite off
 * registrations_by_tenant_expiry, which would walk all the tenant's live registrations for each
 * collection; by topic it reads that topic's only.
 */
export const COLLECTIONS_TO_POLL = `SELECT w.path, w.href, w.topic, w.sync_token, w.ctag, w.etag FROM watched_collections w
  WHERE w.tenant_id = ?1 AND EXISTS (SELECT 1 FROM registrations r WHERE r.tenant_id = ?1 AND r.topic = w.topic AND +r.expires_at > ?2)
  ORDER BY w.polled_at LIMIT ?3`;

/** A collection whose tokens a round found changed: from what it started from, to what it found. */
export interface TokenMove {
  path: string;
  was: CollectionTokens;
  now: CollectionTokens;
}

/**
 * Records a round in one batch of three statements, whatever its size (a D1 invocation has a
 * query budget): every collection asked is marked asked now; the tokens of the changed ones move
 * on, but only from what the round started from. A write through the gateway that moved them
 * meanwhile has told its change already (src/gateway/notify.ts): a second push would repeat it.
 * Answers the paths whose tokens moved: the changes to tell.
 */
export async function recordPoll(db: D1Database, tenantId: string, asked: string[], moves: TokenMove[], error: string | null, now: number): Promise<Set<string>> {
  const [moved] = await db.batch<{ path: string }>([
    db
      .prepare(
        `UPDATE watched_collections SET sync_token = json_extract(j.value, '$.now.sync_token'), ctag = json_extract(j.value, '$.now.ctag'), etag = json_extract(j.value, '$.now.etag')
         FROM json_each(?2) AS j
         WHERE watched_collections.tenant_id = ?1 AND watched_collections.path = json_extract(j.value, '$.path')
           AND watched_collections.sync_token IS json_extract(j.value, '$.was.sync_token') AND watched_collections.ctag IS json_extract(j.value, '$.was.ctag')
           AND watched_collections.etag IS json_extract(j.value, '$.was.etag')
         RETURNING watched_collections.path AS path`,
      )
      .bind(tenantId, JSON.stringify(moves)),
    db.prepare("UPDATE watched_collections SET polled_at = ?2 WHERE tenant_id = ?1 AND path IN (SELECT value FROM json_each(?3))").bind(tenantId, now, JSON.stringify(asked)),
    db.prepare("UPDATE gateways SET last_poll_error = ? WHERE tenant_id = ?").bind(error, tenantId),
  ]);
  return new Set(moved.results.map((row) => row.path));
}

/** The gateways the hourly cron wakes: polling on, and a watched collection with a live registration. */
export async function gatewaysToPoll(db: D1Database, now: number): Promise<{ tenant_id: string; poll_seconds: number }[]> {
  const { results } = await db
    .prepare(
      `SELECT g.tenant_id, g.poll_seconds FROM gateways g WHERE g.poll_seconds > 0 AND EXISTS (
         SELECT 1 FROM watched_collections w JOIN registrations r ON r.tenant_id = w.tenant_id AND r.topic = w.topic
         WHERE w.tenant_id = g.tenant_id AND r.expires_at > ?)`,
    )
    .bind(now)
    .all<{ tenant_id: string; poll_seconds: number }>();
  return results;
}
