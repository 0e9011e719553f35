/**
 * D1 access to the `subscriptions` table: where to deliver, stored once per identifier. Secrets
 * are sealed (src/crypto/sealed.ts): Web Push `auth`, and FCM tokens, which are found by their
 * SHA-256 digest (the identifier) and kept sealed beside it.
 */
import { sha256Hex } from "../crypto/secrets";
import { open, seal, type Keyring } from "../crypto/sealed";
import { WITHIN_QUOTA } from "./limits";
import type { RecipientRow } from "./registrations";

/**
 * How a subscription is delivered to (the `transport` column): Web Push (UnifiedPush too, keyed or
 * keyless), FCM, or a WebSocket connection of the early draft's connection-ID flow, whose frames
 * the TopicHub sends itself.
 */
export type Transport = "web_push" | "fcm" | "hms" | "websocket";

/**
 * The push service the client chose (the `service` column, shown as `"transport"`). `web_push` and
 * `unified_push` are both Web Push resources: one push resource is one subscription under either
 * name (the unique key is the transport's), so it is never delivered to twice.
 */
export type PushServiceName = "web_push" | "unified_push" | "fcm" | "hms" | "websocket";

/**
 * The device an FCM registration token belongs to (the `platform` column), which decides the
 * message's delivery options: Android's `android` block, or iOS's `apns` block (APNs reached
 * through FCM). NULL on every other transport.
 */
export const FCM_PLATFORMS = ["android", "ios"] as const;
export type FcmPlatform = (typeof FCM_PLATFORMS)[number];

/**
 * The platform a stored FCM subscription is sent as: `ios` only when the column says so. NULL is
 * android: the tokens registered before platforms existed were all Android apps', and so are rows
 * the previous release writes between the migration and the new code (migrations run first).
 */
export const fcmPlatformOf = (column: string | null | undefined): FcmPlatform => (column === "ios" ? "ios" : "android");

export interface WebPushKeys {
  p256dh: string;
  auth: string;
  content_encoding: "aes128gcm";
}

/**
 * A subscription as a client hands it over: identified per transport, keys for Web Push only (and
 * none for a keyless UnifiedPush endpoint, which is sent the push message plain).
 */
export interface SubscriptionInput {
  transport: Transport;
  service: PushServiceName;
  /** The push resource URL, the FCM or HMS token (in clear), or the connection id. */
  identifier: string;
  keys: WebPushKeys | null;
  /** fcm: the device's platform (default android); absent for every other transport. */
  platform?: FcmPlatform;
}

/** A subscription as D1 keeps it. */
export interface StoredSubscription {
  transport: Transport;
  service: PushServiceName;
  /** The push resource URL, SHA-256 (hex) of the FCM token, or the connection id. */
  identifier: string;
  p256dh: string | null;
  /** Sealed. */
  auth: string | null;
  contentEncoding: string | null;
  /** fcm: the token, sealed. */
  sealedToken: string | null;
  /** fcm: android or ios; null for every other transport. */
  platform: FcmPlatform | null;
  /** web_push: the VAPID key signing at creation, which signs it for good (set on INSERT only). */
  vapidPublicKey?: string | null;
}

export const AUTH_COLUMN = "subscriptions.auth";
export const TOKEN_COLUMN = "subscriptions.sealed_token";

/** The row key of a subscription's envelopes: its unique key, known before the row exists. */
export const subscriptionRowKey = (tenantId: string, transport: Transport, identifier: string) => `${tenantId}\n${transport}\n${identifier}`;

/** FCM and HMS tokens are looked up by digest, so D1 never needs one in clear to find it. */
export const tokenIdentifier = (token: string) => sha256Hex(token);

/** The transports whose identifier is a token's digest, the token sealed beside it. */
export const TOKEN_TRANSPORTS = ["fcm", "hms"] as const;
export const isTokenTransport = (transport: string): transport is (typeof TOKEN_TRANSPORTS)[number] => (TOKEN_TRANSPORTS as readonly string[]).includes(transport);

