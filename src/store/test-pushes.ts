/** D1 access to `test_pushes`: when each registration was last sent a test push (issue 11's rate limit). */

/**
 * Claims the registration's test push at `now` unless one was sent less than `windowSeconds`
 * ago, whoever asked: the claim is one conditional upsert, so two callers at once cannot both
 * win. Returns null when claimed, else the seconds until the next one is allowed (≥ 1). Rows past
 * the window say nothing any more: a page of them is deleted in the same batch.
 */
export async function claimTestPush(db: D1Database, registrationId: string, now: number, windowSeconds: number): Promise<number | null> {
  const [, claimed, last] = await db.batch<{ at: number }>([
    db
      .prepare("DELETE FROM test_pushes WHERE registration_id IN (SELECT registration_id FROM test_pushes WHERE at <= ? LIMIT 100) AND registration_id <> ?")
      .bind(now - windowSeconds, registrationId),
    db
      .prepare(
        `INSERT INTO test_pushes (registration_id, at) VALUES (?1, ?2)
         ON CONFLICT (registration_id) DO UPDATE SET at = excluded.at WHERE test_pushes.at <= ?2 - ?3
         RETURNING at`,
      )
      .bind(registrationId, now, windowSeconds),
    db.prepare("SELECT at FROM test_pushes WHERE registration_id = ?").bind(registrationId),
  ]);
  if (claimed.results.length > 0) return null;
  return Math.max(1, (last.results[0]?.at ?? now) + windowSeconds - now);
}
