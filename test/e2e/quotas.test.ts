// Quotas end to end (issue 12) through `npm start`: a tenant with limits 20/5/30/6/3 meets the
// four abuse runs (registrations, a notify burst, sockets across topics, a frame flood) with
// 429/1008 at exactly those numbers; updates at the quota, deletes, closes and raises free
// capacity at once; a tenant on the defaults doing the same is never refused.
import { randomBytes, webcrypto } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { api, mintGrant, startDirector, type Director } from "./director";

let director: Director;

beforeAll(async () => {
  director = await startDirector();
});

afterAll(async () => {
  await director?.stop();
});

type Tenant = { id: string; notify_token: string; grant_secret: string };

const LIMITS = { registrations: 20, registrations_per_user: 5, notify_per_minute: 30, sockets: 6, sockets_per_user: 3 };

async function tenant(name: string, limits: Record<string, number | null> | null): Promise<Tenant> {
  const created = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name } })).body as Tenant;
  if (limits !== null) {
    const put = await api(director, `/v1/admin/tenants/${created.id}/limits`, director.adminToken, { method: "PUT", json: limits });
    expect(put.status).toBe(200);
  }
  return created;
}

const setLimits = (t: Tenant, limits: Record<string, number | null>) =>
  api(director, `/v1/admin/tenants/${t.id}/limits`, director.adminToken, { method: "PUT", json: limits });

async function subscription(topic: string) {
  const pair = await webcrypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
  const p256dh = Buffer.from(await webcrypto.subtle.exportKey("raw", pair.publicKey)).toString("base64url");
  const endpoint = `http://127.0.0.1:9/push/${randomBytes(8).toString("hex")}`;
  return { topic, push_services: { web_push: { endpoint, keys: { p256dh, auth: randomBytes(16).toString("base64url") } } } };
}

const subscribe = (token: string, body: unknown) => api(director, "/v1/subscriptions", token, { json: body });

/** Opens a socket; resolves with the 101's socket, or the refusal's status and JSON. */
function upgrade(path: string, token: string): Promise<{ ws: WebSocket } | { status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${director.url.replace("http:", "ws:")}${path}`, { headers: { Authorization: `Bearer ${token}` } });
    ws.once("open", () => resolve({ ws }));
    ws.once("unexpected-response", (_req, res) => {
      let text = "";
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    ws.once("error", reject);
  });
}

async function opened(path: string, token: string): Promise<WebSocket> {
  const answer = await upgrade(path, token);
  if (!("ws" in answer)) throw new Error(`upgrade ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.ws;
}

async function refused(path: string, token: string, limit: string, max: number) {
  const answer = await upgrade(path, token);
  expect("status" in answer && answer).toMatchObject({ status: 429, body: { error: { code: "quota_exceeded", limit, max } } });
}

const closed = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));

