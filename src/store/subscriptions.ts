/** D1 access to the `subscriptions` table: where to deliver, stored once per identifier. */

export type Transport = "web_push" | "fcm";

export interface WebPushKeys {
  p256dh: string;
  auth: string;
  content_encoding: "aes128gcm";
}

/** A subscription as a client hands it over: identified per transport, keys for Web Push only. */
export interface SubscriptionInput {
  transport: Transport;
  identifier: string;
  keys: WebPushKeys | null;
}

/**
 * Statement that creates the subscription or, when the tenant already has one with this
 * identifier, refreshes its keys (the draft binds keys to the push resource, newest wins) and
 * forgets past failures.
 */
export function upsertSubscription(db: D1Database, tenantId: string, sub: SubscriptionInput, now: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO subscriptions (tenant_id, transport, identifier, p256dh, auth, content_encoding, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, transport, identifier) DO UPDATE SET
         p256dh = excluded.p256dh, auth = excluded.auth, content_encoding = excluded.content_encoding,
         updated_at = excluded.updated_at, consecutive_failures = 0`,
    )
    .bind(
      tenantId,
      sub.transport,
      sub.identifier,
      sub.keys?.p256dh ?? null,
      sub.keys?.auth ?? null,
      sub.keys?.content_encoding ?? null,
      now,
      now,
    );
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
  /** Failed this time (refused, or to be retried), with why. */
  failed: { id: number; reason: string }[];
}

/**
 * Records a chunk's outcomes in one transaction: last success and consecutive failures per
 * subscription; gone subscriptions are deleted with their registrations.
 */
export async function recordOutcomes(db: D1Database, outcomes: DeliveryOutcomes, now: number): Promise<void> {
  const statements: D1PreparedStatement[] = [];
  if (outcomes.delivered.length > 0) {
    statements.push(
      db
        .prepare(
          `UPDATE subscriptions SET last_success_at = ?1, consecutive_failures = 0
           WHERE id IN (SELECT value FROM json_each(?2))`,
        )
        .bind(now, JSON.stringify(outcomes.delivered)),
    );
  }
  if (outcomes.failed.length > 0) {
    statements.push(
      db
        .prepare(
          `UPDATE subscriptions SET consecutive_failures = consecutive_failures + 1, last_failure_at = ?1,
             last_failure_reason = (SELECT json_extract(f.value, '$.reason') FROM json_each(?2) f
                                    WHERE json_extract(f.value, '$.id') = subscriptions.id)
           WHERE id IN (SELECT json_extract(value, '$.id') FROM json_each(?2))`,
        )
        .bind(now, JSON.stringify(outcomes.failed)),
    );
  }
  if (outcomes.gone.length > 0) {
    const ids = JSON.stringify(outcomes.gone);
    statements.push(
      db.prepare("DELETE FROM registrations WHERE subscription_id IN (SELECT value FROM json_each(?))").bind(ids),
      db.prepare("DELETE FROM subscriptions WHERE id IN (SELECT value FROM json_each(?))").bind(ids),
    );
  }
  if (statements.length > 0) await db.batch(statements);
}

/** Keyset page of every Web Push subscription (all tenants), for key-rotation messages. */
export async function pageWebPushSubscriptions(db: D1Database, after: number, limit: number) {
  const { results } = await db
    .prepare("SELECT id, identifier, p256dh, auth FROM subscriptions WHERE transport = 'web_push' AND id > ? ORDER BY id LIMIT ?")
    .bind(after, limit)
    .all<{ id: number; identifier: string; p256dh: string; auth: string }>();
  return results;
}
