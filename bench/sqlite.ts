// Reading a SQLite database that workerd holds open (a local D1, a Durable Object's storage): its
// file and WAL are copied while the director is quiet and the copy is opened, which replays the
// WAL; the original is never touched. workerd leaves every write in the WAL (the .sqlite file
// stays one page), so only such a copy shows what the database holds.
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";

/** Runs `read` on a copy of the database in `file` (with its WAL), then removes the copy. */
export function readCopy<T>(file: string, read: (db: DatabaseSync) => T): T {
  const dir = mkdtempSync(path.join(os.tmpdir(), "push-director-sqlite-"));
  try {
    const copy = path.join(dir, "db.sqlite");
    copyFileSync(file, copy);
    if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`);
    const db = new DatabaseSync(copy);
    try {
      return read(db);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A PRAGMA's number (page_count, page_size, freelist_count, …). */
export const pragma = (db: DatabaseSync, name: string) => Number((db.prepare(`PRAGMA ${name}`).get() as Record<string, number>)[name]);
