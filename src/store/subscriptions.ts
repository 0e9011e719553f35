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
