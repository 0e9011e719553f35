/** D1 access to `vapid_keys` (private keys sealed, src/crypto/sealed.ts), and which VAPID key signs now. */
import { keyringOf, open, seal, type Keyring } from "../crypto/sealed";

export interface VapidKeyPair {
  publicKey: string;
  privateKey: string;
}

export interface VapidKeyRow {
  id: number;
  public_key: string;
  private_key: string;
  state: "pending" | "active" | "retired";
  created_at: number;
  activated_at: number | null;
}

const fromEnv = (env: Env): VapidKeyPair | null =>
  env.VAPID_PUBLIC_KEY && env.VAPID_PRIVATE_KEY ? { publicKey: env.VAPID_PUBLIC_KEY, privateKey: env.VAPID_PRIVATE_KEY } : null;

export const PRIVATE_KEY_COLUMN = "vapid_keys.private_key";

/** A stored row's key pair, its private half opened (the row key is the public key, which is unique). */
async function pairOf(env: Env, row: Pick<VapidKeyRow, "public_key" | "private_key">): Promise<VapidKeyPair> {
  return { publicKey: row.public_key, privateKey: await open(await keyringOf(env), PRIVATE_KEY_COLUMN, row.public_key, row.private_key) };
}

const activeRow = (db: D1Database) =>
  db.prepare("SELECT public_key, private_key FROM vapid_keys WHERE state = 'active' ORDER BY id DESC LIMIT 1").first<VapidKeyRow>();

/** The key that signs: the active rotated key, else the configured secrets. */
export async function currentVapidKeys(env: Env): Promise<VapidKeyPair | null> {
  const row = await activeRow(env.DB);
  return row === null ? fromEnv(env) : pairOf(env, row);
}

/** The public half of the key that signs, which clients are told (opens no secret). */
export async function currentVapidPublicKey(env: Env): Promise<string | null> {
  const row = await activeRow(env.DB);
  return row === null ? (fromEnv(env)?.publicKey ?? null) : row.public_key;
}

/** A key by its public half (rotation messages are signed with the key being replaced). */
export async function vapidKeysByPublicKey(env: Env, publicKey: string): Promise<VapidKeyPair | null> {
  const configured = fromEnv(env);
  if (configured?.publicKey === publicKey) return configured;
  const row = await env.DB.prepare("SELECT public_key, private_key FROM vapid_keys WHERE public_key = ?").bind(publicKey).first<VapidKeyRow>();
  return row === null ? null : pairOf(env, row);
}

export function pendingVapidKey(db: D1Database): Promise<VapidKeyRow | null> {
  return db.prepare("SELECT * FROM vapid_keys WHERE state = 'pending' ORDER BY id DESC LIMIT 1").first<VapidKeyRow>();
}

export async function insertPendingVapidKey(db: D1Database, keyring: Keyring, keys: VapidKeyPair, now: number): Promise<number> {
  const row = await db
    .prepare("INSERT INTO vapid_keys (public_key, private_key, state, created_at) VALUES (?, ?, 'pending', ?) RETURNING id")
    .bind(keys.publicKey, await seal(keyring, PRIVATE_KEY_COLUMN, keys.publicKey, keys.privateKey), now)
    .first<{ id: number }>();
  return row!.id;
}

/** The switch: the pending key becomes the one that signs; the previous active one retires. */
export async function activateVapidKey(db: D1Database, id: number, now: number): Promise<void> {
  await db.batch([
    db.prepare("UPDATE vapid_keys SET state = 'retired' WHERE state = 'active'"),
    db.prepare("UPDATE vapid_keys SET state = 'active', activated_at = ? WHERE id = ? AND state = 'pending'").bind(now, id),
  ]);
}

/**
 * Keeps a key pair that signs subscriptions made with it (issue 11): a configured `VAPID_*` pair
 * being replaced is copied in, retired, its private key sealed; a key already stored stays as is.
 */
export async function keepVapidKey(db: D1Database, keyring: Keyring, keys: VapidKeyPair, now: number): Promise<void> {
  await db
    .prepare("INSERT INTO vapid_keys (public_key, private_key, state, created_at) VALUES (?, ?, 'retired', ?) ON CONFLICT (public_key) DO NOTHING")
    .bind(keys.publicKey, await seal(keyring, PRIVATE_KEY_COLUMN, keys.publicKey, keys.privateKey), now)
    .run();
}

/** Retired keys and how many subscriptions each still signs. */
export async function retiredVapidKeys(db: D1Database): Promise<{ public_key: string; subscriptions: number }[]> {
  const { results } = await db
    .prepare(
      `SELECT k.public_key, (SELECT COUNT(*) FROM subscriptions s WHERE s.vapid_public_key = k.public_key) AS subscriptions
       FROM vapid_keys k WHERE k.state = 'retired' ORDER BY k.id`,
    )
    .all<{ public_key: string; subscriptions: number }>();
  return results;
}

/** Deletes retired keys no subscription is bound to any more (the cron); returns how many. */
export async function dropUnusedRetiredKeys(db: D1Database): Promise<number> {
  const result = await db
    .prepare("DELETE FROM vapid_keys WHERE state = 'retired' AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.vapid_public_key = vapid_keys.public_key)")
    .run();
  return result.meta.changes;
}
