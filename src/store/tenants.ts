/** D1 access to the `tenants` table; the grant secret is kept sealed (src/crypto/sealed.ts). */
import { decodeBase64url, encodeBase64url } from "../crypto/base64url";
import { open, seal, type Keyring } from "../crypto/sealed";
import { forgetTenant } from "./tenant-cache";

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
  /** From `tenant_limits` (src/limits/limits.ts), read with the tenant; NULL: the default applies. */
  limit_registrations: number | null;
  limit_registrations_per_user: number | null;
  limit_notify_per_minute: number | null;
  limit_sockets: number | null;
  limit_sockets_per_user: number | null;
}

/** Where a tenant's grant secret lives: the associated data of its envelope. */
export const GRANT_SECRET_COLUMN = "tenants.grant_secret";

export const sealGrantSecret = (keyring: Keyring, tenantId: string, secret: string) => seal(keyring, GRANT_SECRET_COLUMN, tenantId, secret);

export const openGrantSecret = (keyring: Keyring, row: Pick<TenantRow, "id" | "grant_secret">) =>
  open(keyring, GRANT_SECRET_COLUMN, row.id, row.grant_secret);

export async function insertTenant(db: D1Database, row: Omit<TenantRow, "grant_keys" | `limit_${string}`>): Promise<void> {
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
  forgetTenant(id);
  return result.meta.changes > 0;
}

/**
 * The tenant with its limits: the authenticating query of every request, so the limits cost no
 * round trip of their own (issue 12).
 */
const SELECT_TENANT = `SELECT t.*, l.registrations AS limit_registrations, l.registrations_per_user AS limit_registrations_per_user,
    l.notify_per_minute AS limit_notify_per_minute, l.sockets AS limit_sockets, l.sockets_per_user AS limit_sockets_per_user
  FROM tenants t LEFT JOIN tenant_limits l ON l.tenant_id = t.id`;

/** The tenant as D1 has it now; requests authenticate with `cachedTenant` (src/store/tenant-cache.ts). */
export function getTenant(db: D1Database, id: string): Promise<TenantRow | null> {
  return db.prepare(`${SELECT_TENANT} WHERE t.id = ?`).bind(id).first<TenantRow>();
}

/** A page of tenants: in id order after a tenant id, or newest first after a `newestCursor`. */
export type TenantPage = { order: "id"; after: string } | { order: "newest"; after: NewestPosition | null };

/** Where a newest-first page stopped: the last row's (created_at, id), the index's key. */
export interface NewestPosition {
  created_at: number;
  id: string;
}

const NEWEST_POSITION = /^(0|[1-9][0-9]{0,15}):([0-9a-f]{24})$/;

/** The opaque cursor of a newest-first page: base64url of `created_at:id`. */
export const newestCursor = (row: NewestPosition): string =>
  encodeBase64url(new TextEncoder().encode(`${row.created_at}:${row.id}`));

/** The position a `newestCursor` names; null for anything else (an id-order cursor, garbage). */
export function parseNewestCursor(cursor: string): NewestPosition | null {
  const bytes = decodeBase64url(cursor);
  const match = bytes === null ? null : NEWEST_POSITION.exec(new TextDecoder().decode(bytes));
  return match === null ? null : { created_at: Number(match[1]), id: match[2] };
}

/** Exported for the query-plan test (test/routes/admin.test.ts): it must use tenants_by_created. */
export const NEWEST_TENANTS = `${SELECT_TENANT} ORDER BY t.created_at DESC, t.id DESC`;
export const NEWEST_TENANTS_AFTER = `${SELECT_TENANT} WHERE (t.created_at, t.id) < (?, ?) ORDER BY t.created_at DESC, t.id DESC`;

/**
 * Keyset page of tenants. Newest first walks `tenants_by_created` backwards (created_at, id
 * descending: ties on the second broken by id), so no page sorts the table.
 */
export async function listTenants(db: D1Database, page: TenantPage, limit: number): Promise<TenantRow[]> {
  const statement =
    page.order === "id"
      ? db.prepare(`${SELECT_TENANT} WHERE t.id > ? ORDER BY t.id LIMIT ?`).bind(page.after, limit)
      : page.after === null
        ? db.prepare(`${NEWEST_TENANTS} LIMIT ?`).bind(limit)
        : db.prepare(`${NEWEST_TENANTS_AFTER} LIMIT ?`).bind(page.after.created_at, page.after.id, limit);
  const { results } = await statement.all<TenantRow>();
  return results;
}


export async function setTenantDisabled(db: D1Database, id: string, disabledAt: number | null, now: number): Promise<boolean> {
  const result = await db
    .prepare("UPDATE tenants SET disabled_at = ?, updated_at = ? WHERE id = ?")
    .bind(disabledAt, now, id)
    .run();
  forgetTenant(id);
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
  forgetTenant(id);
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

/** How many tenants there are: the health probe's one D1 read, proving D1 answers and the schema is in place. */
export async function countTenants(db: D1Database): Promise<number> {
  const row = await db.prepare("SELECT count(*) AS n FROM tenants").first<{ n: number }>();
  return row?.n ?? 0;
}
