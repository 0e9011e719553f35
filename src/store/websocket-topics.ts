/** D1 access to `websocket_topics`: which of a tenant's topics have held WebSocket clients. */

export async function tenantWebSocketTopics(db: D1Database, tenantId: string): Promise<string[]> {
  const { results } = await db.prepare("SELECT topic FROM websocket_topics WHERE tenant_id = ?").bind(tenantId).all<{ topic: string }>();
  return results.map((row) => row.topic);
}
