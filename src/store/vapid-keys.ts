/** D1 access to `vapid_keys`, and which VAPID key signs now. */

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

/** The key that signs and that clients are told: the active rotated key, else the configured secrets. */
export async function currentVapidKeys(env: Env): Promise<VapidKeyPair | null> {
  const row = await env.DB.prepare("SELECT public_key, private_key FROM vapid_keys WHERE state = 'active' ORDER BY id DESC LIMIT 1").first<VapidKeyRow>();
  return row === null ? fromEnv(env) : { publicKey: row.public_key, privateKey: row.private_key };
}

/** A key by its public half (rotation messages are signed with the key being replaced). */
export async function vapidKeysByPublicKey(env: Env, publicKey: string): Promise<VapidKeyPair | null> {
  const configured = fromEnv(env);
  if (configured?.publicKey === publicKey) return configured;
  const row = await env.DB.prepare("SELECT public_key, private_key FROM vapid_keys WHERE public_key = ?").bind(publicKey).first<VapidKeyRow>();
  return row === null ? null : { publicKey: row.public_key, privateKey: row.private_key };
}

export function pendingVapidKey(db: D1Database): Promise<VapidKeyRow | null> {
  return db.prepare("SELECT * FROM vapid_keys WHERE state = 'pending' ORDER BY id DESC LIMIT 1").first<VapidKeyRow>();
}

export async function insertPendingVapidKey(db: D1Database, keys: VapidKeyPair, now: number): Promise<number> {
  const row = await db
    .prepare("INSERT INTO vapid_keys (public_key, private_key, state, created_at) VALUES (?, ?, 'pending', ?) RETURNING id")
    .bind(keys.publicKey, keys.privateKey, now)
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
