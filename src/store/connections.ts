/**
 * D1 access for the early draft's connection-ID flow: `websocket_connections` (which connections
 * a tenant holds, so rotation and disable reach their hubs) and the registrations a connection
 * holds (its websocket subscription's identifier is the connection id).
 */

/** Notes that the tenant holds this connection (before its first socket is accepted). */
export async function rememberConnection(db: D1Database, tenantId: string, connectionId: string, now: number): Promise<void> {
  await db
    .prepare(
      "INSERT INTO websocket_connections (tenant_id, connection_id, updated_at) VALUES (?, ?, ?) ON CONFLICT (tenant_id, connection_id) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .bind(tenantId, connectionId, now)
    .run();
}

export async function forgetConnection(db: D1Database, tenantId: string, connectionId: string): Promise<void> {
  await db.prepare("DELETE FROM websocket_connections WHERE tenant_id = ? AND connection_id = ?").bind(tenantId, connectionId).run();
}

/** The connections the tenant holds, open or within their grace. */
export async function tenantConnections(db: D1Database, tenantId: string): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT connection_id FROM websocket_connections WHERE tenant_id = ?")
    .bind(tenantId)
    .all<{ connection_id: string }>();
  return results.map((row) => row.connection_id);
}

/**
 * Deletes the connection's registrations, then its subscription (one transaction). Registrations
 * go first and by subscription, never by cascade, so nothing of another subscription is touched.
 * Answers how many registrations went.
 */
export async function deleteConnectionRegistrations(db: D1Database, tenantId: string, connectionId: string): Promise<number> {
  const [registrations] = await db.batch([
    db
      .prepare(
        `DELETE FROM registrations WHERE subscription_id IN
           (SELECT id FROM subscriptions WHERE tenant_id = ?1 AND transport = 'websocket' AND identifier = ?2)`,
      )
      .bind(tenantId, connectionId),
    db
      .prepare(
        `DELETE FROM subscriptions WHERE tenant_id = ?1 AND transport = 'websocket' AND identifier = ?2
           AND NOT EXISTS (SELECT 1 FROM registrations WHERE subscription_id = subscriptions.id)`,
      )
      .bind(tenantId, connectionId),
  ]);
  return registrations.meta.changes;
}