/** `vapidPublicKey`: the key signing now, bound to a Web Push subscription when it is created. */
export async function storedSubscription(keyring: Keyring, tenantId: string, sub: SubscriptionInput, vapidPublicKey: string | null = null): Promise<StoredSubscription> {
  if (isTokenTransport(sub.transport)) {
    const identifier = await tokenIdentifier(sub.identifier);
    const sealedToken = await seal(keyring, TOKEN_COLUMN, subscriptionRowKey(tenantId, sub.transport, identifier), sub.identifier);
    const platform = sub.transport === "fcm" ? (sub.platform ?? "android") : null;
    return { transport: sub.transport, service: sub.service, identifier, p256dh: null, auth: null, contentEncoding: null, sealedToken, platform };
  }
  const auth = sub.keys === null ? null : await seal(keyring, AUTH_COLUMN, subscriptionRowKey(tenantId, sub.transport, sub.identifier), sub.keys.auth);
  return {
    transport: sub.transport,
    service: sub.service,
    identifier: sub.identifier,
    p256dh: sub.keys?.p256dh ?? null,
    auth,
    contentEncoding: sub.keys?.content_encoding ?? null,
    sealedToken: null,
    platform: null,
    vapidPublicKey: sub.transport === "web_push" ? vapidPublicKey : null,
  };
}

export const openAuth = (keyring: Keyring, tenantId: string, endpoint: string, sealed: string) =>
  open(keyring, AUTH_COLUMN, subscriptionRowKey(tenantId, "web_push", endpoint), sealed);

/** An FCM (or, with `transport`, HMS) token opened from its envelope. */
export const openToken = (keyring: Keyring, tenantId: string, identifier: string, sealed: string, transport: "fcm" | "hms" = "fcm") =>
  open(keyring, TOKEN_COLUMN, subscriptionRowKey(tenantId, transport, identifier), sealed);

/**
 * A push resource belongs to its user: true (in SQL) while the tenant's subscription with this
 * identifier has a live registration of anyone but `owner` (the tenant's own ones included).
 * Parameters: ?1 tenant, ?2 transport, ?3 identifier, ?4 now, ?5 owner (NULL: the tenant acts,
 * and may attach and re-key anything of its own).
 */
export const OWNED_BY_ANOTHER = `?5 IS NOT NULL AND EXISTS (
  SELECT 1 FROM subscriptions os JOIN registrations orr ON orr.subscription_id = os.id
  WHERE os.tenant_id = ?1 AND os.transport = ?2 AND os.identifier = ?3 AND orr.expires_at > ?4 AND orr.owner IS NOT ?5)`;

/**
 * Statement that creates the subscription or, when the tenant already has one with this
 * identifier, refreshes its keys (the draft binds keys to the push resource, newest wins), takes
 * the service name and FCM platform it was registered under last, and forgets past failures.
 * Writes nothing when the resource is another user's (OWNED_BY_ANOTHER). The VAPID key is set on
 * creation only: the push service bound the push resource to the key it was made with, so
 * re-registering keeps it.
 * Writes nothing either when the registration it is for is over quota (`quota`: its topic and the
 * limits in force), so a refused registration leaves no subscription behind.
 */
