/** D1 access to the `registrations` table: subscription x topic, with triggers and expiry. */
import type { Keyring } from "../crypto/sealed";
import {
  deleteSubscriptionIfUnused,
  isTokenTransport,
  openToken,
  OWNED_BY_ANOTHER,
  upsertSubscription,
  type PushServiceName,
  type RegistrationQuota,
  type StoredSubscription,
  type Transport,
} from "./subscriptions";

import type { Depth } from "../depth";
import type { LimitName } from "../limits/limits";
import { liveRegistrationsSql, WITHIN_QUOTA } from "./limits";

export type { Depth };

export interface Trigger {
  contentUpdate: Depth | null;
  propertyUpdate: Depth | null;
  /** `{ns}name` of the properties asked for; null = any. */
  props: string[] | null;
}

/** Who acts: the tenant itself (its token) or one of its users (a client grant's `sub`). */
export type Actor = { tenantId: string; owner: string | null };

export interface RegistrationRow {
  id: string;
  tenant_id: string;
  topic: string;
  subscription_id: number;
  owner: string | null;
  client_id: string | null;
  content_update_depth: Depth | null;
  property_update_depth: Depth | null;
  property_update_props: string | null;
  expires_at: number;
  created_at: number;
  updated_at: number;
  transport: Transport;
  /** The push service the client chose (web_push and unified_push are both Web Push). */
  service: PushServiceName;
  /** The push resource URL, (opened for its owner) the FCM registration token, or the connection id. */
  identifier: string;
  /** fcm: the sealed token that `identifier` was opened from. */
  sealed_token: string | null;
  /** fcm: 'android' or 'ios' (NULL: android, see fcmPlatformOf); NULL for every other transport. */
  platform: string | null;
  /** 1 when messages are encrypted for it (RFC 8291 keys), else 0. */
  encrypted: 0 | 1;
  /** web_push: the VAPID key that signs it (null: none bound yet, the current one signs). */
  vapid_public_key: string | null;
  /** The subscription's delivery state (issue 11), written by the deliveries consumer; Unix seconds. */
  last_success_at: number | null;
  last_failure_at: number | null;
  last_failure_status: number | null;
  last_failure_reason: string | null;
  consecutive_failures: number;
  next_attempt_at: number | null;
  failing_since: number | null;
}

export interface RegistrationInput {
  id: string;
  topic: string;
  clientId: string | null;
  trigger: Trigger;
  expiresAt: number;
}

const SELECT_JOINED = `SELECT r.*, s.transport, s.service, s.identifier, s.sealed_token, s.platform,
    (s.p256dh IS NOT NULL AND s.auth IS NOT NULL) AS encrypted, s.vapid_public_key,
    s.last_success_at, s.last_failure_at, s.last_failure_status, s.last_failure_reason, s.consecutive_failures,
    s.next_attempt_at, s.failing_since
  FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id`;

/** Rows as their owner sees them: an FCM or HMS row's identifier is its token, opened from the envelope. */
async function opened(keys: () => Promise<Keyring>, rows: RegistrationRow[]): Promise<RegistrationRow[]> {
  if (!rows.some((row) => isTokenTransport(row.transport))) return rows;
  const keyring = await keys();
  return Promise.all(
    rows.map(async (row) =>
      isTokenTransport(row.transport)
        ? { ...row, identifier: await openToken(keyring, row.tenant_id, row.identifier, row.sealed_token ?? "", row.transport) }
        : row,
    ),
  );
}

/**
 * Creates the registration, or updates the one this subscription already has for the topic
 * (the draft's Subscription Updates: same identifier + resource = update, same id). A user may
 * only use a push resource no one else holds a live registration of (on any topic), so a user
 * can neither re-key nor redirect another's pushes; the tenant may attach and update anything of
 * its own. Check and write are one batch (one transaction): a refusal writes nothing.
 * A new registration (none live for this subscription and topic) takes a slot of the tenant's
 * and, for a user, of the user's registration limit (issue 12): checked in the same transaction
 * as the write, and a refusal writes nothing, subscription included.
 */
