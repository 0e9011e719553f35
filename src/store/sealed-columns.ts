/**
 * The D1 columns that hold sealed secrets, in one place: counting what `SECRETS_KEY` has not
 * sealed yet, and re-sealing it page by page (rotation to a new key, and rows from before
 * secrets were sealed, which are still in clear).
 */
import { log } from "../log";
import { open, seal, sealedKeyId, SecretUndecryptable, type Keyring } from "../crypto/sealed";
import { AUTH_COLUMN, tokenIdentifier, isTokenTransport, subscriptionRowKey, TOKEN_COLUMN, TOKEN_TRANSPORTS, type Transport } from "./subscriptions";
import { POLL_PASSWORD_COLUMN, TOPIC_KEY_COLUMN } from "./gateways";
import { GRANT_SECRET_COLUMN } from "./tenants";
import { PRIVATE_KEY_COLUMN } from "./vapid-keys";
import { forgetTenant } from "./tenant-cache";

export type SealedTable = "tenants" | "subscriptions" | "vapid_keys" | "gateways";
export const SEALED_TABLES: readonly SealedTable[] = ["tenants", "subscriptions", "vapid_keys", "gateways"];

/** How many values are not sealed with the key `keyId` (older keys, or in clear). */
export async function countUnsealed(db: D1Database, keyId: string): Promise<number> {
  const row = await db
    .prepare(
      `SELECT
         (SELECT COUNT(*) FROM tenants WHERE substr(grant_secret, 1, length(?1)) IS NOT ?1)
       + (SELECT COUNT(*) FROM subscriptions WHERE (auth IS NOT NULL AND substr(auth, 1, length(?1)) IS NOT ?1)
            OR (transport IN (SELECT value FROM json_each(?2)) AND (sealed_token IS NULL OR substr(sealed_token, 1, length(?1)) IS NOT ?1)))
       + (SELECT COUNT(*) FROM vapid_keys WHERE substr(private_key, 1, length(?1)) IS NOT ?1)
       + (SELECT COUNT(*) FROM gateways WHERE substr(topic_key, 1, length(?1)) IS NOT ?1
            OR (poll_password IS NOT NULL AND substr(poll_password, 1, length(?1)) IS NOT ?1)) AS n`,
    )
    .bind(`v1.${keyId}.`, JSON.stringify(TOKEN_TRANSPORTS))
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** A value sealed afresh with the current key: opened if sealed, taken as it is if in clear. */
async function resealed(keyring: Keyring, column: string, rowKey: string, stored: string): Promise<string | null> {
  const keyId = sealedKeyId(stored);
  if (keyId === keyring.current.id) return null;
  const plain = keyId === null ? stored : await open(keyring, column, rowKey, stored);
  return seal(keyring, column, rowKey, plain);
}

export const RESEAL_PAGE = 100;

/**
 * Re-seals one keyset page of a table; returns the cursor to continue after, or null when the
 * table is done. A value no configured key opens is left as it is (and logged): it stays pending.
 * Updates are conditional on the value read, so a concurrent write is never overwritten.
 */
export async function resealPage(db: D1Database, keyring: Keyring, table: SealedTable, after: string): Promise<{ next: string | null; resealed: number; failed: number }> {
  const statements: D1PreparedStatement[] = [];
  let failed = 0;
  const attempt = async (work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      if (!(error instanceof SecretUndecryptable)) throw error;
      failed++;
      // an error line is written at every LOG_LEVEL; its message names the row (a push URL): left out
      log({}, "error", "secret_undecryptable", { table });
    }
  };
  let last: string | null = null;
  let count = 0;
  if (table === "tenants") {
    const { results } = await db
      .prepare("SELECT id, grant_secret FROM tenants WHERE id > ? ORDER BY id LIMIT ?")
      .bind(after, RESEAL_PAGE)
      .all<{ id: string; grant_secret: string }>();
    for (const row of results) {
      await attempt(async () => {
        const value = await resealed(keyring, GRANT_SECRET_COLUMN, row.id, row.grant_secret);
        if (value !== null) statements.push(db.prepare("UPDATE tenants SET grant_secret = ? WHERE id = ? AND grant_secret = ?").bind(value, row.id, row.grant_secret));
      });
    }
    count = results.length;
    last = results.at(-1)?.id ?? null;
    for (const row of results) forgetTenant(row.id);
  } else if (table === "subscriptions") {
    const { results } = await db
      .prepare("SELECT id, tenant_id, transport, identifier, auth, sealed_token FROM subscriptions WHERE id > ? ORDER BY id LIMIT ?")
      .bind(Number(after || 0), RESEAL_PAGE)
      .all<{ id: number; tenant_id: string; transport: Transport; identifier: string; auth: string | null; sealed_token: string | null }>();
    for (const row of results) {
      await attempt(async () => {
        if (row.auth !== null) {
          const value = await resealed(keyring, AUTH_COLUMN, subscriptionRowKey(row.tenant_id, row.transport, row.identifier), row.auth);
          if (value !== null) statements.push(db.prepare("UPDATE subscriptions SET auth = ? WHERE id = ? AND auth = ?").bind(value, row.id, row.auth));
        }
        if (isTokenTransport(row.transport) && row.sealed_token !== null) {
          const value = await resealed(keyring, TOKEN_COLUMN, subscriptionRowKey(row.tenant_id, row.transport, row.identifier), row.sealed_token);
          if (value !== null) {
            statements.push(db.prepare("UPDATE subscriptions SET sealed_token = ? WHERE id = ? AND sealed_token = ?").bind(value, row.id, row.sealed_token));
          }
        } else if (row.transport === "fcm") {
          statements.push(...(await digestPlainToken(db, keyring, row)));
        }
      });
    }
    count = results.length;
    last = results.length > 0 ? String(results.at(-1)!.id) : null;
  } else if (table === "gateways") {
    const { results } = await db
      .prepare("SELECT tenant_id, topic_key, poll_password FROM gateways WHERE tenant_id > ? ORDER BY tenant_id LIMIT ?")
      .bind(after, RESEAL_PAGE)
      .all<{ tenant_id: string; topic_key: string; poll_password: string | null }>();
    for (const row of results) {
      await attempt(async () => {
        const key = await resealed(keyring, TOPIC_KEY_COLUMN, row.tenant_id, row.topic_key);
        if (key !== null) statements.push(db.prepare("UPDATE gateways SET topic_key = ? WHERE tenant_id = ? AND topic_key = ?").bind(key, row.tenant_id, row.topic_key));
        if (row.poll_password === null) return;
        const password = await resealed(keyring, POLL_PASSWORD_COLUMN, row.tenant_id, row.poll_password);
        if (password !== null) {
          statements.push(db.prepare("UPDATE gateways SET poll_password = ? WHERE tenant_id = ? AND poll_password = ?").bind(password, row.tenant_id, row.poll_password));
        }
      });
    }
    count = results.length;
    last = results.at(-1)?.tenant_id ?? null;
  } else {
    const { results } = await db
      .prepare("SELECT id, public_key, private_key FROM vapid_keys WHERE id > ? ORDER BY id LIMIT ?")
      .bind(Number(after || 0), RESEAL_PAGE)
      .all<{ id: number; public_key: string; private_key: string }>();
    for (const row of results) {
      await attempt(async () => {
        const value = await resealed(keyring, PRIVATE_KEY_COLUMN, row.public_key, row.private_key);
        if (value !== null) statements.push(db.prepare("UPDATE vapid_keys SET private_key = ? WHERE id = ? AND private_key = ?").bind(value, row.id, row.private_key));
      });
    }
    count = results.length;
    last = results.length > 0 ? String(results.at(-1)!.id) : null;
  }
  if (statements.length > 0) await db.batch(statements);
  return { next: count === RESEAL_PAGE ? last : null, resealed: statements.length, failed };
}

