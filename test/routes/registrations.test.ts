import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, bearer, call, createTenant, grant, webPushBody, type TestTenant } from "../helpers";

type Json = Record<string, any>;

async function register(token: string, topic = "topic-1", endpointBody?: Json): Promise<Json> {
  const body = endpointBody ?? (await webPushBody(topic));
  const response = await call("/v1/subscriptions", { method: "POST", headers: bearer(token), json: { ...body, topic } });
  if (response.status !== 201) throw new Error(await response.text());
  return response.json();
}

async function listAll(token: string, query = ""): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = "";
  while (cursor !== null) {
    const page: Json = await (await call(`/v1/registrations?limit=2${query}${cursor ? `&cursor=${cursor}` : ""}`, { headers: bearer(token) })).json();
    ids.push(...page.registrations.map((r: Json) => r.id));
    cursor = page.next_cursor;
  }
  return ids;
}

async function users(tenant: TestTenant) {
  return {
    alice: await grant(tenant, { topics: ["topic-1", "topic-2"] }, { sub: "alice" }),
    bob: await grant(tenant, { topics: ["topic-1"] }, { sub: "bob" }),
  };
}

describe("/v1/registrations", () => {
  it("shows a registration to its owner and its tenant, 404 to anyone else", async () => {
    const tenant = await createTenant();
    const other = await createTenant("other");
    const { alice, bob } = await users(tenant);
    const created = await register(alice);
    const own = await call(`/v1/registrations/${created.id}`, { headers: bearer(alice) });
    expect(own.status).toBe(200);
    expect(own.headers.get("Expires")).toBe(created.expires);
    const { created: _, ...shown } = created;
    expect(await own.json()).toEqual(shown);
    expect((await call(`/v1/registrations/${created.id}`, { headers: bearer(tenant.notify_token) })).status).toBe(200);
    for (const token of [bob, other.notify_token, await grant(other, {}, { sub: "alice" })]) {
      const response = await call(`/v1/registrations/${created.id}`, { headers: bearer(token) });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: { code: "not_found", message: "registration not found" } });
    }
    expect((await call(`/v1/registrations/${created.id}`)).status).toBe(401);
  });

  it("lists a user's own registrations, and all of them for the tenant, page by page", async () => {
    const tenant = await createTenant();
    const { alice, bob } = await users(tenant);
    const mine = [await register(alice, "topic-1"), await register(alice, "topic-2"), await register(alice, "topic-1")].map((r) => r.id);
    const theirs = [(await register(bob, "topic-1")).id];
    expect(await listAll(alice)).toEqual([...mine].sort());
    expect(await listAll(bob)).toEqual(theirs);
    expect(await listAll(tenant.notify_token)).toEqual([...mine, ...theirs].sort());
    expect((await listAll(tenant.notify_token, "&topic=topic-2")).length).toBe(1);
    expect((await call("/v1/registrations?limit=1000", { headers: bearer(alice) })).status).toBe(400);
  });

  it("deletes a registration for its owner (204), then answers 404", async () => {
    const tenant = await createTenant();
    const { alice, bob } = await users(tenant);
    const created = await register(alice);
    expect((await call(`/v1/registrations/${created.id}`, { method: "DELETE", headers: bearer(bob) })).status).toBe(404);
    const deleted = await call(`/v1/registrations/${created.id}`, { method: "DELETE", headers: bearer(alice) });
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe("");
    expect((await call(`/v1/registrations/${created.id}`, { headers: bearer(alice) })).status).toBe(404);
    expect((await call(`/v1/registrations/${created.id}`, { method: "DELETE", headers: bearer(alice) })).status).toBe(404);
    expect((await call(`/v1/registrations/not-an-id`, { method: "DELETE", headers: bearer(alice) })).status).toBe(404);
  });

  it("drops the subscription with its last registration, not before", async () => {
    const tenant = await createTenant();
    const body = await webPushBody();
    const a = await register(tenant.notify_token, "topic-a", body);
    const b = await register(tenant.notify_token, "topic-b", body);
    const count = async () =>
      (await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>())!.n;
    await call(`/v1/registrations/${a.id}`, { method: "DELETE", headers: bearer(tenant.notify_token) });
    expect(await count()).toBe(1);
    await call(`/v1/registrations/${b.id}`, { method: "DELETE", headers: bearer(tenant.notify_token) });
    expect(await count()).toBe(0);
  });

  it("treats an expired registration as gone, and lets anyone register afresh over it", async () => {
    const tenant = await createTenant();
    const { alice, bob } = await users(tenant);
    const body = await webPushBody();
    const created = await register(alice, "topic-1", body);
    await env.DB.prepare("UPDATE registrations SET expires_at = ? WHERE id = ?").bind(Math.floor(Date.now() / 1000) - 1, created.id).run();
    expect((await call(`/v1/registrations/${created.id}`, { headers: bearer(alice) })).status).toBe(404);
    expect((await call(`/v1/registrations/${created.id}`, { method: "DELETE", headers: bearer(alice) })).status).toBe(404);
    expect(await listAll(alice)).toEqual([]);
    const renewed = await register(bob, "topic-1", body);
    expect(renewed).toMatchObject({ id: created.id, owner: "bob" });
  });

  it("deletes by the registration URL alone, without Bearer credentials: the URL is a capability", async () => {
    const tenant = await createTenant();
    const { alice } = await users(tenant);
    const count = async () =>
      (await env.DB.prepare("SELECT (SELECT COUNT(*) FROM registrations WHERE tenant_id = ?1) + (SELECT COUNT(*) FROM subscriptions WHERE tenant_id = ?1) AS n").bind(tenant.id).first<{ n: number }>())!.n;
    // DAVx⁵ sends a bare DELETE of the Location to another host; a client may send its WebDAV server's Basic credentials
    for (const headers of [{} as Record<string, string>, { Authorization: "Basic YWxpY2U6c2VjcmV0" }, { Authorization: "Digest username=\"alice\"" }]) {
      const created = await register(alice);
      const deleted = await call(new URL(created.url).pathname, { method: "DELETE", headers });
      expect(deleted.status, JSON.stringify(headers)).toBe(204);
      expect(await deleted.text()).toBe("");
      expect((await call(`/v1/registrations/${created.id}`, { headers: bearer(alice) })).status).toBe(404);
      // gone: again, 404
      expect((await call(new URL(created.url).pathname, { method: "DELETE", headers })).status).toBe(404);
    }
    expect(await count()).toBe(0);
  });

  it("answers an unknown or expired registration URL without credentials with 404, and changes nothing", async () => {
    const tenant = await createTenant();
    const { alice } = await users(tenant);
    const created = await register(alice);
    await env.DB.prepare("UPDATE registrations SET expires_at = ? WHERE id = ?").bind(Math.floor(Date.now() / 1000) - 1, created.id).run();
    const live = await register(alice, "topic-2");
    for (const id of [created.id, "AAAAAAAAAAAAAAAAAAAAAA", "not-an-id", `${live.id}x`]) {
      const response = await call(`/v1/registrations/${id}`, { method: "DELETE" });
      expect(response.status, id).toBe(404);
      expect(await response.json()).toEqual({ error: { code: "not_found", message: "registration not found" } });
    }
    const rows = await env.DB.prepare("SELECT id FROM registrations WHERE tenant_id = ? ORDER BY id").bind(tenant.id).all<{ id: string }>();
    expect(rows.results.map((r) => r.id).sort()).toEqual([created.id, live.id].sort());
  });

  it("keeps today's rules with a Bearer token: 401 when it is bad, 404 when it is not the caller's", async () => {
    const tenant = await createTenant();
    const { alice, bob } = await users(tenant);
    const created = await register(alice);
    const path = `/v1/registrations/${created.id}`;
    for (const authorization of ["Bearer not-a-token", "Bearer", "bearer  ", `Bearer ${tenant.notify_token}x`]) {
      expect((await call(path, { method: "DELETE", headers: { Authorization: authorization } })).status, authorization).toBe(401);
    }
    expect((await call(path, { method: "DELETE", headers: bearer(bob) })).status).toBe(404);
    // reading still needs credentials, whatever the scheme
    expect((await call(path)).status).toBe(401);
    expect((await call(path, { headers: { Authorization: "Basic YWxpY2U6c2VjcmV0" } })).status).toBe(401);
    expect((await call("/v1/registrations")).status).toBe(401);
    expect((await call(path, { headers: bearer(alice) })).status).toBe(200);
    // a disabled tenant's token is refused before anything is deleted
    await call(`/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN });
    expect((await call(path, { method: "DELETE", headers: bearer(alice) })).status).toBe(403);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE id = ?").bind(created.id).first<{ n: number }>())!.n).toBe(1);
    expect((await call(path, { method: "DELETE", headers: bearer(tenant.notify_token) })).status).toBe(403);
  });
});
