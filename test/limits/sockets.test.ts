// Socket quotas (issue 12): open WebSockets per tenant and per grant `sub` across topics and
// connections, counted in the tenant's limiter (a real Durable Object) and taken before any 101.
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { connectionHub, topicHub } from "../../src/hub/topic-hub";
import { slotRefusal, type SocketLimits } from "../../src/limits/socket-slots";
import { tenantLimiter } from "../../src/limits/tenant-limiter";
import { ADMIN, bearer, call, createTenant, grant, type TestTenant } from "../helpers";
import { Client, open, upgrade } from "../socket-client";

/** Sets the tenant's socket limits by the admin API (the other limits: their defaults). */
async function setLimits(tenant: TestTenant, limits: Partial<SocketLimits>) {
  const json = { registrations: null, registrations_per_user: null, notify_per_minute: null, sockets: null, sockets_per_user: null, ...limits };
  const response = await call(`/v1/admin/tenants/${tenant.id}/limits`, { method: "PUT", headers: ADMIN, json });
  expect(response.status).toBe(200);
}

const TOPICS = Array.from({ length: 10 }, (_, i) => `t${i}`);
const userGrant = (tenant: TestTenant, sub: string) => grant(tenant, { topics: TOPICS }, { sub });
const openSlots = (tenant: TestTenant) => tenantLimiter(env, tenant.id).openSockets();

/** Resolves once the tenant's limiter holds `n` slots; fails after 2 s (a socket that ends frees its slot within 2 s). */
async function slotsBecome(tenant: TestTenant, n: number): Promise<void> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const open = await openSlots(tenant);
    if (open === n) return;
    if (Date.now() > deadline) throw new Error(`${open} slots open 2 s on, expected ${n}`);
    await scheduler.wait(20);
  }
}

async function expectQuota(response: Response, limit: keyof SocketLimits, max: number) {
  expect(response.status).toBe(429);
  expect(response.webSocket).toBeNull();
  const message = `socket limit reached: ${max} per ${limit === "sockets" ? "tenant" : "user"}`;
  expect(await response.json()).toEqual({ error: { code: "quota_exceeded", message, limit, max } });
}

/** Answers ping with pong (after its hello): the socket is open. */
async function alive(client: Client) {
  await client.next(1);
  const before = client.raw.length;
  client.ws.send("ping");
  expect((await client.messages(before + 1))[before]).toBe("pong");
}

describe("slotRefusal", () => {
  const limits = { sockets: 3, sockets_per_user: 2 };
  it.each([
    [{ tenant: 0, user: 0 }, null],
    [{ tenant: 2, user: 1 }, null],
    [{ tenant: 2, user: 2 }, { limit: "sockets_per_user", max: 2 }],
    [{ tenant: 3, user: 1 }, { limit: "sockets", max: 3 }],
    // both passed: the user's is named
    [{ tenant: 3, user: 2 }, { limit: "sockets_per_user", max: 2 }],
    // the notify token: the tenant's limit only
    [{ tenant: 2, user: null }, null],
    [{ tenant: 3, user: null }, { limit: "sockets", max: 3 }],
  ])("%j → %j", (open, refusal) => {
    expect(slotRefusal(open, limits)).toEqual(refusal);
  });
});