/**
 * An FCM subscription from before tokens were sealed holds its token in clear as the identifier:
 * it moves to the digest, sealed beside it. Should the token meanwhile have registered again
 * (under its digest), the old row's registrations join that subscription and the old row goes.
 */
async function digestPlainToken(
  db: D1Database,
  keyring: Keyring,
  row: { id: number; tenant_id: string; identifier: string },
): Promise<D1PreparedStatement[]> {
  const digest = await tokenIdentifier(row.identifier);
  const sealed = await seal(keyring, TOKEN_COLUMN, subscriptionRowKey(row.tenant_id, "fcm", digest), row.identifier);
  const twin = "(SELECT id FROM subscriptions WHERE tenant_id = ?1 AND transport = 'fcm' AND identifier = ?2)";
  return [
    db
      .prepare(`UPDATE OR IGNORE registrations SET subscription_id = ${twin} WHERE subscription_id = ?3 AND ${twin} IS NOT NULL`)
      .bind(row.tenant_id, digest, row.id),
    db.prepare(`DELETE FROM subscriptions WHERE id = ?3 AND ${twin} IS NOT NULL`).bind(row.tenant_id, digest, row.id),
    db
      .prepare("UPDATE subscriptions SET identifier = ?, sealed_token = ? WHERE id = ? AND identifier = ? AND sealed_token IS NULL")
      .bind(digest, sealed, row.id, row.identifier),
  ];
}