describe("quotas through wrangler dev", () => {
  it("registrations: 5 per user, 20 per tenant; an update at the quota succeeds; a delete frees a slot at once", async () => {
    const t = await tenant("reg", LIMITS);
    const users = await Promise.all(["mallory", "u1", "u2", "u3", "u4"].map((sub) => mintGrant(t, ["cal"], sub)));
    const mallorys: { body: unknown; location: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const body = await subscription("cal");
      const answer = await subscribe(users[0], body);
      expect(answer.status).toBe(201);
      mallorys.push({ body, location: answer.headers.get("Location")! });
    }
    const sixth = await subscribe(users[0], await subscription("cal"));
    expect(sixth.status).toBe(429);
    expect(sixth.body.error).toMatchObject({ code: "quota_exceeded", limit: "registrations_per_user", max: 5 });
    expect(sixth.body.error.message).toContain("registration limit reached: 5 per user");
    // an update of a live one at the quota
    const update = await subscribe(users[0], mallorys[0].body);
    expect([update.status, update.body.created]).toEqual([201, false]);

    for (const user of users.slice(1, 4)) for (let i = 0; i < 5; i++) expect((await subscribe(user, await subscription("cal"))).status).toBe(201);
    const twentyFirst = await subscribe(users[4], await subscription("cal"));
    expect([twentyFirst.status, twentyFirst.body.error.limit, twentyFirst.body.error.max]).toEqual([429, "registrations", 20]);

    expect((await fetch(mallorys[1].location, { method: "DELETE" })).status).toBe(204);
    expect((await subscribe(users[4], await subscription("cal"))).status).toBe(201);
    const usage = await api(director, `/v1/admin/tenants/${t.id}/limits`, director.adminToken);
    expect(usage.body.usage.registrations).toBe(20);
  });

  it("notifies: a burst of 30 passes, the 31st is 429 rate_limited with Retry-After; a raise is usable at once", async () => {
    const t = await tenant("notify", LIMITS);
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await api(director, "/v1/notify", t.notify_token, { json: { topic: `n-${i % 5}` } })).status);
    expect(statuses).toEqual(Array(30).fill(202));
    const over = await api(director, "/v1/notify", t.notify_token, { json: { topic: "n-0" } });
    expect(over.status).toBe(429);
    expect(over.body.error).toMatchObject({ code: "rate_limited", limit: "notify_per_minute", max: 30 });
    expect(Number(over.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    const batch = await api(director, "/v1/notify", t.notify_token, { json: { notifications: Array.from({ length: 31 }, () => ({ topic: "n-1" })) } });
    expect([batch.status, batch.body.error.code]).toEqual([429, "quota_exceeded"]);

    expect((await setLimits(t, { ...LIMITS, notify_per_minute: 60 })).status).toBe(200);
    expect((await api(director, "/v1/notify", t.notify_token, { json: { topic: "n-0" } })).status).toBe(202);
  });

  it("sockets: 3 per user across topics, 6 per tenant; a close frees its slot within 2 s; 2,000 fast frames get 1008", async () => {
    const t = await tenant("sockets", LIMITS);
    const topics = Array.from({ length: 10 }, (_, i) => `s-${i}`);
    const [mallory, alice] = await Promise.all([mintGrant(t, topics, "mallory"), mintGrant(t, topics, "alice")]);
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await opened(`/v1/ws?topic=s-${i}`, mallory));
    await refused("/v1/ws?topic=s-3", mallory, "sockets_per_user", 3);
    // a connection of the connection-ID flow counts too
    await refused("/v1/ws", mallory, "sockets_per_user", 3);
    for (let i = 0; i < 2; i++) held.push(await opened(`/v1/ws?topic=s-${i}`, alice));
    held.push(await opened("/v1/ws?topic=s-9", t.notify_token));
    await refused("/v1/ws?topic=s-2", alice, "sockets", 6);

    const closing = closed(held[0]);
    held[0].close();
    await closing;
    const deadline = Date.now() + 2000;
    let reopened: WebSocket | null = null;
    while (reopened === null) {
      const answer = await upgrade("/v1/ws?topic=s-5", mallory);
      if ("ws" in answer) reopened = answer.ws;
      else expect(Date.now()).toBeLessThan(deadline);
    }
    held[0] = reopened;

    // the flood: 2,000 frames as fast as the socket takes them
    const flooding = held[1];
    const end = closed(flooding);
    let answered = 0;
    flooding.addEventListener("message", () => answered++);
    for (let i = 0; i < 2000 && flooding.readyState === WebSocket.OPEN; i++) flooding.send("x");
    expect(await end).toEqual({ code: 1008, reason: "too many frames" });
    // closed after the burst (WS_FRAME_BURST, 20), not after answering the flood: counted, not timed,
    // as a loaded machine once took 1,054 ms to finish the closing handshake
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThanOrEqual(40);
    for (const ws of held) ws.close();
  });

  it("a tenant on the defaults doing the same is never refused", async () => {
    const t = await tenant("defaults", null);
    const users = await Promise.all(Array.from({ length: 4 }, (_, i) => mintGrant(t, ["cal", "s-0", "s-1", "s-2"], `user-${i}`)));
    const bodies = await Promise.all(Array.from({ length: 21 }, () => subscription("cal")));
    const statuses = await Promise.all(bodies.map((body, i) => subscribe(users[i % 4], body).then((r) => r.status)));
    expect(statuses).toEqual(Array(21).fill(201));
    const notified = await Promise.all(Array.from({ length: 31 }, (_, i) => api(director, "/v1/notify", t.notify_token, { json: { topic: `n-${i}` } })));
    expect(notified.map((r) => r.status)).toEqual(Array(31).fill(202));
    const sockets = await Promise.all(Array.from({ length: 7 }, (_, i) => opened(`/v1/ws?topic=s-${i % 3}`, users[0])));
    expect(sockets).toHaveLength(7);
    for (const ws of sockets) ws.close();
  });
});
