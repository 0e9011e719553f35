import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

const statements = () => env.TEST_SCHEMA.flatMap((migration) => migration.queries);

async function plan(sql: string, ...params: unknown[]): Promise<string> {
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...params).all<{ detail: string }>();
  return results.map((row) => row.detail).join("\n");
}

describe("schema.sql", () => {
  it("applies again to an applied database without error or change", async () => {
    const before = await env.DB.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name").all();
    await env.DB.batch(statements().map((sql) => env.DB.prepare(sql)));
    const after = await env.DB.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name").all();
    expect(after.results).toEqual(before.results);
    const names = before.results.map((row) => row.name);
    for (const name of ["tenants", "subscriptions", "registrations", "registrations_by_topic", "registrations_by_owner", "registrations_by_expiry"]) {
      expect(names).toContain(name);
    }
  });

  it("keeps one subscription per tenant, transport and identifier", async () => {
    await env.DB.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES ('t1', 'x', 'h', 's', 0, 0)").run();
    const insert = () =>
      env.DB.prepare("INSERT INTO subscriptions (tenant_id, transport, identifier, created_at, updated_at) VALUES ('t1', 'web_push', 'https://p/1', 0, 0)").run();
    await insert();
    await expect(insert()).rejects.toThrow(/UNIQUE/);
    await expect(
      env.DB.prepare("INSERT INTO subscriptions (tenant_id, transport, identifier, created_at, updated_at) VALUES ('t1', 'carrier-pigeon', 'x', 0, 0)").run(),
    ).rejects.toThrow(/CHECK/);
  });

  it("serves the per-notification and per-request queries from indexes", async () => {
    // fan-out: a keyset page of one topic's registrations with their subscriptions (pageTopicRecipients)
    const page = await plan(
      `SELECT r.id, r.subscription_id, s.transport, s.identifier, s.p256dh, s.auth
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
  });
});
