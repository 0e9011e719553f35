import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keyringOf } from "../src/crypto/sealed";
import { sha256Hex } from "../src/crypto/secrets";
import { liveRegistrations } from "../src/store/limits";
import { countUnsealed } from "../src/store/sealed-columns";
import { COLLECTIONS_TO_POLL } from "../src/store/gateways";
import { pageTopicRecipients, TOPIC_HAS_REGISTRATIONS } from "../src/store/registrations";
import { targetFor } from "../src/queues/fanout";
import { EXPIRED_MEMBERS, JOINING_MEMBERS, LARGE_FCM_GROUPS, LEFT_MEMBERS } from "../src/store/fcm-topics";
import { openAuth, openToken, OWNED_BY_ANOTHER } from "../src/store/subscriptions";
import { openGrantSecret, type TenantRow } from "../src/store/tenants";
import { vapidKeysByPublicKey } from "../src/store/vapid-keys";
import { resealAll } from "./helpers";

const statements = () => env.TEST_SCHEMA_SQL.flatMap((migration) => migration.queries);

/** The `CHECK (…)` clauses of a CREATE TABLE text, whitespace folded, sorted. */
function checksOf(sql: string): string[] {
  const out: string[] = [];
  for (let at = sql.search(/CHECK\s*\(/i); at >= 0; ) {
    let i = sql.indexOf("(", at);
    const start = i;
    for (let depth = 0; i < sql.length; i++) {
      if (sql[i] === "(") depth++;
      else if (sql[i] === ")" && --depth === 0) break;
    }
    out.push(sql.slice(start, i + 1).replace(/\s+/g, " "));
    const next = sql.slice(i).search(/CHECK\s*\(/i);
    at = next < 0 ? -1 : i + next;
  }
  return out.sort();
}

const folded = (sql: string | null) => (sql ?? "").replace(/\s+/g, " ").replace(/ IF NOT EXISTS/i, "").trim();

/**
 * Every table's columns (in order: name, type, notnull, default, pk), foreign keys, CHECKs and
 * indexes (unique, partial), every index's columns and predicate, every trigger's text: as SQLite
 * describes them, not the CREATE text as a whole, which ALTER appends to.
 */
async function shape(db: D1Database) {
  const { results: objects } = await db
    .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT IN ('d1_migrations', '_cf_KV') AND name NOT LIKE '_cf_%' ORDER BY name")
    .all<{ type: string; name: string; tbl_name: string; sql: string | null }>();
  const out: Record<string, unknown> = {};
  for (const object of objects) {
    if (object.type === "table") {
      out[object.name] = {
        columns: (await db.prepare(`SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid`).bind(object.name).all()).results,
        foreignKeys: (await db.prepare(`SELECT "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY "from"`).bind(object.name).all()).results,
        checks: checksOf(object.sql ?? ""),
        indexes: (await db.prepare(`SELECT name, "unique", origin, partial FROM pragma_index_list(?) WHERE name NOT LIKE 'sqlite_autoindex_%' ORDER BY name`).bind(object.name).all()).results,
        uniques: (await db.prepare(`SELECT origin, (SELECT group_concat(name) FROM pragma_index_info(il.name)) AS columns FROM pragma_index_list(?) il WHERE il.name LIKE 'sqlite_autoindex_%' ORDER BY columns`).bind(object.name).all()).results,
      };
    } else if (object.type === "index") {
      out[object.name] = {
        columns: (await db.prepare("SELECT seqno, name FROM pragma_index_info(?) ORDER BY seqno").bind(object.name).all()).results,
        where: /\bWHERE\b(.*)$/is.exec(object.sql ?? "")?.[1].replace(/\s+/g, " ").trim() ?? null,
      };
    } else {
      out[object.name] = folded(object.sql);
    }
  }
  return out;
}

async function plan(sql: string, ...params: unknown[]): Promise<string> {
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...params).all<{ detail: string }>();
  return results.map((row) => row.detail).join("\n");
}

describe("schema.sql", () => {
  it("applies to an empty database, again without error or change, and is the schema migrations/ builds", async () => {
    const db = env.SCHEMA_DB;
    await db.batch(statements().map((sql) => db.prepare(sql)));
    const before = await db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name").all();
    await db.batch(statements().map((sql) => db.prepare(sql)));
    const after = await db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name").all();
    expect(after.results).toEqual(before.results);
    expect(await shape(db)).toEqual(await shape(env.DB));
    const names = before.results.map((row) => row.name);
    for (const name of ["tenants", "subscriptions", "registrations", "registrations_by_topic", "registrations_by_owner", "registrations_by_expiry"]) {
      expect(names).toContain(name);
    }
  });

  it("keeps one subscription per tenant, transport and identifier, whichever service named it", async () => {
    await env.DB.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES ('t1', 'x', 'h', 's', 0, 0)").run();
    const insert = (transport: string, service: string, identifier = "https://p/1") =>
      env.DB.prepare("INSERT INTO subscriptions (tenant_id, transport, service, identifier, created_at, updated_at) VALUES ('t1', ?, ?, ?, 0, 0)")
        .bind(transport, service, identifier)
        .run();
    await insert("web_push", "web_push");
    // one push resource is one subscription under either name
    await expect(insert("web_push", "unified_push")).rejects.toThrow(/UNIQUE/);
    await insert("websocket", "websocket", "8b7c2f0e-connection");
    await expect(insert("carrier-pigeon", "web_push", "x")).rejects.toThrow(/CHECK/);
    await expect(insert("web_push", "carrier-pigeon", "y")).rejects.toThrow(/CHECK/);
    // an FCM token's platform is android or ios, nothing else
    const withPlatform = (identifier: string, platform: string) =>
      env.DB.prepare("INSERT INTO subscriptions (tenant_id, transport, service, identifier, platform, created_at, updated_at) VALUES ('t1', 'fcm', 'fcm', ?, ?, 0, 0)")
        .bind(identifier, platform)
        .run();
    await withPlatform("digest-1", "ios");
    await expect(withPlatform("digest-2", "IOS")).rejects.toThrow(/CHECK/);
  });

  it("serves the per-notification and per-request queries from indexes", async () => {
    // fan-out: a keyset page of one topic's registrations with their subscriptions (pageTopicRecipients)
    const page = await plan(
      `SELECT r.id, r.subscription_id, s.transport, s.identifier, s.p256dh, s.auth, s.sealed_token, s.platform
       FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id
       WHERE r.tenant_id = ? AND r.topic = ? AND r.id > ? AND r.expires_at > ? ORDER BY r.id LIMIT ?`,
      "t", "x", "", 0, 1000,
    );
    expect(page).toMatch(/SEARCH r USING INDEX registrations_by_topic/);
    expect(page).toMatch(/SEARCH s USING INTEGER PRIMARY KEY/);
    expect(page).not.toMatch(/TEMP B-TREE/);
    expect(await plan("SELECT * FROM registrations WHERE tenant_id = ? AND owner = ? AND id > ? ORDER BY id LIMIT 50", "t", "o", "")).toMatch(
      /USING INDEX registrations_by_owner/,
    );
    expect(await plan("SELECT * FROM registrations WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT 50", "t", "")).toMatch(
      /USING INDEX registrations_by_tenant/,
    );
    expect(await plan("SELECT id FROM registrations WHERE expires_at <= ? LIMIT 500", 0)).toMatch(/USING (COVERING )?INDEX registrations_by_expiry/);
    expect(await plan("SELECT id FROM subscriptions WHERE tenant_id = ? AND transport = ? AND identifier = ?", "t", "web_push", "x")).toMatch(
      /USING (COVERING )?INDEX sqlite_autoindex_subscriptions/,
    );
    expect(await plan("SELECT 1 FROM registrations WHERE subscription_id = ?", 1)).toMatch(/USING (COVERING )?INDEX sqlite_autoindex_registrations/);
    // the ownership check every registration makes: a subscription by its unique key, its registrations by subscription
    // the hub's question before it queues a fan-out: any live registration of the topic
    expect(await plan(TOPIC_HAS_REGISTRATIONS, "t", "x", 0)).toMatch(/SEARCH registrations USING INDEX registrations_by_topic \(tenant_id=\? AND topic=\?\)/);
    // the gateway poller's round (every poll_seconds): its watched collections by when they were asked, each one's registrations by topic
    const round = await plan(COLLECTIONS_TO_POLL, "t", 0, 200);
    expect(round).toMatch(/SEARCH w USING INDEX watched_collections_by_poll/);
    expect(round).toMatch(/SEARCH r EXISTS USING INDEX registrations_by_topic/);
    expect(round).not.toMatch(/TEMP B-TREE/);
    // FCM topics, per notification of a topic with a large group (issue 16): its groups counted,
    // its members that left or expired, those not yet added
    const groups = await plan(LARGE_FCM_GROUPS, "t", "x", 0, 1000);
    expect(groups).toMatch(/SEARCH r USING INDEX registrations_by_topic \(tenant_id=\? AND topic=\?\)/);
    expect(await plan(LEFT_MEMBERS, "pd-x", 1000)).toMatch(/SEARCH fcm_topic_leaving USING INDEX sqlite_autoindex_fcm_topic_leaving_1 \(name=\?\)/);
    expect(await plan(EXPIRED_MEMBERS, "pd-x", 0, 1000)).toMatch(/SEARCH r USING INDEX registrations_by_fcm_topic \(fcm_topic=\? AND expires_at<\?\)/);
    expect(await plan(JOINING_MEMBERS, "t", "x", 1, null, null, 0, 1000)).toMatch(/SEARCH r USING INDEX registrations_by_topic \(tenant_id=\? AND topic=\?\)/);
    const owned = await plan(`SELECT ${OWNED_BY_ANOTHER}`, "t", "web_push", "https://p/1", 0, "alice");
    expect(owned).toMatch(/SEARCH os USING (COVERING )?INDEX sqlite_autoindex_subscriptions/);
    expect(owned).toMatch(/SEARCH orr USING INDEX sqlite_autoindex_registrations/);
  });
});

/** Rows of each table that holds what clients registered, and registrations still joined to their subscription. */
async function census(db: D1Database) {
  return db
    .prepare(
      `SELECT (SELECT COUNT(*) FROM tenants) AS tenants, (SELECT COUNT(*) FROM subscriptions) AS subscriptions,
         (SELECT COUNT(*) FROM registrations) AS registrations, (SELECT COUNT(*) FROM vapid_keys) AS vapid_keys,
         (SELECT COUNT(*) FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id) AS attached`,
    )
    .first<Record<string, number>>();
}

/** Every table, children before their parents (D1 enforces foreign keys). */
const DROP_ALL = [
  "fcm_topic_leaving", "fcm_topics", "watched_collections", "gateways", "registration_counts", "tenant_limits", "test_pushes", "delivery_stats", "registrations", "subscriptions", "tenant_triggers",
  "vapid_keys", "dead_letters", "websocket_topics", "websocket_connections", "tenants", "d1_migrations",
];

describe("migrations/", () => {
  it("upgrade a filled database from before secrets were sealed without losing a row, and rotation seals it", async () => {
    const db = env.UPGRADE_DB;
    const [initial, ...later] = env.TEST_MIGRATIONS;
    expect(initial.name).toBe("0001_initial.sql");
    await applyD1Migrations(db, [initial]);
    // as a deployment kept them: secrets in clear, the FCM token as the identifier
    const tenant = "0123456789abcdef01234567";
    const vapid = { publicKey: "BPublicKeyOfAnOldRotation", privateKey: "old-private-d" };
    await db.batch([
      db.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES (?, 'old', 'hash', 'plain-grant-secret', 1, 1)").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, identifier, p256dh, auth, content_encoding, created_at, updated_at) VALUES (1, ?, 'web_push', 'https://push.example.net/1', 'BKey', 'plain-auth-secret', 'aes128gcm', 1, 1)").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, identifier, created_at, updated_at) VALUES (2, ?, 'fcm', 'plain-fcm-token:APA91b', 1, 1)").bind(tenant),
      db.prepare("INSERT INTO registrations (id, tenant_id, topic, subscription_id, expires_at, created_at, updated_at) VALUES ('r1aaaaaaaaaaaaaaaaaaaa', ?, 'cal', 1, 9999999999, 1, 1)").bind(tenant),
      db.prepare("INSERT INTO registrations (id, tenant_id, topic, subscription_id, expires_at, created_at, updated_at) VALUES ('r2aaaaaaaaaaaaaaaaaaaa', ?, 'cal', 2, 9999999999, 1, 1)").bind(tenant),
      db.prepare("INSERT INTO vapid_keys (public_key, private_key, state, created_at) VALUES (?, ?, 'retired', 1)").bind(vapid.publicKey, vapid.privateKey),
    ]);
    const count = async () =>
      (await db.prepare("SELECT (SELECT COUNT(*) FROM tenants) + (SELECT COUNT(*) FROM subscriptions) + (SELECT COUNT(*) FROM registrations) + (SELECT COUNT(*) FROM vapid_keys) AS n").first<{ n: number }>())!.n;
    expect(await count()).toBe(6);

    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    await applyD1Migrations(db, env.TEST_MIGRATIONS); // twice: nothing more happens
    expect(later.length).toBeGreaterThan(0);
    expect(await count()).toBe(6);
    expect(await shape(db)).toEqual(await shape(env.DB));

    const keyring = await keyringOf(env);
    expect(await countUnsealed(db, keyring.current.id)).toBe(4);
    await resealAll(db, keyring);
    expect(await countUnsealed(db, keyring.current.id)).toBe(0);
    expect(await count()).toBe(6);

    const row = (await db.prepare("SELECT * FROM tenants WHERE id = ?").bind(tenant).first<TenantRow>())!;
    expect(row.grant_secret).toMatch(/^v1\./);
    expect(await openGrantSecret(keyring, row)).toBe("plain-grant-secret");
    const web = (await db.prepare("SELECT * FROM subscriptions WHERE id = 1").first<{ identifier: string; auth: string }>())!;
    expect(await openAuth(keyring, tenant, web.identifier, web.auth)).toBe("plain-auth-secret");
    const fcm = (await db.prepare("SELECT * FROM subscriptions WHERE id = 2").first<{ identifier: string; sealed_token: string }>())!;
    expect(fcm.identifier).toBe(await sha256Hex("plain-fcm-token:APA91b"));
    expect(await openToken(keyring, tenant, fcm.identifier, fcm.sealed_token)).toBe("plain-fcm-token:APA91b");
    expect(await vapidKeysByPublicKey({ ...env, DB: db }, vapid.publicKey)).toEqual(vapid);
    const dump = JSON.stringify((await db.prepare("SELECT * FROM tenants, subscriptions, vapid_keys").all()).results);
    for (const secret of ["plain-grant-secret", "plain-auth-secret", "plain-fcm-token", "old-private-d"]) expect(dump).not.toContain(secret);
  });

  it("0003 rebuilds subscriptions and registrations of a filled 0002 database without cascading: every row stays, attached", async () => {
    const db = env.UPGRADE_DB;
    const upTo = (name: string) => env.TEST_MIGRATIONS.slice(0, env.TEST_MIGRATIONS.findIndex((m) => m.name === name));
    const before0003 = upTo("0003_push_services.sql");
    expect(before0003.map((m) => m.name)).toEqual(["0001_initial.sql", "0002_secrets_at_rest.sql"]);
    // a fresh database of its own: the first test's may already be upgraded
    await db.batch(DROP_ALL.map((t) => db.prepare(`DROP TABLE IF EXISTS ${t}`)));
    await applyD1Migrations(db, before0003);
    const tenant = "89abcdef0123456789abcdef";
    const other = "0123456789abcdef89abcdef";
    await db.batch([
      ...[tenant, other].map((id) => db.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES (?, 'x', 'h', 'v1.k.iv.sealed', 1, 1)").bind(id)),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, identifier, p256dh, auth, content_encoding, created_at, updated_at, consecutive_failures, last_failure_reason) VALUES (7, ?, 'web_push', 'https://push.example.net/7', 'BKey', 'v1.k.iv.auth', 'aes128gcm', 1, 2, 3, 'push service answered 503')").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, identifier, sealed_token, created_at, updated_at) VALUES (9, ?, 'fcm', 'digest-of-token', 'v1.k.iv.token', 1, 1)").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, identifier, p256dh, auth, created_at, updated_at) VALUES (11, ?, 'web_push', 'https://push.example.net/11', 'BKey2', 'v1.k.iv.auth2', 1, 1)").bind(other),
      ...[
        ["ra", 7, "cal"],
        ["rb", 7, "book"],
        ["rc", 9, "cal"],
        ["rd", 11, "cal"],
      ].map(([id, subscription, topic]) =>
        db
          .prepare("INSERT INTO registrations (id, tenant_id, topic, subscription_id, owner, content_update_depth, expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'alice', 1, 9999999999, 1, 1)")
          .bind(`${id}${"a".repeat(20)}`, subscription === 11 ? other : tenant, topic, subscription),
      ),
    ]);
    const before = await census(db);
    expect(before).toEqual({ tenants: 2, subscriptions: 3, registrations: 4, vapid_keys: 0, attached: 4 });
    const rows = async () => ({
      subscriptions: (await db.prepare("SELECT * FROM subscriptions ORDER BY id").all()).results,
      registrations: (await db.prepare("SELECT * FROM registrations ORDER BY id").all()).results,
    });
    const kept = await rows();

    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    expect(await census(db)).toEqual(before);
    const upgraded = await rows();
    // every column as it was, ids included; the service each had is its transport
    // every column as it was; 0014's fcm_topic is added, NULL (no member of any FCM topic yet)
    expect(upgraded.registrations).toEqual(kept.registrations.map((row) => ({ ...row, fcm_topic: null })));
    // later migrations add columns, empty on old rows (0005: delivery state), but an FCM token's platform (0012: android)
    const added = { vapid_public_key: null, last_failure_status: null, failing_since: null, next_attempt_at: null };
    expect(upgraded.subscriptions).toEqual(
      kept.subscriptions.map((row) => {
        const { transport } = row as { transport: string };
        return { ...row, service: transport, ...added, platform: transport === "fcm" ? "android" : null };
      }),
    );
    expect(await shape(db)).toEqual(await shape(env.DB));
    // the registrations' foreign key names the rebuilt table, and holds
    const references = await db.prepare("SELECT \"table\", \"from\", on_delete FROM pragma_foreign_key_list('registrations') ORDER BY \"from\"").all();
    expect(references.results).toEqual([
      { table: "subscriptions", from: "subscription_id", on_delete: "CASCADE" },
      { table: "tenants", from: "tenant_id", on_delete: "CASCADE" },
    ]);
    expect((await db.prepare("SELECT * FROM pragma_foreign_key_check").all()).results).toEqual([]);

    // twice: nothing more happens
    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    expect(await rows()).toEqual(upgraded);

    // the new names fit, and deleting a subscription still takes its registrations (the cascade points at the new table)
    await db.prepare("INSERT INTO subscriptions (tenant_id, transport, service, identifier, created_at, updated_at) VALUES (?, 'websocket', 'websocket', 'conn-1', 1, 1)").bind(tenant).run();
    await db.prepare("UPDATE subscriptions SET service = 'unified_push' WHERE id = 11").run();
    await db.prepare("DELETE FROM subscriptions WHERE id = 7").run();
    expect(await census(db)).toEqual({ tenants: 2, subscriptions: 3, registrations: 2, vapid_keys: 0, attached: 2 });
  });
  it("0007 counts the registrations of a filled 0006 database, and the triggers keep counting", async () => {
    const db = env.UPGRADE_DB;
    const upTo = (name: string) => env.TEST_MIGRATIONS.slice(0, env.TEST_MIGRATIONS.findIndex((m) => m.name === name));
    await db.batch(DROP_ALL.map((t) => db.prepare(`DROP TABLE IF EXISTS ${t}`)));
    await applyD1Migrations(db, upTo("0007_quotas.sql"));
    const tenants = ["aaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbb"];
    await db.batch([
      ...tenants.map((id) => db.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES (?, 'x', 'h', 'v1.k.iv.s', 1, 1)").bind(id)),
      ...[1, 2, 3, 4].map((n) =>
        db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, service, identifier, created_at, updated_at) VALUES (?, ?, 'web_push', 'web_push', ?, 1, 1)").bind(n, tenants[n === 4 ? 1 : 0], `https://push.example.net/${n}`),
      ),
      ...(
        [
          ["r1", 1, "cal", "alice", 9999999999],
          ["r2", 1, "book", "alice", 9999999999],
          ["r3", 2, "cal", "bob", 9999999999],
          ["r4", 3, "cal", null, 9999999999],
          ["r5", 3, "book", "alice", 1], // expired, not yet purged
          ["r6", 4, "cal", "alice", 9999999999],
        ] as const
      ).map(([id, subscription, topic, owner, expires]) =>
        db
          .prepare("INSERT INTO registrations (id, tenant_id, topic, subscription_id, owner, content_update_depth, expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, 1, 1)")
          .bind(`${id}${"a".repeat(20)}`, tenants[subscription === 4 ? 1 : 0], topic, subscription, owner, expires),
      ),
    ]);
    const before = await census(db);

    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    await applyD1Migrations(db, env.TEST_MIGRATIONS); // twice: nothing counted twice
    expect(await census(db)).toEqual(before);
    expect(await shape(db)).toEqual(await shape(env.DB));
    const counts = async () => (await db.prepare("SELECT tenant_id, owner, registrations FROM registration_counts ORDER BY tenant_id, owner").all()).results;
    expect(await counts()).toEqual([
      { tenant_id: tenants[0], owner: "", registrations: 5 },
      { tenant_id: tenants[0], owner: "alice", registrations: 3 },
      { tenant_id: tenants[0], owner: "bob", registrations: 1 },
      { tenant_id: tenants[1], owner: "", registrations: 1 },
      { tenant_id: tenants[1], owner: "alice", registrations: 1 },
    ]);
    expect(await liveRegistrations(db, tenants[0], 100)).toBe(4);
    // schema.sql applied to the upgraded database changes no count either
    await db.batch(statements().map((sql) => db.prepare(sql)));
    await db.prepare("DELETE FROM registrations WHERE owner = 'bob'").run();
    await db.prepare("INSERT INTO registrations (id, tenant_id, topic, subscription_id, owner, expires_at, created_at, updated_at) VALUES ('r7aaaaaaaaaaaaaaaaaaaa', ?, 'x', 2, 'carol', 9999999999, 1, 1)").bind(tenants[0]).run();
    expect(await counts()).toEqual([
      { tenant_id: tenants[0], owner: "", registrations: 5 },
      { tenant_id: tenants[0], owner: "alice", registrations: 3 },
      { tenant_id: tenants[0], owner: "carol", registrations: 1 },
      { tenant_id: tenants[1], owner: "", registrations: 1 },
      { tenant_id: tenants[1], owner: "alice", registrations: 1 },
    ]);
  });
  it("0011 keeps a filled 0010 database's gateways and watched collections, each one never polled", async () => {
    const db = env.UPGRADE_DB;
    const upTo = (name: string) => env.TEST_MIGRATIONS.slice(0, env.TEST_MIGRATIONS.findIndex((m) => m.name === name));
    await db.batch(DROP_ALL.map((t) => db.prepare(`DROP TABLE IF EXISTS ${t}`)));
    await applyD1Migrations(db, upTo("0011_gateway_polls.sql"));
    const tenant = "cccccccccccccccccccccccc";
    await db.batch([
      db.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES (?, 'x', 'h', 'v1.k.iv.s', 1, 1)").bind(tenant),
      db.prepare("INSERT INTO gateways (tenant_id, origin, poll_seconds, topic_key, created_at, updated_at) VALUES (?, 'https://dav.example/', 60, 'v1.k.iv.s', 1, 1)").bind(tenant),
      ...["/cal/", "/book/"].map((path) =>
        db.prepare("INSERT INTO watched_collections (tenant_id, path, href, topic, sync_token, created_at) VALUES (?, ?, ?, ?, 'tok', 1)").bind(tenant, path, path, `topic${path}`),
      ),
    ]);
    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    expect(await shape(db)).toEqual(await shape(env.DB));
    expect((await db.prepare("SELECT path, sync_token, polled_at FROM watched_collections ORDER BY path").all()).results).toEqual([
      { path: "/book/", sync_token: "tok", polled_at: 0 },
      { path: "/cal/", sync_token: "tok", polled_at: 0 },
    ]);
    expect((await db.prepare("SELECT COUNT(*) AS n FROM gateways").first<{ n: number }>())!.n).toBe(1);
  });

  it("0012 keeps a filled 0011 database's subscriptions and registrations, its FCM tokens now an Android app's", async () => {
    const db = env.UPGRADE_DB;
    const upTo = (name: string) => env.TEST_MIGRATIONS.slice(0, env.TEST_MIGRATIONS.findIndex((m) => m.name === name));
    await db.batch(DROP_ALL.map((t) => db.prepare(`DROP TABLE IF EXISTS ${t}`)));
    const before0012 = upTo("0012_fcm_platform.sql");
    expect(before0012.at(-1)?.name).toBe("0011_gateway_polls.sql");
    await applyD1Migrations(db, before0012);
    const tenant = "dddddddddddddddddddddddd";
    await db.batch([
      db.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES (?, 'x', 'h', 'v1.k.iv.s', 1, 1)").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, service, identifier, sealed_token, created_at, updated_at, consecutive_failures) VALUES (21, ?, 'fcm', 'fcm', 'digest-of-token', 'v1.k.iv.token', 1, 2, 1)").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, service, identifier, p256dh, auth, content_encoding, vapid_public_key, created_at, updated_at) VALUES (22, ?, 'web_push', 'web_push', 'https://push.example.net/22', 'BKey', 'v1.k.iv.auth', 'aes128gcm', 'BVapid', 1, 1)").bind(tenant),
      ...[
        ["rf", 21],
        ["rw", 22],
      ].map(([id, subscription]) =>
        db
          .prepare("INSERT INTO registrations (id, tenant_id, topic, subscription_id, owner, content_update_depth, expires_at, created_at, updated_at) VALUES (?, ?, 'cal', ?, 'alice', 1, 9999999999, 1, 1)")
          .bind(`${id}${"a".repeat(20)}`, tenant, subscription),
      ),
    ]);
    const before = await census(db);
    const rows = async () => ({
      subscriptions: (await db.prepare("SELECT * FROM subscriptions ORDER BY id").all<Record<string, unknown>>()).results,
      registrations: (await db.prepare("SELECT * FROM registrations ORDER BY id").all()).results,
    });
    const kept = await rows();

    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    await applyD1Migrations(db, env.TEST_MIGRATIONS); // twice: nothing more happens
    expect(await census(db)).toEqual(before);
    expect(await shape(db)).toEqual(await shape(env.DB));
    const upgraded = await rows();
    // every column as it was, ids included; the new one android for the FCM token, NULL for Web Push
    // every column as it was; 0014's fcm_topic is added, NULL (no member of any FCM topic yet)
    expect(upgraded.registrations).toEqual(kept.registrations.map((row) => ({ ...row, fcm_topic: null })));
    expect(upgraded.subscriptions).toEqual([
      { ...kept.subscriptions[0], platform: "android" },
      { ...kept.subscriptions[1], platform: null },
    ]);
    expect((await db.prepare("SELECT * FROM pragma_foreign_key_check").all()).results).toEqual([]);
    // the fan-out reads it so: the FCM recipient an Android app's
    const [fcm] = await pageTopicRecipients(db, tenant, "cal", "", 0, 10);
    expect(targetFor(fcm, tenant, { fcm: true, plain: true })).toMatchObject({ subscriptionId: 21, platform: "android" });
  });

  it("0013 rebuilds a filled 0012 database's subscriptions without cascading: every registration stays, attached, and hms fits", async () => {
    const db = env.UPGRADE_DB;
    const upTo = (name: string) => env.TEST_MIGRATIONS.slice(0, env.TEST_MIGRATIONS.findIndex((m) => m.name === name));
    await db.batch(DROP_ALL.map((t) => db.prepare(`DROP TABLE IF EXISTS ${t}`)));
    const before0013 = upTo("0013_hms.sql");
    expect(before0013.at(-1)?.name).toBe("0012_fcm_platform.sql");
    await applyD1Migrations(db, before0013);
    const tenant = "eeeeeeeeeeeeeeeeeeeeeeee";
    await db.batch([
      db.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES (?, 'x', 'h', 'v1.k.iv.s', 1, 1)").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, service, identifier, sealed_token, platform, created_at, updated_at, consecutive_failures, failing_since, last_failure_status, last_failure_reason) VALUES (31, ?, 'fcm', 'fcm', 'digest-of-token', 'v1.k.iv.token', 'ios', 1, 2, 2, 5, 503, 'FCM answered 503')").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, service, identifier, p256dh, auth, content_encoding, vapid_public_key, next_attempt_at, created_at, updated_at) VALUES (32, ?, 'web_push', 'unified_push', 'https://push.example.net/32', 'BKey', 'v1.k.iv.auth', 'aes128gcm', 'BVapid', 77, 1, 1)").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, service, identifier, created_at, updated_at) VALUES (33, ?, 'websocket', 'websocket', 'conn-33', 1, 1)").bind(tenant),
      ...[
        ["rf", 31, "cal"],
        ["rg", 31, "book"],
        ["rw", 32, "cal"],
        ["rs", 33, "cal"],
      ].map(([id, subscription, topic]) =>
        db
          .prepare("INSERT INTO registrations (id, tenant_id, topic, subscription_id, owner, content_update_depth, expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'alice', 1, 9999999999, 1, 1)")
          .bind(`${id}${"a".repeat(20)}`, tenant, topic, subscription),
      ),
    ]);
    const before = await census(db);
    expect(before).toMatchObject({ subscriptions: 3, registrations: 4, attached: 4 });
    const counts = async () => (await db.prepare("SELECT * FROM registration_counts ORDER BY tenant_id, owner").all()).results;
    const countsBefore = await counts();
    const rows = async () => ({
      subscriptions: (await db.prepare("SELECT * FROM subscriptions ORDER BY id").all()).results,
      registrations: (await db.prepare("SELECT * FROM registrations ORDER BY id").all()).results,
    });
    const kept = await rows();

    const through0013 = upTo("0014_fcm_topics.sql");
    await applyD1Migrations(db, through0013);
    await applyD1Migrations(db, through0013); // twice: nothing more happens
    // every row as it was, ids and every column included; the quota counts untouched
    expect(await census(db)).toEqual(before);
    expect(await rows()).toEqual(kept);
    expect(await counts()).toEqual(countsBefore);
    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    expect(await shape(db)).toEqual(await shape(env.DB));
    expect((await db.prepare("SELECT * FROM pragma_foreign_key_check").all()).results).toEqual([]);

    // hms fits now, and deleting a subscription still takes its registrations (the cascade holds)
    await db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, service, identifier, sealed_token, created_at, updated_at) VALUES (34, ?, 'hms', 'hms', 'digest-of-hms-token', 'v1.k.iv.hms', 1, 1)").bind(tenant).run();
    await db.prepare("DELETE FROM subscriptions WHERE id = 31").run();
    expect(await census(db)).toMatchObject({ subscriptions: 3, registrations: 2, attached: 2 });
  });

  it("0014 keeps a filled 0013 database's registrations, none of them a member of an FCM topic; its triggers then record who leaves one", async () => {
    const db = env.UPGRADE_DB;
    const upTo = (name: string) => env.TEST_MIGRATIONS.slice(0, env.TEST_MIGRATIONS.findIndex((m) => m.name === name));
    await db.batch(DROP_ALL.map((t) => db.prepare(`DROP TABLE IF EXISTS ${t}`)));
    await applyD1Migrations(db, upTo("0014_fcm_topics.sql"));
    const tenant = "ffffffffffffffffffffffff";
    await db.batch([
      db.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES (?, 'x', 'h', 'v1.k.iv.s', 1, 1)").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, service, identifier, sealed_token, platform, created_at, updated_at) VALUES (41, ?, 'fcm', 'fcm', 'digest-41', 'v1.k.iv.41', 'android', 1, 1)").bind(tenant),
      db.prepare("INSERT INTO subscriptions (id, tenant_id, transport, service, identifier, sealed_token, created_at, updated_at) VALUES (42, ?, 'hms', 'hms', 'digest-42', 'v1.k.iv.42', 1, 1)").bind(tenant),
      ...[
        ["ra", 41, "cal"],
        ["rb", 41, "book"],
        ["rc", 42, "cal"],
      ].map(([id, subscription, topic]) =>
        db
          .prepare("INSERT INTO registrations (id, tenant_id, topic, subscription_id, owner, content_update_depth, expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'alice', 1, 9999999999, 1, 1)")
          .bind(`${id}${"a".repeat(20)}`, tenant, topic, subscription),
      ),
    ]);
    const before = await census(db);
    const registrations = async () => (await db.prepare("SELECT * FROM registrations ORDER BY id").all<Record<string, unknown>>()).results;
    const kept = await registrations();
    const counts = (await db.prepare("SELECT * FROM registration_counts ORDER BY tenant_id, owner").all()).results;

    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    expect(await census(db)).toEqual(before);
    expect(await registrations()).toEqual(kept.map((row) => ({ ...row, fcm_topic: null })));
    expect((await db.prepare("SELECT * FROM registration_counts ORDER BY tenant_id, owner").all()).results).toEqual(counts);
    expect(await shape(db)).toEqual(await shape(env.DB));
    expect((await db.prepare("SELECT * FROM pragma_foreign_key_check").all()).results).toEqual([]);

    // a member of a topic deleted with its subscription: its token kept sealed for the removal; the cascade holds
    await db.prepare("INSERT INTO fcm_topics (name, tenant_id, topic, triggers, created_at) VALUES ('pd-x', ?, 'cal', '[1,null,null]', 1)").bind(tenant).run();
    await db.prepare("UPDATE registrations SET fcm_topic = 'pd-x' WHERE subscription_id = 41 AND topic = 'cal'").run();
    await db.prepare("DELETE FROM subscriptions WHERE id = 41").run();
    expect((await db.prepare("SELECT name, subscription_id, token_digest, sealed_token FROM fcm_topic_leaving").all()).results).toEqual([
      { name: "pd-x", subscription_id: 41, token_digest: "digest-41", sealed_token: "v1.k.iv.41" },
    ]);
    expect(await census(db)).toMatchObject({ subscriptions: 1, registrations: 1, attached: 1 });
  });

  it("adopt a database built from schema.sql: applied over it, they change nothing", async () => {
    const db = env.UPGRADE_DB;
    await db.batch(DROP_ALL.map((t) => db.prepare(`DROP TABLE IF EXISTS ${t}`)));
    await db.batch(statements().map((sql) => db.prepare(sql)));
    await db.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES ('t-adopt', 'x', 'h', 's', 1, 1)").run();
    const built = await shape(db);
    // recorded as at the newest migration: every file of migrations/, by name
    const recorded = (await db.prepare("SELECT name FROM d1_migrations ORDER BY name").all<{ name: string }>()).results.map((r) => r.name);
    expect(recorded).toEqual(env.TEST_MIGRATIONS.map((m) => m.name));
    await applyD1Migrations(db, env.TEST_MIGRATIONS);
    expect(await shape(db)).toEqual(built);
    expect(await shape(db)).toEqual(await shape(env.DB));
    expect((await db.prepare("SELECT COUNT(*) AS n FROM tenants").first<{ n: number }>())!.n).toBe(1);
  });
});