describe("socket quotas", () => {
  it("refuses a user's socket beyond sockets_per_user, across topics and connections, with 429 before any 101", async () => {
    const tenant = await createTenant();
    await setLimits(tenant, { sockets_per_user: 3 });
    const alice = await userGrant(tenant, "alice");
    for (const path of ["/v1/ws?topic=t0", "/v1/ws?topic=t1", "/v1/ws"]) expect((await open(path, bearer(alice))).status, path).toBe(101);
    await expectQuota(await open("/v1/ws?topic=t2", bearer(alice)), "sockets_per_user", 3);
    await expectQuota(await open("/v1/ws", bearer(alice)), "sockets_per_user", 3);
    // the refused connection left nothing on record
    const connections = await env.DB.prepare("SELECT COUNT(*) AS n FROM websocket_connections WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>();
    expect(connections!.n).toBe(1);
    // another user of the tenant still opens one
    expect((await open("/v1/ws?topic=t2", bearer(await userGrant(tenant, "bob")))).status).toBe(101);
    expect(await openSlots(tenant)).toBe(4);
  });

  it("counts the notify token's sockets toward the tenant only, and the tenant's across users and connections", async () => {
    const tenant = await createTenant();
    await setLimits(tenant, { sockets: 4, sockets_per_user: 1 });
    const token = bearer(tenant.notify_token);
    // three for the notify token: the per-user limit of 1 is not its
    for (const path of ["/v1/ws?topic=t0", "/v1/ws?topic=t1", "/v1/ws"]) expect((await open(path, token)).status, path).toBe(101);
    expect((await open("/v1/ws?topic=t0", bearer(await userGrant(tenant, "alice")))).status).toBe(101);
    await expectQuota(await open("/v1/ws?topic=t0", bearer(await userGrant(tenant, "bob"))), "sockets", 4);
    await expectQuota(await open("/v1/ws", bearer(await userGrant(tenant, "bob"))), "sockets", 4);
    await expectQuota(await open("/v1/ws?topic=t2", token), "sockets", 4);
    // another tenant's sockets are its own
    const other = await createTenant();
    expect((await open("/v1/ws?topic=t0", bearer(other.notify_token))).status).toBe(101);
  });

  it("of 10 simultaneous upgrades with 3 slots opens exactly 3; closing one frees its slot for the next", async () => {
    const tenant = await createTenant();
    await setLimits(tenant, { sockets_per_user: 3 });
    const alice = await userGrant(tenant, "alice");
    // one user across ten topics (ten hubs), and ten users on one topic (one hub) under the tenant's limit
    const acrossTopics = await Promise.all(TOPICS.map((topic) => open(`/v1/ws?topic=${topic}`, bearer(alice))));
    expect(acrossTopics.filter((r) => r.status === 101)).toHaveLength(3);
    for (const refused of acrossTopics.filter((r) => r.status !== 101)) await expectQuota(refused, "sockets_per_user", 3);
    expect(await openSlots(tenant)).toBe(3);

    const crowded = await createTenant();
    await setLimits(crowded, { sockets: 3 });
    const users = await Promise.all(TOPICS.map((_, i) => userGrant(crowded, `user-${i}`)));
    const oneTopic = await Promise.all(users.map((token) => open("/v1/ws?topic=t0", bearer(token))));
    expect(oneTopic.filter((r) => r.status === 101)).toHaveLength(3);
    for (const refused of oneTopic.filter((r) => r.status !== 101)) await expectQuota(refused, "sockets", 3);
    expect(await openSlots(crowded)).toBe(3);

    const [first] = acrossTopics.filter((r) => r.status === 101).map((r) => new Client(r.webSocket!));
    await first.close();
    await slotsBecome(tenant, 2);
    expect((await open("/v1/ws?topic=t9", bearer(alice))).status).toBe(101);
    await expectQuota(await open("/v1/ws?topic=t9", bearer(alice)), "sockets_per_user", 3);
  });

  it("applies a raised limit at once; a lowered one closes nothing", async () => {
    const tenant = await createTenant();
    await setLimits(tenant, { sockets_per_user: 2 });
    const alice = await userGrant(tenant, "alice");
    const clients = [await upgrade("/v1/ws?topic=t0", bearer(alice)), await upgrade("/v1/ws?topic=t1", bearer(alice))];
    await expectQuota(await open("/v1/ws?topic=t2", bearer(alice)), "sockets_per_user", 2);
    await setLimits(tenant, { sockets_per_user: 3 });
    clients.push(await upgrade("/v1/ws?topic=t2", bearer(alice)));
    await setLimits(tenant, { sockets_per_user: 1 });
    for (const client of clients) await alive(client);
    await expectQuota(await open("/v1/ws?topic=t3", bearer(alice)), "sockets_per_user", 1);
    expect(await openSlots(tenant)).toBe(3);
  });

  it("lets a user at the limit take over their own connection: the slot is handed on", async () => {
    const tenant = await createTenant();
    await setLimits(tenant, { sockets_per_user: 1 });
    const alice = await userGrant(tenant, "alice");
    const first = await upgrade("/v1/ws", bearer(alice));
    const [{ connection_id: id }] = await first.next(1);
    const second = await upgrade(`/v1/ws?connection_id=${id}`, bearer(alice));
    expect(await first.closed).toEqual({ code: 4002, reason: "another socket took over this connection" });
    await alive(second);
    expect(await openSlots(tenant)).toBe(1);
    await expectQuota(await open("/v1/ws", bearer(alice)), "sockets_per_user", 1);
  });

  it("never lets a slot whose socket is gone lock a user out: the limiter asks the hubs before refusing", async () => {
    const tenant = await createTenant();
    await setLimits(tenant, { sockets_per_user: 2 });
    const limiter = tenantLimiter(env, tenant.id);
    // slots left behind in a topic's hub and in a connection's, as a deploy leaves them
    const limits = { sockets: 100, sockets_per_user: 2 };
    const inTopic = { kind: "topic" as const, hub: topicHub(env, tenant.id, "t0").id.toString() };
    const inConnection = { kind: "connection" as const, hub: connectionHub(env, tenant.id, crypto.randomUUID()).id.toString() };
    expect(await limiter.acquireSocket({ id: "gone-1", owner: "alice", home: inTopic }, limits)).toEqual({ ok: true });
    expect(await limiter.acquireSocket({ id: "gone-2", owner: "alice", home: inConnection }, limits)).toEqual({ ok: true });
    const alice = await userGrant(tenant, "alice");
    expect(await openSlots(tenant)).toBe(2);
    const kept = await upgrade("/v1/ws?topic=t0", bearer(alice));
    expect(await openSlots(tenant)).toBe(1);

    // a hub evicted with its sockets closed (no close event): their slots are found out too
    const bob = await userGrant(tenant, "bob");
    const dropped = [await upgrade("/v1/ws?topic=t1", bearer(bob)), await upgrade("/v1/ws?topic=t1", bearer(bob))];
    await evictDurableObject(topicHub(env, tenant.id, "t1"), { webSockets: "close" });
    for (const client of dropped) expect((await client.closed).code).toBe(1006);
    // no close event reached the hub: bob's two slots are left behind, and bob is at his limit
    expect(await openSlots(tenant)).toBe(3);
    expect((await open("/v1/ws?topic=t2", bearer(bob))).status).toBe(101);
    // alice's open socket was asked about too, and kept its slot
    await alive(kept);
    expect(await openSlots(tenant)).toBe(2);
  });

  it("gives a slot back whichever way its socket ends: client close, expiry, rotation, disable", async () => {
    const tenant = await createTenant();
    const closing = await upgrade("/v1/ws?topic=t0", bearer(await userGrant(tenant, "alice")));
    const connection = await upgrade("/v1/ws", bearer(await userGrant(tenant, "bob")));
    const byToken = await upgrade("/v1/ws?topic=t0", bearer(tenant.notify_token));
    const expiring = await upgrade("/v1/ws?topic=t1", bearer(await grant(tenant, { topics: ["t1"] }, { sub: "carol", expiresIn: Math.floor(Date.now() / 1000) + 2 })));
    const disabled = await upgrade("/v1/ws?topic=t2", bearer(await userGrant(tenant, "dave")));
    const disabledConnection = await upgrade("/v1/ws", bearer(await userGrant(tenant, "dave")));
    expect(await openSlots(tenant)).toBe(6);

    await closing.close();
    await connection.close();
    await slotsBecome(tenant, 4);
    await call(`/v1/admin/tenants/${tenant.id}/rotate`, { method: "POST", headers: ADMIN, json: { grant_secret: false } });
    expect(await byToken.closed).toMatchObject({ code: 4001 });
    await slotsBecome(tenant, 3);
    expect(await expiring.closed).toEqual({ code: 4001, reason: "client grant expired" });
    await slotsBecome(tenant, 2);
    await call(`/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN });
    for (const client of [disabled, disabledConnection]) expect(await client.closed).toMatchObject({ code: 4003 });
    await slotsBecome(tenant, 0);
  });
});
