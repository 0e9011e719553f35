import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, bearer, call, createTenant } from "../helpers";

const notifyWith = (token: string) => call("/v1/notify", { method: "POST", headers: bearer(token), json: { topic: "t" } });

describe("admin API", () => {
  it("refuses calls without the admin token, or with a wrong one", async () => {
    const none = await call("/v1/admin/tenants");
    expect(none.status).toBe(401);
    expect(none.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    expect(await none.json()).toMatchObject({ error: { code: "unauthorized" } });
    expect((await call("/v1/admin/tenants", { headers: bearer("test-admin-tokeN") })).status).toBe(401);
    expect((await call("/v1/admin/tenants", { headers: { Authorization: "Basic dGVzdA==" } })).status).toBe(401);
  });

  it("creates a tenant, shows its secrets once and stores only the token's hash", async () => {
    const response = await call("/v1/admin/tenants", { method: "POST", headers: ADMIN, json: { name: " Radicale " } });
    expect(response.status).toBe(201);
    const tenant = await response.json<Record<string, string>>();
    expect(tenant.name).toBe("Radicale");
    expect(tenant.id).toMatch(/^[0-9a-f]{24}$/);
    expect(response.headers.get("Location")).toBe(`https://director.test/v1/admin/tenants/${tenant.id}`);
    // 32 random bytes each: 256 bits, encoded as 43 base64url characters
    expect(tenant.notify_token).toMatch(new RegExp(`^pdn_${tenant.id}_[A-Za-z0-9_-]{43}$`));
    expect(tenant.grant_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const row = await env.DB.prepare("SELECT * FROM tenants WHERE id = ?").bind(tenant.id).first<Record<string, string>>();
    expect(row!.notify_token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(tenant.notify_token);

    const shown = await (await call(`/v1/admin/tenants/${tenant.id}`, { headers: ADMIN })).json<Record<string, unknown>>();
    expect(shown).toMatchObject({ id: tenant.id, name: "Radicale", disabled: false, counts: { subscriptions: 0, registrations: 0 } });
    expect(JSON.stringify(shown)).not.toContain(tenant.notify_token);
    expect(JSON.stringify(shown)).not.toContain(tenant.grant_secret);
  });

  it("gives every tenant distinct secrets", async () => {
    const [a, b] = await Promise.all([createTenant("a"), createTenant("b")]);
    expect(a.id).not.toBe(b.id);
    expect(a.notify_token).not.toBe(b.notify_token);
    expect(a.grant_secret).not.toBe(b.grant_secret);
  });

  it("lists tenants page by page", async () => {
    const created = await Promise.all([createTenant("one"), createTenant("two"), createTenant("three")]);
    const seen: string[] = [];
    let cursor: string | null = "";
    let pages = 0;
    while (cursor !== null) {
      const response = await call(`/v1/admin/tenants?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { headers: ADMIN });
      const page = await response.json<{ tenants: { id: string }[]; next_cursor: string | null }>();
      expect(page.tenants.length).toBeLessThanOrEqual(2);
      seen.push(...page.tenants.map((t) => t.id));
      cursor = page.next_cursor;
      pages++;
    }
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...seen].sort());
    for (const tenant of created) expect(seen).toContain(tenant.id);
    expect((await call("/v1/admin/tenants?limit=0", { headers: ADMIN })).status).toBe(400);
    expect((await call("/v1/admin/tenants?cursor=x", { headers: ADMIN })).status).toBe(400);
  });

  it("answers 404 for an unknown tenant", async () => {
    for (const id of ["0123456789abcdef01234567", "nope"]) {
      const response = await call(`/v1/admin/tenants/${id}`, { headers: ADMIN });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: { code: "not_found", message: "tenant not found" } });
    }
    expect((await call("/v1/admin/tenants/0123456789abcdef01234567/rotate", { method: "POST", headers: ADMIN })).status).toBe(404);
  });

  it("rejects bad tenant bodies with 400/415", async () => {
    const cases: [RequestInit, number, string][] = [
      [{ body: "{", headers: { "Content-Type": "application/json" } }, 400, "invalid_json"],
      [{ body: "", headers: { "Content-Type": "application/json" } }, 400, "invalid_json"],
      [{ body: JSON.stringify({ name: 7 }), headers: { "Content-Type": "application/json" } }, 400, "invalid_request"],
      [{ body: JSON.stringify({ name: "   " }), headers: { "Content-Type": "application/json" } }, 400, "invalid_request"],
      [{ body: JSON.stringify([]), headers: { "Content-Type": "application/json" } }, 400, "invalid_request"],
      [{ body: "name=x", headers: { "Content-Type": "application/x-www-form-urlencoded" } }, 415, "unsupported_media_type"],
    ];
    for (const [init, status, code] of cases) {
      const response = await call("/v1/admin/tenants", { ...init, method: "POST", headers: { ...ADMIN, ...init.headers } });
      expect(response.status, JSON.stringify(init)).toBe(status);
      const body = await response.json<{ error: { code: string; message: string } }>();
      expect(body.error.code).toBe(code);
      expect(body.error.message.length).toBeGreaterThan(5);
    }
  });

  it("rotates the notify token and grant secret: old ones stop working", async () => {
    const tenant = await createTenant();
    expect((await notifyWith(tenant.notify_token)).status).toBe(202);
    const rotated = await (await call(`/v1/admin/tenants/${tenant.id}/rotate`, { method: "POST", headers: ADMIN })).json<Record<string, string>>();
    expect(rotated.notify_token).not.toBe(tenant.notify_token);
    expect(rotated.grant_secret).not.toBe(tenant.grant_secret);
    expect((await notifyWith(tenant.notify_token)).status).toBe(401);
    expect((await notifyWith(rotated.notify_token)).status).toBe(202);
  });

  it("rotates only what it is asked to", async () => {
    const tenant = await createTenant();
    const response = await call(`/v1/admin/tenants/${tenant.id}/rotate`, { method: "POST", headers: ADMIN, json: { notify_token: false } });
    const rotated = await response.json<Record<string, string | null>>();
    expect(rotated.notify_token).toBeNull();
    expect(rotated.grant_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await notifyWith(tenant.notify_token)).status).toBe(202);
    const bad = await call(`/v1/admin/tenants/${tenant.id}/rotate`, { method: "POST", headers: ADMIN, json: { notify_token: "yes" } });
    expect(bad.status).toBe(400);
  });

  it("disables and re-enables a tenant", async () => {
    const tenant = await createTenant();
    const disabled = await (await call(`/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN })).json();
    expect(disabled).toMatchObject({ id: tenant.id, disabled: true });
    const refused = await notifyWith(tenant.notify_token);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: "tenant_disabled" } });
    await call(`/v1/admin/tenants/${tenant.id}/enable`, { method: "POST", headers: ADMIN });
    expect((await notifyWith(tenant.notify_token)).status).toBe(202);
  });
});
