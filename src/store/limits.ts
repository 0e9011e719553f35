/**
 * D1 access to the quotas (issue 12): a tenant's own limits (`tenant_limits`), and its live
 * registrations, counted from the trigger-kept `registration_counts` less the expired rows the
 * purge has not reached yet (an index range, never a scan of the tenant's registrations).
 */
import { LIMIT_NAMES, type StoredLimits } from "../limits/limits";
import { forgetTenant } from "./tenant-cache";

/** Sets all five of the tenant's limits (NULL: the default); false when there is no such tenant. */
export async function setTenantLimits(db: D1Database, tenantId: string, limits: StoredLimits, now: number): Promise<boolean> {
  const result = await db
    .prepare(
      `INSERT INTO tenant_limits (tenant_id, ${LIMIT_NAMES.join(", ")}, updated_at)
       SELECT id, ?2, ?3, ?4, ?5, ?6, ?7 FROM tenants WHERE id = ?1
       ON CONFLICT (tenant_id) DO UPDATE SET ${LIMIT_NAMES.map((name) => `${name} = excluded.${name}`).join(", ")}, updated_at = excluded.updated_at`,
    )
    .bind(tenantId, ...LIMIT_NAMES.map((name) => limits[name]), now)
    .run();
  // the limits are read with the tenant's row
  forgetTenant(tenantId);
  return result.meta.changes > 0;
}

/**
 * SQL for the live registrations of tenant `tenant` (owner `owner` NULL) or of one of its users,
 * at `now`: parameter names are the caller's (`?1`, …), so the same text serves any statement.
 */
export function liveRegistrationsSql(tenant: string, now: string, owner: string | null = null): string {
  const who = owner === null ? "''" : owner;
  const expired =
    owner === null
      ? `SELECT COUNT(*) FROM registrations WHERE tenant_id = ${tenant} AND expires_at <= ${now}`
      : `SELECT COUNT(*) FROM registrations WHERE tenant_id = ${tenant} AND owner = ${owner} AND expires_at <= ${now}`;
  return `(COALESCE((SELECT registrations FROM registration_counts WHERE tenant_id = ${tenant} AND owner = ${who}), 0) - (${expired}))`;
}

/** The tenant's live registrations now. */
export async function liveRegistrations(db: D1Database, tenantId: string, now: number): Promise<number> {
  const row = await db.prepare(`SELECT ${liveRegistrationsSql("?1", "?2")} AS n`).bind(tenantId, now).first<{ n: number }>();
  return row?.n ?? 0;
}

/**
 * True (in SQL) when a registration of the subscription to `topic` may be written: it updates a
 * live one (at any usage), or the tenant and (for a user) the user have a slot left. Parameters:
 * ?1 tenant, ?2 transport, ?3 identifier, ?4 now, ?5 owner (NULL: the tenant's own registration,
 * which counts toward the tenant only), ?13 the tenant's limit, ?14 the user's; `topic` names the
 * topic's parameter. Part of the statements that write, so the last slot cannot go twice.
 */
export const WITHIN_QUOTA = (topic: string) => `(EXISTS (
    SELECT 1 FROM subscriptions qs JOIN registrations qr ON qr.subscription_id = qs.id
    WHERE qs.tenant_id = ?1 AND qs.transport = ?2 AND qs.identifier = ?3 AND qr.topic = ${topic} AND qr.expires_at > ?4)
  OR (${liveRegistrationsSql("?1", "?4")} < ?13 AND (?5 IS NULL OR ${liveRegistrationsSql("?1", "?4", "?5")} < ?14)))`;