export function upsertSubscription(
  db: D1Database,
  tenantId: string,
  sub: StoredSubscription,
  owner: string | null,
  now: number,
  quota: RegistrationQuota,
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO subscriptions (tenant_id, transport, service, identifier, p256dh, auth, content_encoding, sealed_token, created_at, updated_at, vapid_public_key, platform)
       SELECT ?1, ?2, ?10, ?3, ?6, ?7, ?8, ?9, ?4, ?4, ?11, ?15 WHERE NOT (${OWNED_BY_ANOTHER}) AND ${WITHIN_QUOTA("?12")}
       ON CONFLICT (tenant_id, transport, identifier) DO UPDATE SET
         service = excluded.service, p256dh = excluded.p256dh, auth = excluded.auth, content_encoding = excluded.content_encoding,
         sealed_token = excluded.sealed_token, platform = excluded.platform, updated_at = excluded.updated_at, consecutive_failures = 0, failing_since = NULL`,
    )
    .bind(
      tenantId, sub.transport, sub.identifier, now, owner, sub.p256dh, sub.auth, sub.contentEncoding, sub.sealedToken, sub.service, sub.vapidPublicKey ?? null,
      quota.topic, quota.registrations, quota.registrations_per_user, sub.platform,
    );
}

/** The registration a subscription is written for, and the registration limits in force. */
export interface RegistrationQuota {
  topic: string;
  registrations: number;
  registrations_per_user: number;
}

/** Deletes the subscription when no registration refers to it any more. */
export function deleteSubscriptionIfUnused(db: D1Database, subscriptionId: number): D1PreparedStatement {
  return db
    .prepare(
      `DELETE FROM subscriptions WHERE id = ?
         AND NOT EXISTS (SELECT 1 FROM registrations WHERE subscription_id = ?)`,
    )
    .bind(subscriptionId, subscriptionId);
}

/** Deletes up to `limit` subscriptions that no registration refers to any more; returns how many. */
export async function purgeOrphanSubscriptions(db: D1Database, limit: number): Promise<number> {
  const result = await db
    .prepare(
      `DELETE FROM subscriptions WHERE id IN (SELECT s.id FROM subscriptions s
         WHERE NOT EXISTS (SELECT 1 FROM registrations r WHERE r.subscription_id = s.id) LIMIT ?)`,
    )
    .bind(limit)
    .run();
  return result.meta.changes;
}

export interface DeliveryOutcomes {
  delivered: number[];
  /** The push service says these no longer exist. */
  gone: number[];
  /**
   * Failed this time (refused, or to be retried), with why and the HTTP status (null: no answer).
   * The director's own faults are not recorded here: they say nothing of the subscription.
   */
  failed: { id: number; reason: string; status: number | null }[];
  /** A retry is queued, due at `at` (Unix seconds). */
  retrying?: { id: number; at: number }[];
  /** Accepted when signed with this key (a retired key refused): bound to it from now on. */
  rebound?: { id: number; key: string }[];
}

/**
 * Records a chunk's outcomes in one transaction: last success, consecutive failures, the last
 * failure's status and reason, since when it fails (set at the first failure after a success,
 * cleared by a success), when a retry is due; gone subscriptions are deleted with their
 * registrations, and so are failed ones failing since `failingBefore` or earlier.
 */
export async function recordOutcomes(db: D1Database, outcomes: DeliveryOutcomes, now: number, failingBefore: number | null = null): Promise<void> {
  const statements: D1PreparedStatement[] = [];
  if (outcomes.delivered.length > 0) {
    statements.push(
      db
        .prepare(
          `UPDATE subscriptions SET last_success_at = ?1, consecutive_failures = 0, failing_since = NULL, next_attempt_at = NULL
           WHERE id IN (SELECT value FROM json_each(?2))`,
        )
        .bind(now, JSON.stringify(outcomes.delivered)),
    );
  }
  for (const { id, key } of outcomes.rebound ?? []) {
    statements.push(db.prepare("UPDATE subscriptions SET vapid_public_key = ? WHERE id = ?").bind(key, id));
  }
  if (outcomes.failed.length > 0) {
    const failed = JSON.stringify(outcomes.failed);
    statements.push(
      db
        .prepare(
          `UPDATE subscriptions SET consecutive_failures = consecutive_failures + 1, last_failure_at = ?1,
             failing_since = COALESCE(failing_since, ?1), next_attempt_at = NULL,
             last_failure_reason = (SELECT json_extract(f.value, '$.reason') FROM json_each(?2) f
                                    WHERE json_extract(f.value, '$.id') = subscriptions.id),
             last_failure_status = (SELECT json_extract(f.value, '$.status') FROM json_each(?2) f
                                    WHERE json_extract(f.value, '$.id') = subscriptions.id)
           WHERE id IN (SELECT json_extract(value, '$.id') FROM json_each(?2))`,
        )
        .bind(now, failed),
    );
  }
  if ((outcomes.retrying ?? []).length > 0) {
    statements.push(
      db
        .prepare(
          `UPDATE subscriptions SET next_attempt_at = (SELECT json_extract(r.value, '$.at') FROM json_each(?1) r
                                    WHERE json_extract(r.value, '$.id') = subscriptions.id)
           WHERE id IN (SELECT json_extract(value, '$.id') FROM json_each(?1))`,
        )
        .bind(JSON.stringify(outcomes.retrying)),
    );
  }
  const doomed = [...outcomes.gone];
  if (outcomes.gone.length > 0 || (failingBefore !== null && outcomes.failed.length > 0)) {
    // gone ones, and the failed ones whose window ran out (issue 11: FAILING_SUBSCRIPTION_DAYS)
    const ids = JSON.stringify(doomed);
    const failedIds = JSON.stringify(outcomes.failed.map((f) => f.id));
    const which = `SELECT value FROM json_each(?1) UNION SELECT id FROM subscriptions
                   WHERE id IN (SELECT value FROM json_each(?2)) AND failing_since <= ?3`;
    statements.push(
      db.prepare(`DELETE FROM registrations WHERE subscription_id IN (${which})`).bind(ids, failedIds, failingBefore ?? -1),
      db.prepare(`DELETE FROM subscriptions WHERE id IN (${which})`).bind(ids, failedIds, failingBefore ?? -1),
    );
  }
  if (statements.length > 0) await db.batch(statements);
}

/**
 * Deletes up to `limit` subscriptions failing since `before` or earlier, with their registrations
 * (the hourly cron's share of FAILING_SUBSCRIPTION_DAYS); returns how many.
 */
export async function purgeFailingSubscriptions(db: D1Database, before: number, limit: number): Promise<number> {
  const ids = (
    await db.prepare("SELECT id FROM subscriptions WHERE failing_since IS NOT NULL AND failing_since <= ? ORDER BY id LIMIT ?").bind(before, limit).all<{ id: number }>()
  ).results.map((r) => r.id);
  if (ids.length === 0) return 0;
  const json = JSON.stringify(ids);
  await db.batch([
    db.prepare("DELETE FROM registrations WHERE subscription_id IN (SELECT value FROM json_each(?))").bind(json),
    db.prepare("DELETE FROM subscriptions WHERE id IN (SELECT value FROM json_each(?))").bind(json),
  ]);
  return ids.length;
}

/** The VAPID key each subscription is bound to (null: none yet, signed with the current key). */
export async function vapidKeysOfSubscriptions(db: D1Database, ids: number[]): Promise<Map<number, string | null>> {
  if (ids.length === 0) return new Map();
  const { results } = await db
    .prepare("SELECT id, vapid_public_key FROM subscriptions WHERE id IN (SELECT value FROM json_each(?))")
    .bind(JSON.stringify([...new Set(ids)]))
    .all<{ id: number; vapid_public_key: string | null }>();
  return new Map(results.map((r) => [r.id, r.vapid_public_key]));
}

/** Binds every Web Push subscription still without a VAPID key to `publicKey` (the one that signed them so far). */
export function bindUnboundWebPush(db: D1Database, publicKey: string): Promise<D1Result> {
  return db.prepare("UPDATE subscriptions SET vapid_public_key = ? WHERE transport = 'web_push' AND vapid_public_key IS NULL").bind(publicKey).run();
}

/** Subscriptions that still exist among `ids`, as fan-out reads them (secrets sealed). */
export async function existingSubscriptions(db: D1Database, ids: number[]) {
  const { results } = await db
    .prepare(
      `SELECT id, tenant_id, transport, identifier, p256dh, auth, sealed_token, platform FROM subscriptions
       WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id`,
    )
    .bind(JSON.stringify(ids))
    .all<Pick<RecipientRow, "transport" | "identifier" | "p256dh" | "auth" | "sealed_token" | "platform"> & { id: number; tenant_id: string }>();
  return results;
}

/**
 * Keyset page of every Web Push subscription (all tenants), for key-rotation messages; `auth`
 * sealed. Keyless UnifiedPush ones come too (p256dh and auth null): they are told plain.
 */
export async function pageWebPushSubscriptions(db: D1Database, after: number, limit: number) {
  const { results } = await db
    .prepare("SELECT id, tenant_id, identifier, p256dh, auth FROM subscriptions WHERE transport = 'web_push' AND id > ? ORDER BY id LIMIT ?")
    .bind(after, limit)
    .all<{ id: number; tenant_id: string; identifier: string; p256dh: string | null; auth: string | null }>();
  return results;
}
