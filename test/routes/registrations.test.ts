import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, bearer, call, createTenant, grant, pushService, registerSubscriber, subscribeWith, webPushBody, type TestTenant } from "../helpers";
import { upgrade } from "../socket-client";

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

describe("delivery state and the test push", () => {
  it("shows each registration its subscription's delivery state, and Web Push ones their VAPID key", async () => {
    const tenant = await createTenant();
    const created = await register(tenant.notify_token);
    expect(created.delivery).toEqual({ last_success_at: null, last_failure: null, consecutive_failures: 0, next_attempt_at: null, failing_since: null });
    expect(created).toHaveProperty("vapid_public_key");
    await env.DB.prepare(
      `UPDATE subscriptions SET last_success_at = 100, last_failure_at = 200, last_failure_status = 503, last_failure_reason = 'push service answered 503',
         consecutive_failures = 2, failing_since = 150, next_attempt_at = 230, vapid_public_key = 'BKeyOfThisSubscription'
       WHERE id = (SELECT subscription_id FROM registrations WHERE id = ?)`,
    )
      .bind(created.id)
      .run();
    const expected = {
      vapid_public_key: "BKeyOfThisSubscription",
      delivery: {
        last_success_at: 100,
        last_failure: { at: 200, status: 503, reason: "push service answered 503" },
        consecutive_failures: 2,
        next_attempt_at: 230,
        failing_since: 150,
      },
    };
    expect(await (await call(`/v1/registrations/${created.id}`, { headers: bearer(tenant.notify_token) })).json()).toMatchObject(expected);
    const listed: Json = await (await call("/v1/registrations", { headers: bearer(tenant.notify_token) })).json();
    expect(listed.registrations[0]).toMatchObject(expected);
    // FCM and WebSocket registrations have no VAPID key to show
    const socket = await upgrade("/v1/ws", bearer(tenant.notify_token));
    const [hello] = await socket.next(1);
    const attached = await register(tenant.notify_token, "topic-2", { push_services: { websocket: { connection_id: hello.connection_id } } });
    expect(attached).not.toHaveProperty("vapid_public_key");
    expect(attached.delivery.consecutive_failures).toBe(0);
    await socket.close();
  });

  it("sends a test push for the owner or the tenant, and answers what the push service said", async () => {
    const tenant = await createTenant();
    const { alice, bob } = await users(tenant);
    const subscriber = await pushService.subscriber({ kind: "status", status: 403 });
    const registration = await registerSubscriber(tenant, "topic-1", subscriber);
    // the tenant's own registration: alice's grant sees none of it
    expect((await call(`/v1/registrations/${registration.id}/test`, { method: "POST", headers: bearer(alice) })).status).toBe(404);
    const response = await call(`/v1/registrations/${registration.id}/test`, { method: "POST", headers: bearer(tenant.notify_token) });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ outcome: "failed", status: 403, reason: "push service answered 403", ms: expect.any(Number) });
    // recorded like a delivery: the registration shows why
    const shown: Json = await (await call(`/v1/registrations/${registration.id}`, { headers: bearer(tenant.notify_token) })).json();
    expect(shown.delivery).toMatchObject({ consecutive_failures: 1, last_failure: { status: 403, reason: "push service answered 403" }, failing_since: expect.any(Number) });
    expect((await pushService.received(subscriber.id)).attempts).toBe(1);

    const own = await register(alice);
    expect((await call(`/v1/registrations/${own.id}/test`, { method: "POST", headers: bearer(bob) })).status).toBe(404);
    expect((await call(`/v1/registrations/${own.id}/test`, { method: "POST" })).status).toBe(401);
    expect((await call("/v1/registrations/not-an-id/test", { method: "POST", headers: bearer(alice) })).status).toBe(404);
  });

  it("allows one test push per registration every 10 s, whoever asks: 429 test_rate_limited with Retry-After", async () => {
    const tenant = await createTenant();
    const { alice } = await users(tenant);
    const subscriber = await pushService.subscriber();
    // the stand-in's endpoint is http://127.0.0.1, so alice registers it with insecure push resources allowed
    const response = await subscribeWith({ ALLOW_INSECURE_PUSH_RESOURCES: "true" }, alice, {
      topic: "topic-1",
      push_services: { web_push: { endpoint: subscriber.endpoint, keys: { p256dh: subscriber.p256dh, auth: subscriber.auth } } },
    });
    const registration: Json = await response.json();
    const test = (token: string) => call(`/v1/registrations/${registration.id}/test`, { method: "POST", headers: bearer(token) });
    const first = await test(alice);
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ outcome: "delivered", status: 201, reason: null });
    const second = await test(tenant.notify_token);
    expect(second.status).toBe(429);
    expect(Number(second.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(Number(second.headers.get("Retry-After"))).toBeLessThanOrEqual(10);
    expect(((await second.json()) as Json).error.code).toBe("test_rate_limited");
    expect((await pushService.received(subscriber.id)).received).toHaveLength(1);
  });

  it("has nothing to test for a WebSocket connection: 400 not_testable", async () => {
    const tenant = await createTenant();
    const socket = await upgrade("/v1/ws", bearer(tenant.notify_token));
    const [hello] = await socket.next(1);
    const attached = await register(tenant.notify_token, "topic-1", { push_services: { websocket: { connection_id: hello.connection_id } } });
    const response = await call(`/v1/registrations/${attached.id}/test`, { method: "POST", headers: bearer(tenant.notify_token) });
    expect(response.status).toBe(400);
    expect(((await response.json()) as Json).error.code).toBe("not_testable");
    await socket.close();
  });
});