export async function upsertRegistration(
  db: D1Database,
  keys: () => Promise<Keyring>,
  actor: Actor,
  sub: StoredSubscription,
  reg: RegistrationInput,
  limits: Pick<RegistrationQuota, "registrations" | "registrations_per_user">,
  now: number,
): Promise<Upserted> {
  // read first in the same transaction: why a write below did nothing
  const status = db
    .prepare(
      `SELECT (${OWNED_BY_ANOTHER}) AS owned, ${liveRegistrationsSql("?1", "?4", "?5")} AS user_live`,
    )
    .bind(actor.tenantId, sub.transport, sub.identifier, now, actor.owner);
  const upsert = db
    .prepare(
      `INSERT INTO registrations (id, tenant_id, topic, subscription_id, owner, client_id,
         content_update_depth, property_update_depth, property_update_props, expires_at, created_at, updated_at)
       SELECT ?6, ?1, ?7,
         (SELECT id FROM subscriptions WHERE tenant_id = ?1 AND transport = ?2 AND identifier = ?3),
         ?5, ?8, ?9, ?10, ?11, ?12, ?4, ?4
       WHERE NOT (${OWNED_BY_ANOTHER}) AND ${WITHIN_QUOTA("?7")}
       ON CONFLICT (subscription_id, topic) DO UPDATE SET
         client_id = COALESCE(excluded.client_id, registrations.client_id),
         content_update_depth = excluded.content_update_depth,
         property_update_depth = excluded.property_update_depth,
         property_update_props = excluded.property_update_props,
         expires_at = excluded.expires_at,
         updated_at = excluded.updated_at,
         -- an expired registration is gone for its owner: whoever registers again starts afresh
         owner = CASE WHEN registrations.expires_at <= excluded.updated_at THEN excluded.owner ELSE registrations.owner END,
         created_at = CASE WHEN registrations.expires_at <= excluded.updated_at THEN excluded.created_at ELSE registrations.created_at END
       WHERE ?5 IS NULL OR registrations.owner IS ?5 OR registrations.expires_at <= excluded.updated_at
       RETURNING id`,
    )
    .bind(
      actor.tenantId,
      sub.transport,
      sub.identifier,
      now,
      actor.owner,
      reg.id,
      reg.topic,
      reg.clientId,
      reg.trigger.contentUpdate,
      reg.trigger.propertyUpdate,
      reg.trigger.props === null ? null : JSON.stringify(reg.trigger.props),
      reg.expiresAt,
      limits.registrations,
      limits.registrations_per_user,
    );
  const quota = { topic: reg.topic, ...limits };
  const [checked, , written] = await db.batch<{ id: string } & { owned: 0 | 1; user_live: number }>([
    status,
    upsertSubscription(db, actor.tenantId, sub, actor.owner, now, quota),
    upsert,
  ]);
  const id = written.results[0]?.id;
  if (id === undefined) {
    const { owned, user_live } = checked.results[0];
    if (owned === 1) return { kind: "owned_by_another" };
    // the user's limit first: it is the one a user can do something about
    if (actor.owner !== null && user_live >= limits.registrations_per_user) {
      return { kind: "quota_exceeded", limit: "registrations_per_user", max: limits.registrations_per_user };
    }
    return { kind: "quota_exceeded", limit: "registrations", max: limits.registrations };
  }
  const row = await db.prepare(`${SELECT_JOINED} WHERE r.id = ?`).bind(id).first<RegistrationRow>();
  // deleted in the instant between (a DELETE racing the write): as if another held it
  if (row === null) return { kind: "owned_by_another" };
  const [shown] = await opened(keys, [row]);
  return { kind: "written", row: shown, created: id === reg.id };
}

export type Upserted =
  | { kind: "written"; row: RegistrationRow; created: boolean }
  /** the push resource is another user's */
  | { kind: "owned_by_another" }
  /** a new registration, and no slot left under this limit */
  | { kind: "quota_exceeded"; limit: Extract<LimitName, "registrations" | "registrations_per_user">; max: number };

