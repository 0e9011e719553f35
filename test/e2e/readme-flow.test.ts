// The README's flow over HTTP against `npm start`: create tenant → subscribe → list → notify → delete.
import { webcrypto } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, mintGrant, startDirector, type Director } from "./director";

let director: Director;

beforeAll(async () => {
  director = await startDirector();
});

afterAll(async () => {
  await director?.stop();
});

const call = (path: string, token: string, init: { method?: string; json?: unknown } = {}) => api(director, path, token, init);

async function userAgentKeys() {
  const pair = await webcrypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
  return {
    p256dh: Buffer.from(await webcrypto.subtle.exportKey("raw", pair.publicKey)).toString("base64url"),
    auth: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString("base64url"),
  };
}

describe("npm start", () => {
  it("prints where the admin token is and how to create a tenant", () => {
    expect(director.output()).toMatch(/The admin token is ADMIN_TOKEN in/);
    expect(director.output()).toMatch(/curl -s -X POST http:\/\/localhost:\d+\/v1\/admin\/tenants/);
  });

  it("is healthy: GET /healthz answers 200 with every check ok, never cached", async () => {
    const response = await fetch(`${director.url}/healthz`);
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const body = await response.json();
    expect(body).toMatchObject({ status: "ok", checks: { d1: { ok: true }, bindings: { ok: true, missing: [] }, secrets: { ok: true } } });
  });

  it("runs the README flow: tenant, subscribe, list, notify, delete", async () => {
    const discovery = await call("/.well-known/webdav-push", "");
    expect(discovery.status).toBe(200);
    expect(discovery.body.transports.web_push.vapid_public_key).toMatch(/^B[A-Za-z0-9_-]{86}$/);

    const tenant = await call("/v1/admin/tenants", director.adminToken, { json: { name: "my-dav-server" } });
    expect(tenant.status).toBe(201);
    const { id, notify_token: notifyToken, grant_secret: grantSecret } = tenant.body;

    // a client with a grant the tenant minted
    const grant = await mintGrant({ id, grant_secret: grantSecret }, ["calendar-1"], "alice");
    const subscribed = await call("/v1/subscriptions", grant, {
      json: {
        client_id: "e2e",
        topic: "calendar-1",
        push_services: { web_push: { endpoint: "http://127.0.0.1:9/push/e2e", keys: await userAgentKeys() } },
      },
    });
    expect(subscribed.status).toBe(201);
    const location = subscribed.headers.get("Location")!;
    expect(location).toBe(`${director.url}/v1/registrations/${subscribed.body.id}`);
    expect(new Date(subscribed.headers.get("Expires")!).getTime()).toBeGreaterThan(Date.now() + 6 * 86_400_000);

    const listed = await call("/v1/registrations", grant);
    expect(listed.body.registrations.map((r: { id: string }) => r.id)).toEqual([subscribed.body.id]);

    const notified = await call("/v1/notify", notifyToken, { json: { topic: "calendar-1", content_update: { sync_token: "s1" } } });
    expect(notified.status).toBe(202);
    expect(notified.body).toEqual({ accepted: 1, topics: 1 });

    const deleted = await call(new URL(location).pathname, grant, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect((await call(new URL(location).pathname, grant)).status).toBe(404);
  });

  it("answers a client's mistakes with JSON 4xx, never 500", async () => {
    const bad = await call("/v1/admin/tenants", director.adminToken, { json: { name: 42 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_request");
    expect((await call("/v1/notify", "wrong", { json: { topic: "x" } })).status).toBe(401);
  });
});
