/** D1 access to `tenant_triggers`: the triggers a tenant's collections support. */
import type { SupportedTriggers } from "../xml/properties";

/** The draft's CalDAV/CardDAV section: content updates at depth 1, property updates at depth 0. */
export const DEFAULT_SUPPORTED: SupportedTriggers = { contentUpdate: 1, propertyUpdate: 0 };

export async function getSupportedTriggers(db: D1Database, tenantId: string): Promise<SupportedTriggers> {
  const row = await db
    .prepare("SELECT content_update_depth, property_update_depth FROM tenant_triggers WHERE tenant_id = ?")
    .bind(tenantId)
    .first<{ content_update_depth: 0 | 1 | 2 | null; property_update_depth: 0 | 1 | 2 | null }>();
  return row === null ? DEFAULT_SUPPORTED : { contentUpdate: row.content_update_depth, propertyUpdate: row.property_update_depth };
}

export async function setSupportedTriggers(db: D1Database, tenantId: string, supported: SupportedTriggers, now: number): Promise<void> {
  await db
    .prepare(
      `INSERT INTO tenant_triggers (tenant_id, content_update_depth, property_update_depth, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (tenant_id) DO UPDATE SET content_update_depth = excluded.content_update_depth,
         property_update_depth = excluded.property_update_depth, updated_at = excluded.updated_at`,
    )
    .bind(tenantId, supported.contentUpdate, supported.propertyUpdate, now)
    .run();
}