/** The live registration with this id, if the actor may see it (its owner, or its tenant). */
export async function getRegistration(db: D1Database, keys: () => Promise<Keyring>, actor: Actor, id: string, now: number): Promise<RegistrationRow | null> {
  const row = await db
    .prepare(`${SELECT_JOINED} WHERE r.id = ?1 AND r.tenant_id = ?2 AND r.expires_at > ?3 AND (?4 IS NULL OR r.owner IS ?4)`)
    .bind(id, actor.tenantId, now, actor.owner)
    .first<RegistrationRow>();
  return row === null ? null : (await opened(keys, [row]))[0];
}

/** Keyset page of the actor's live registrations (a user's own, or all of the tenant's). */
export async function listRegistrations(
  db: D1Database,
  keys: () => Promise<Keyring>,
  actor: Actor,
  options: { topic: string | null; after: string; limit: number; now: number },
): Promise<RegistrationRow[]> {
  const filters = ["r.tenant_id = ?", "r.id > ?", "r.expires_at > ?"];
  const params: (string | number)[] = [actor.tenantId, options.after, options.now];
  if (actor.owner !== null) {
    filters.push("r.owner = ?");
    params.push(actor.owner);
  }
  if (options.topic !== null) {
    filters.push("r.topic = ?");
    params.push(options.topic);
  }
  const { results } = await db
    .prepare(`${SELECT_JOINED} WHERE ${filters.join(" AND ")} ORDER BY r.id LIMIT ?`)
    .bind(...params, options.limit)
    .all<RegistrationRow>();
  return opened(keys, results);
}

/** What went with a deleted registration: enough to tell its connection, when it had one. */
export interface DeletedRegistration {
  tenant_id: string;
  topic: string;
  transport: Transport;
  identifier: string;
}

/** Deletes registrations by id, then each subscription left without any, in one transaction. */
async function deleteByIds(db: D1Database, rows: (DeletedRegistration & { id: string; subscription_id: number })[]): Promise<DeletedRegistration[]> {
  if (rows.length === 0) return [];
  const ids = JSON.stringify(rows.map((row) => row.id));
  const [deleted] = await db.batch<{ id: string }>([
    db.prepare("DELETE FROM registrations WHERE id IN (SELECT value FROM json_each(?)) RETURNING id").bind(ids),
    ...[...new Set(rows.map((row) => row.subscription_id))].map((id) => deleteSubscriptionIfUnused(db, id)),
  ]);
  const gone = new Set(deleted.results.map((row) => row.id));
  return rows.filter((row) => gone.has(row.id)).map(({ tenant_id, topic, transport, identifier }) => ({ tenant_id, topic, transport, identifier }));
}

/**
 * Deletes a live registration, and its subscription once nothing else uses it. `actor` null: by
 * its registration URL alone, a capability (128 random bits), as a client without credentials
 * for this host unregisters; otherwise only one the actor may see (its owner, or its tenant).
 */
export async function deleteRegistration(db: D1Database, actor: Actor | null, id: string, now: number): Promise<DeletedRegistration | null> {
  const row = await db
    .prepare(
      `SELECT r.id, r.tenant_id, r.topic, r.subscription_id, s.transport, s.identifier
       FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id
       WHERE r.id = ?1 AND r.expires_at > ?2 AND (?3 IS NULL OR r.tenant_id = ?3) AND (?4 IS NULL OR r.owner IS ?4)`,
    )
    .bind(id, now, actor?.tenantId ?? null, actor?.owner ?? null)
    .first<DeletedRegistration & { id: string; subscription_id: number }>();
  if (row === null) return null;
  return (await deleteByIds(db, [row]))[0] ?? null;
}

/**
 * Deletes the actor's live registrations of `topic` whose subscription is one of those named (by
 * transport and identifier; the early draft's unsubscribe), and subscriptions left without any.
 */
