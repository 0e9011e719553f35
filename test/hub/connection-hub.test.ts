import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ConnectionHub } from "../../src/hub/connection-hub";
import { attachConnection, connectionOwner, detachConnection } from "../../src/hub/connections";
import { connectionHub, topicHub, type TopicHub } from "../../src/hub/topic-hub";
import type { Trigger } from "../../src/store/registrations";
import { ADMIN, bearer, call, createTenant, grant, ORIGIN, type TestTenant } from "../helpers";
import { Client, upgrade } from "../socket-client";

const CONTENT: Trigger = { contentUpdate: 1, propertyUpdate: null, props: null };
const PROPERTY: Trigger = { contentUpdate: null, propertyUpdate: 0, props: null };
const hour = () => Math.floor(Date.now() / 1000) + 3600;

/** A registration id as the director makes them: 128 random bits, 22 base64url characters. */
const registrationId = () =>
  btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16)))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

let users = 0;
/** Opens a new connection (a grant for a new user unless `token` says otherwise); answers it with its hello's id. */
async function connection(tenant: TestTenant, token?: string): Promise<{ client: Client; id: string }> {
  token ??= await grant(tenant, {}, { sub: `conn-user-${++users}` });
  const client = await upgrade("/v1/ws", bearer(token));
  const [hello] = await client.next(1);
  return { client, id: hello.connection_id };
}

async function attach(tenant: TestTenant, topic: string, id: string, over: { id?: string; trigger?: Trigger; expiresAt?: number } = {}): Promise<string> {
  const registration = { id: registrationId(), trigger: CONTENT, expiresAt: hour(), ...over };
  await attachConnection(env, tenant.id, topic, id, registration);
  return registration.id;
}

/** One notify, flushed by the topic's alarm: when it returns, the frames have left the hubs. */
async function notify(tenant: TestTenant, body: Record<string, unknown>): Promise<void> {
  const response = await call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: body });
  expect(response.status).toBe(202);
  await runDurableObjectAlarm(topicHub(env, tenant.id, body.topic as string));
}

const content = (tenant: TestTenant, topic: string, syncToken: string, over: Record<string, unknown> = {}) =>
  notify(tenant, { topic, content_update: { sync_token: syncToken }, ...over });

/** The pushes a client got, as `topic/sync-token` (`topic/props` for a property update). */
const pushes = (client: Client) =>
  client.frames.filter((f) => f.type === "push").map((f) => `${f.topic}/${f.content_update?.sync_token ?? "props"}`);

const attachedTo = (tenant: TestTenant, topic: string) =>
  runInDurableObject(topicHub(env, tenant.id, topic), async (_hub: TopicHub, ctx) => [...(await ctx.storage.list({ prefix: "attached:" })).keys()]);

