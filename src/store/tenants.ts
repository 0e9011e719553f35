/** D1 access to the `tenants` table; the grant secret is kept sealed (src/crypto/sealed.ts). */
import { open, seal, type Keyring } from "../crypto/sealed";

export interface TenantRow {
  id: string;
  name: string;
  notify_token_hash: string;
  /** Sealed: open with `openGrantSecret`. */
  grant_secret: string;
  /** JSON array of the tenant's public grant keys (src/auth/grant.ts GrantKey). */
  grant_keys: string;
  disabled_at: number | null;
  created_at: number;
  updated_at: number;
}

/** Where a tenant's grant secret lives: the associated data of its envelope. */
export const GRANT_SECRET_COLUMN = "tenants.grant_secret";

export const sealGrantSecret = (keyring: Keyring, tenantId: string, secret: string) => seal(keyring, GRANT_SECRET_COLUMN, tenantId, secret);

export const openGrantSecret = (keyring: Keyring, row: Pick<TenantRow, "id" | "grant_secret">) =>
  open(keyring, GRANT_SECRET_COLUMN, row.id, row.grant_secret);

export async function insertTenant(db: D1Database, row: Omit<TenantRow, "grant_keys">): Promise<void> {
  await db
    .prepare(
      `INSERT INTO tenants (id, name, notify_token_hash, grant_secret, disabled_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(row.id, row.name, row.notify_token_hash, row.grant_secret, row.disabled_at, row.created_at, row.updated_at)
    .run();
}

/** Replaces the tenant's grant keys (JSON text); false when there is no such tenant. */
export async function setGrantKeys(db: D1Database, id: string, keysJson: string, now: number): Promise<boolean> {
  const result = await db.prepare("UPDATE tenants SET grant_keys = ?, updated_at = ? WHERE id = ?").bind(keysJson, now, id).run();
  return result.meta.changes > 0;
}

export function getTenant(db: D1Database, id: string): Promise<TenantRow | null> {
  return db.prepare("SELECT * FROM tenants WHERE id = ?").bind(id).first<TenantRow>();
}

/** Keyset page of tenants in id order. */
export async function listTenants(db: D1Database, after: string, limit: number): Promise<TenantRow[]> {
  const { results } = await db
    .prepare("SELECT * FROM tenants WHERE id > ? ORDER BY id LIMIT ?")
    .bind(after, limit)
    .all<TenantRow>();
  return results;
}

export async function setTenantDisabled(db: D1Database, id: string, disabledAt: number | null, now: number): Promise<boolean> {
  const result = await db
    .prepare("UPDATE tenants SET disabled_at = ?, updated_at = ? WHERE id = ?")
    .bind(disabledAt, now, id)
    .run();
  return result.meta.changes > 0;
}

export async function updateTenantSecrets(
  db: D1Database,
  id: string,
  secrets: { notify_token_hash?: string; grant_secret?: string },
  now: number,
): Promise<boolean> {
  const result = await db
    .prepare(
      `UPDATE tenants SET notify_token_hash = COALESCE(?, notify_token_hash),
         grant_secret = COALESCE(?, grant_secret), updated_at = ? WHERE id = ?`,
    )
    .bind(secrets.notify_token_hash ?? null, secrets.grant_secret ?? null, now, id)
    .run();
  return result.meta.changes > 0;
}

export interface TenantCounts {
  subscriptions: number;
  registrations: number;
}

export async function countTenantRecords(db: D1Database, id: string, now: number): Promise<TenantCounts> {
  const [subs, regs] = await db.batch<{ n: number }>([
    db.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant_id = ?").bind(id),
    db.prepare("SELECT COUNT(*) AS n FROM registrations WHERE tenant_id = ? AND expires_at > ?").bind(id, now),
  ]);
  return { subscriptions: subs.results[0]?.n ?? 0, registrations: regs.results[0]?.n ?? 0 };
}