export async function deleteTopicRegistrations(
  db: D1Database,
  actor: Actor,
  topic: string,
  subscriptions: { transport: Transport; identifier: string }[],
  now: number,
): Promise<DeletedRegistration[]> {
  const { results } = await db
    .prepare(
      `SELECT r.id, r.tenant_id, r.topic, r.subscription_id, s.transport, s.identifier
       FROM json_each(?5) j
       JOIN subscriptions s ON s.tenant_id = ?1 AND s.transport = json_extract(j.value, '$.transport') AND s.identifier = json_extract(j.value, '$.identifier')
       JOIN registrations r ON r.subscription_id = s.id AND r.topic = ?2
       WHERE r.expires_at > ?3 AND (?4 IS NULL OR r.owner IS ?4)`,
    )
    .bind(actor.tenantId, topic, now, actor.owner, JSON.stringify(subscriptions))
    .all<DeletedRegistration & { id: string; subscription_id: number }>();
  return deleteByIds(db, results);
}

/** Deletes up to `limit` expired registrations (index on expires_at); returns how many. */
export async function purgeExpiredRegistrations(db: D1Database, now: number, limit: number): Promise<number> {
  const result = await db
    .prepare("DELETE FROM registrations WHERE id IN (SELECT id FROM registrations WHERE expires_at <= ? LIMIT ?)")
    .bind(now, limit)
    .run();
  return result.meta.changes;
}

/** A live registration of a topic with what delivery needs of its subscription. */
export interface RecipientRow {
  id: string;
  subscription_id: number;
  content_update_depth: Depth | null;
  property_update_depth: Depth | null;
  property_update_props: string | null;
  transport: Transport;
  /** The push resource URL, or the FCM token's digest. */
  identifier: string;
  p256dh: string | null;
  /** Sealed, as stored. */
  auth: string | null;
  /** fcm: the token, sealed. */
  sealed_token: string | null;
  /** fcm: 'android' or 'ios' (NULL: android, see fcmPlatformOf). */
  platform: string | null;
  /** fcm: the FCM topic its token was added to (src/queues/fcm-topics.ts); absent or NULL: none. */
  fcm_topic?: string | null;
}

/**
 * Keyset page of a topic's live registrations in id order: runs once per page of every
 * notification, served by registrations_by_topic (tenant_id, topic, id).
 */
export async function pageTopicRecipients(
  db: D1Database,
  tenantId: string,
  topic: string,
  after: string,
  now: number,
  limit: number,
): Promise<RecipientRow[]> {
  const { results } = await topicRecipientsStatement(db, tenantId, topic, after, now, limit).all<RecipientRow>();
  return results;
}

/**
 * Whether a topic has a live registration: the TopicHub asks before it queues a fan-out (issue
 * 15), so a topic nobody registered to costs no queue message. By `registrations_by_topic`.
 */
export async function topicHasRegistrations(db: D1Database, tenantId: string, topic: string, now: number): Promise<boolean> {
  return (await db.prepare(TOPIC_HAS_REGISTRATIONS).bind(tenantId, topic, now).first()) !== null;
}

/** The unary `+` keeps SQLite on registrations_by_topic: by tenant and expiry it would walk all the tenant's registrations. */
export const TOPIC_HAS_REGISTRATIONS = "SELECT 1 FROM registrations WHERE tenant_id = ? AND topic = ? AND +expires_at > ? LIMIT 1";

/** The statement of `pageTopicRecipients`, for a `db.batch` of several topics' first pages (issue 15). */
export function topicRecipientsStatement(db: D1Database, tenantId: string, topic: string, after: string, now: number, limit: number): D1PreparedStatement {
  return db
    .prepare(
      `SELECT r.id, r.subscription_id, r.content_update_depth, r.property_update_depth, r.property_update_props,
              s.transport, s.identifier, s.p256dh, s.auth, s.sealed_token, s.platform, r.fcm_topic
       FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id
       WHERE r.tenant_id = ? AND r.topic = ? AND r.id > ? AND r.expires_at > ?
       ORDER BY r.id LIMIT ?`,
    )
    .bind(tenantId, topic, after, now, limit);
}