describe("ConnectionHub", () => {
  it("gets each flushed frame once: the very frame the topic's sockets get", async () => {
    const tenant = await createTenant();
    const topicSocket = await upgrade("/v1/ws?topic=cal", bearer(await grant(tenant, { topics: ["cal"] })));
    const { client, id } = await connection(tenant);
    await attach(tenant, "cal", id);
    await topicSocket.next(1);

    await content(tenant, "cal", "s1");
    await content(tenant, "cal", "s2");
    const [, first, second] = await client.next(3);
    const topicFrames = await topicSocket.next(3);
    expect(first).toEqual(topicFrames[1]);
    expect(second).toEqual(topicFrames[2]);
    expect(first).toMatchObject({ type: "push", seq: 1, topic: "cal", content_update: { sync_token: "s1" } });
    expect(client.raw.slice(1)).toEqual(topicSocket.raw.slice(1));
    // a TopicHub handing the same (topic, seq) again (a retried call) changes nothing
    expect(await connectionHub(env, tenant.id, id).deliver("cal", 2, client.raw[2])).toBe("sent");
    await content(tenant, "cal", "s3");
    await client.next(4);
    expect(pushes(client)).toEqual(["cal/s1", "cal/s2", "cal/s3"]);
  });

  it("honours each registration's trigger and Push-Dont-Notify", async () => {
    const tenant = await createTenant();
    const a = await connection(tenant);
    const b = await connection(tenant);
    const aRegistration = await attach(tenant, "tr", a.id, { trigger: CONTENT });
    await attach(tenant, "tr", b.id, { trigger: PROPERTY });

    await content(tenant, "tr", "only-content");
    await notify(tenant, { topic: "tr", property_update: { depth: 0 } });
    await content(tenant, "tr", "spared", { dont_notify: [`${ORIGIN}/v1/registrations/${aRegistration}`] });
    await content(tenant, "tr", "nobody", { dont_notify: "*" });
    await content(tenant, "tr", "deep", { content_update: { sync_token: "deep", depth: "infinity" } });
    await notify(tenant, { topic: "tr", content_update: { sync_token: "both" }, property_update: { depth: 0 } });

    await a.client.next(3);
    await b.client.next(3);
    expect(pushes(a.client)).toEqual(["tr/only-content", "tr/both"]);
    expect(pushes(b.client)).toEqual(["tr/props", "tr/both"]);
  });

  it("stops at once on detach, and skips an expired registration", async () => {
    const tenant = await createTenant();
    const { client, id } = await connection(tenant);
    await attach(tenant, "d1", id);
    await attach(tenant, "d2", id);
    await attach(tenant, "old", id, { expiresAt: Math.floor(Date.now() / 1000) - 1 });
    await content(tenant, "d1", "before");
    await client.next(2);

    await detachConnection(env, tenant.id, "d1", id);
    expect(await attachedTo(tenant, "d1")).toEqual([]);
    await content(tenant, "d1", "after-detach");
    await content(tenant, "old", "expired");
    await content(tenant, "d2", "marker");
    await client.next(3);
    expect(pushes(client)).toEqual(["d1/before", "d2/marker"]);
    // the expired attachment is dropped by the flush that skipped it
    expect(await attachedTo(tenant, "old")).toEqual([]);
  });

  it("keeps what a closed connection missed and replays it in order, once, after hello", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, {}, { sub: "replay-user" });
    const { client, id } = await connection(tenant, token);
    await attach(tenant, "r1", id);
    await attach(tenant, "r2", id);
    await content(tenant, "r1", "seen");
    await client.next(2);
    await client.close();

    await content(tenant, "r1", "a");
    await content(tenant, "r2", "b");
    await content(tenant, "r1", "c");
    const back = await upgrade(`/v1/ws?connection_id=${id}`, bearer(token));
    const frames = await back.next(4);
    expect(frames[0]).toEqual({ type: "hello", connection_id: id, topics: ["r1", "r2"] });
    expect(frames.slice(1).map((f) => [f.topic, f.seq, f.content_update.sync_token])).toEqual([
      ["r1", 2, "a"],
      ["r2", 1, "b"],
      ["r1", 3, "c"],
    ]);
    await content(tenant, "r2", "live");
    await back.next(5);
    expect(pushes(back)).toEqual(["r1/a", "r2/b", "r1/c", "r2/live"]);

    // taken over by a third socket: nothing is replayed twice
    const third = await upgrade(`/v1/ws?connection_id=${id}`, bearer(await grant(tenant, {}, { sub: "replay-user" })));
    expect(await back.closed).toEqual({ code: 4002, reason: "another socket took over this connection" });
    await content(tenant, "r1", "after-takeover");
    await third.next(2);
    expect(third.frames).toEqual([{ type: "hello", connection_id: id, topics: ["r1", "r2"] }, expect.objectContaining({ seq: 4, topic: "r1" })]);
  });

  it("beyond WS_REPLAY_SIZE (5 here) keeps the newest and sends a reset naming the topics that lost pushes", async () => {
    const tenant = await createTenant();
    const { client, id } = await connection(tenant, tenant.notify_token);
    for (const topic of ["x", "y", "z"]) await attach(tenant, topic, id);
    await client.close();
    for (const [topic, token] of [["x", "1"], ["y", "2"], ["x", "3"], ["z", "4"], ["z", "5"], ["y", "6"], ["z", "7"]]) await content(tenant, topic, token);
    const back = await upgrade(`/v1/ws?connection_id=${id}`, bearer(tenant.notify_token));
    const frames = await back.next(7);
    expect(frames.slice(0, 2)).toEqual([
      { type: "hello", connection_id: id, topics: ["x", "y", "z"] },
      { type: "reset", topics: ["x", "y"] },
    ]);
    expect(pushes(back)).toEqual(["x/3", "z/4", "z/5", "y/6", "z/7"]);
  });

  it("ends when the grace is over (its alarm): detached everywhere, unknown from then on", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, {}, { sub: "leaver" });
    const { client, id } = await connection(tenant, token);
    await attach(tenant, "g1", id);
    await attach(tenant, "g2", id);
    const hub = connectionHub(env, tenant.id, id);
    expect(await connectionOwner(env, tenant.id, id)).toEqual({ owner: "leaver" });
    await client.close();
    // within the grace: still known, its alarm set at the grace's end (60 s by default)
    expect(await connectionOwner(env, tenant.id, id)).toEqual({ owner: "leaver" });
    const alarm = await runInDurableObject(hub, (_hub: ConnectionHub, ctx) => ctx.storage.getAlarm());
    expect(alarm! - Date.now()).toBeGreaterThan(55_000);

    expect(await runDurableObjectAlarm(hub)).toBe(true);
    expect(await connectionOwner(env, tenant.id, id)).toBeNull();
    expect(await attachedTo(tenant, "g1")).toEqual([]);
    expect(await attachedTo(tenant, "g2")).toEqual([]);
    const stored = await env.DB.prepare("SELECT connection_id FROM websocket_connections WHERE tenant_id = ?").bind(tenant.id).all();
    expect(stored.results).toEqual([]);
    const late = await call(`/v1/ws?connection_id=${id}`, { headers: { Upgrade: "websocket", ...bearer(token) } });
    expect(late.status).toBe(404);
    // attaching to it now attaches nothing
    await attach(tenant, "g3", id);
    expect(await attachedTo(tenant, "g3")).toEqual([]);
  });

  it("answers who holds a connection, and null for anything else", async () => {
    const tenant = await createTenant();
    const byGrant = await connection(tenant, await grant(tenant, {}, { sub: " spaced\u00a0sub " }));
    const byTenant = await connection(tenant, tenant.notify_token);
    const topicSocket = await upgrade("/v1/ws?topic=owned", bearer(tenant.notify_token));
    const [{ connection_id: topicSocketId }] = await topicSocket.next(1);
    expect(await connectionOwner(env, tenant.id, byGrant.id)).toEqual({ owner: " spaced\u00a0sub " });
    expect(await connectionOwner(env, tenant.id, byTenant.id)).toEqual({ owner: null });
    const other = await createTenant();
    for (const id of [topicSocketId, crypto.randomUUID(), "", "not-a-uuid", byGrant.id.toUpperCase(), "x".repeat(5000)]) {
      expect(await connectionOwner(env, tenant.id, id), id).toBeNull();
    }
    expect(await connectionOwner(env, other.id, byGrant.id)).toBeNull();
  });

  it("closes with 4001 when the grant expires; the grace applies, and the same sub reconnects with a fresh grant", async () => {
    const tenant = await createTenant();
    const shortLived = await grant(tenant, {}, { sub: "expiring", expiresIn: Math.floor(Date.now() / 1000) + 2 });
    const { client, id } = await connection(tenant, shortLived);
    await attach(tenant, "e", id);
    expect(await client.closed).toEqual({ code: 4001, reason: "client grant expired" });
    await content(tenant, "e", "while-away");
    const back = await upgrade(`/v1/ws?connection_id=${id}`, bearer(await grant(tenant, {}, { sub: "expiring" })));
    expect((await back.next(2)).map((f) => f.type)).toEqual(["hello", "push"]);
    expect(pushes(back)).toEqual(["e/while-away"]);
  });

  it("closes a disabled tenant's connections with 4003, with no grace", async () => {
    const tenant = await createTenant();
    const open = await connection(tenant);
    const token = await grant(tenant, {}, { sub: "away" });
    const away = await connection(tenant, token);
    await attach(tenant, "off", open.id);
    await attach(tenant, "off", away.id);
    await away.client.close();

    const disabled = await call(`/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN });
    expect(await disabled.json()).toMatchObject({ disabled: true, closed_sockets: 1 });
    expect(await open.client.closed).toEqual({ code: 4003, reason: "tenant disabled" });
    for (const id of [open.id, away.id]) expect(await connectionOwner(env, tenant.id, id)).toBeNull();
    expect(await attachedTo(tenant, "off")).toEqual([]);
    await call(`/v1/admin/tenants/${tenant.id}/enable`, { method: "POST", headers: ADMIN });
    expect((await call(`/v1/ws?connection_id=${away.id}`, { headers: { Upgrade: "websocket", ...bearer(token) } })).status).toBe(404);
  });

  it("closes connection sockets opened with rotated credentials (4001); the grace applies", async () => {
    const tenant = await createTenant();
    const byToken = await connection(tenant, tenant.notify_token);
    const byGrant = await connection(tenant, await grant(tenant, {}, { sub: "rotated" }));
    const rotated = await (await call(`/v1/admin/tenants/${tenant.id}/rotate`, { method: "POST", headers: ADMIN })).json<Record<string, any>>();
    expect(rotated.closed_sockets).toBe(2);
    for (const { client } of [byToken, byGrant]) expect(await client.closed).toEqual({ code: 4001, reason: "credentials rotated" });
    const renewed = { ...tenant, notify_token: rotated.notify_token, grant_secret: rotated.grant_secret };
    const back = await upgrade(`/v1/ws?connection_id=${byGrant.id}`, bearer(await grant(renewed, {}, { sub: "rotated" })));
    expect((await back.next(1))[0]).toEqual({ type: "hello", connection_id: byGrant.id, topics: [] });
    expect((await call(`/v1/ws?connection_id=${byToken.id}`, { headers: { Upgrade: "websocket", ...bearer(tenant.notify_token) } })).status).toBe(401);
  });

  it("answers the limiter's re-check: the holder's socket is open, one taken over is not", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, {}, { sub: "rechecked" });
    const { client, id } = await connection(tenant, token);
    const hub = connectionHub(env, tenant.id, id);
    const slots = () =>
      runInDurableObject(hub, (_hub: ConnectionHub, ctx) => ctx.getWebSockets().map((ws) => (ws.deserializeAttachment() as { slot: { id: string } }).slot.id));
    const [first] = await slots();
    expect(await hub.openSocketIds([first, "never-opened"])).toEqual([first]);
    const back = await upgrade(`/v1/ws?connection_id=${id}`, bearer(token));
    await back.next(1);
    await client.closed;
    const second = (await slots()).find((slot) => slot !== first)!;
    expect(await hub.openSocketIds([first, second])).toEqual([second]);
  });
});
