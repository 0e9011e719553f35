/** D1 access to `dead_letters`: jobs whose retries ran out, kept for the operator. */

export interface DeadLetterRow {
  id: number;
  tenant_id: string;
  queue: string;
  body: string;
  created_at: number;
  /** Why it ran out of time; null on older letters. */
  reason: string | null;
}

export function insertDeadLetters(db: D1Database, rows: { tenantId: string; queue: string; body: unknown; reason?: string | null }[], now: number) {
  return db.batch(
    rows.map((row) =>
      db
        .prepare("INSERT INTO dead_letters (tenant_id, queue, body, created_at, reason) VALUES (?, ?, ?, ?, ?)")
        .bind(row.tenantId, row.queue, JSON.stringify(row.body), now, row.reason ?? null),
    ),
  );
}

export function getDeadLetter(db: D1Database, id: number): Promise<DeadLetterRow | null> {
  return db.prepare("SELECT * FROM dead_letters WHERE id = ?").bind(id).first<DeadLetterRow>();
}

export function deleteDeadLetter(db: D1Database, id: number): Promise<D1Result> {
  return db.prepare("DELETE FROM dead_letters WHERE id = ?").bind(id).run();
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
