/** D1 access to `dead_letters`: jobs whose retries ran out, kept for the operator. */

export interface DeadLetterRow {
  id: number;
  tenant_id: string;
  queue: string;
  body: string;
  created_at: number;
}

export function insertDeadLetters(db: D1Database, rows: { tenantId: string; queue: string; body: unknown }[], now: number) {
  return db.batch(
    rows.map((row) =>
      db
        .prepare("INSERT INTO dead_letters (tenant_id, queue, body, created_at) VALUES (?, ?, ?, ?)")
        .bind(row.tenantId, row.queue, JSON.stringify(row.body), now),
    ),
  );
}

export async function listDeadLetters(db: D1Database, tenantId: string | null, before: number, limit: number): Promise<DeadLetterRow[]> {
  const statement =
    tenantId === null
      ? db.prepare("SELECT * FROM dead_letters WHERE id < ? ORDER BY id DESC LIMIT ?").bind(before, limit)
      : db.prepare("SELECT * FROM dead_letters WHERE tenant_id = ? AND id < ? ORDER BY id DESC LIMIT ?").bind(tenantId, before, limit);
  return (await statement.all<DeadLetterRow>()).results;
}

/** Deletes up to `limit` dead letters created before `before`; returns how many. */
export async function purgeDeadLetters(db: D1Database, before: number, limit: number): Promise<number> {
  const result = await db
    .prepare("DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE created_at < ? ORDER BY id LIMIT ?)")
    .bind(before, limit)
    .run();
  return result.meta.changes;
}
