import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { connectionHub, hubConnectUrl, topicHub } from "../../src/hub/topic-hub";
import { tenantLimiter } from "../../src/limits/tenant-limiter";
import { ADMIN, bearer, call, createTenant, grant, webPushBody, type TestTenant } from "../helpers";
import { Client, open, upgrade } from "../socket-client";

/** Sets the tenant's socket limits by the admin API (the other limits: their defaults). */
async function setSocketLimits(tenant: TestTenant, limits: { sockets?: number; sockets_per_user?: number }) {
  const json = { registrations: null, registrations_per_user: null, notify_per_minute: null, sockets: null, sockets_per_user: null, ...limits };
  const response = await call(`/v1/admin/tenants/${tenant.id}/limits`, { method: "PUT", headers: ADMIN, json });
  expect(response.status).toBe(200);
}

let users = 0;
/** Connects with `token`, or with a grant for a new user (the socket limit is per user). */
async function connect(tenant: TestTenant, topic: string, query = "", token?: string): Promise<Client> {
  token ??= await grant(tenant, { topics: [topic] }, { sub: `user-${++users}` });
  const response = await open(`/v1/ws?topic=${encodeURIComponent(topic)}${query}`, bearer(token));
  if (response.status !== 101) throw new Error(`upgrade answered ${response.status}: ${await response.text()}`);
  return new Client(response.webSocket!);
}

const hub = (tenant: TestTenant, topic: string) => topicHub(env, tenant.id, topic);

async function notify(tenant: TestTenant, topic: string, syncToken: string) {
  const response = await call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: { topic, content_update: { sync_token: syncToken } } });
  expect(response.status).toBe(202);
  await runDurableObjectAlarm(hub(tenant, topic));
}

describe("GET /v1/ws", () => {
  it("greets with hello, then pushes each flushed change as a frame with the draft's XML", async () => {
    const tenant = await createTenant();
    const client = await connect(tenant, "cal");
    const [hello] = await client.next(1);
    expect(hello).toEqual({ type: "hello", connection_id: expect.stringMatching(/^[0-9a-f-]{36}$/), topic: "cal", seq: 0 });

    await notify(tenant, "cal", "sync-1");
    const [, push] = await client.next(2);
    expect(push).toEqual({
      type: "push",
      seq: 1,
      topic: "cal",
      content_update: { sync_token: "sync-1" },
      property_update: null,
      xml:
        '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:"><topic>cal</topic>' +
        "<content-update><D:sync-token>sync-1</D:sync-token></content-update></push-message>",
    });
    const other = await connect(tenant, "cal");
    expect((await other.next(1))[0].connection_id).not.toBe(hello.connection_id);
  });

  it("answers ping with pong and any other client frame with an error frame", async () => {
    const tenant = await createTenant();
    const client = await connect(tenant, "t");
    await client.next(1);
    client.ws.send("ping");
    expect((await client.messages(2))[1]).toBe("pong");
    client.ws.send('{"type":"subscribe"}');
    const frames = await client.next(2);
    expect(frames[1]).toMatchObject({ type: "error", code: "unexpected_frame" });
  });

  it("replays what a reconnecting client missed, or tells it to reset", async () => {
    const tenant = await createTenant();
    // a topic keeps a replay log once it has held a socket (a client that knows a seq had one)
    const first = await connect(tenant, "r");
    await first.next(1);
    for (let i = 1; i <= 7; i++) await notify(tenant, "r", `s${i}`);
    // the log keeps the newest 5 (WS_REPLAY_SIZE in the test config): seq 3..7
    const caughtUp = await connect(tenant, "r", "&since=2");
    const frames = await caughtUp.next(6);
    expect(frames[0]).toMatchObject({ type: "hello", seq: 7 });
    expect(frames.slice(1).map((f) => [f.type, f.seq, f.content_update.sync_token])).toEqual([3, 4, 5, 6, 7].map((n) => ["push", n, `s${n}`]));

    for (const since of [0, 1, 8]) {
      const behind = await connect(tenant, "r", `&since=${since}`);
      expect(await behind.next(2)).toEqual([expect.objectContaining({ type: "hello", seq: 7 }), { type: "reset", seq: 7 }]);
    }
    const current = await connect(tenant, "r", "&since=7");
    await current.next(1);
    await notify(tenant, "r", "s8");
    expect((await current.next(2))[1]).toMatchObject({ type: "push", seq: 8 });
  });

  it("keeps no replay log for a topic that never held a socket: a ?since= there is told to reset", async () => {
    const tenant = await createTenant();
    for (let i = 1; i <= 3; i++) await notify(tenant, "web-push-only", `s${i}`);
    expect(await runInDurableObject(hub(tenant, "web-push-only"), async (_instance, ctx) => (await ctx.storage.list({ prefix: "log:" })).size)).toBe(0);
    const late = await connect(tenant, "web-push-only", "&since=1");
    expect(await late.next(2)).toEqual([expect.objectContaining({ type: "hello", seq: 3 }), { type: "reset", seq: 3 }]);
  });

  it("keeps sockets and the replay log across hibernation and eviction", async () => {
    const tenant = await createTenant();
    const client = await connect(tenant, "h");
    await client.next(1);
    await notify(tenant, "h", "before");
    await client.next(2);
    await evictDurableObject(hub(tenant, "h"), { webSockets: "hibernate" });
    await notify(tenant, "h", "after");
    expect((await client.next(3))[2]).toMatchObject({ type: "push", seq: 2, content_update: { sync_token: "after" } });
    const late = await connect(tenant, "h", "&since=0");
    expect((await late.next(3)).map((f) => f.seq)).toEqual([2, 1, 2]);
  });

  it("takes the grant from the subprotocol list or the query, and answers with the subprotocol", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, { topics: ["p"] });
    const viaProtocol = await open("/v1/ws?topic=p", { "Sec-WebSocket-Protocol": `webdav-push, bearer.${token}` });
    expect(viaProtocol.status).toBe(101);
    expect(viaProtocol.headers.get("Sec-WebSocket-Protocol")).toBe("webdav-push");
    const viaQuery = await open(`/v1/ws?topic=p&access_token=${token}`);
    expect(viaQuery.status).toBe(101);
    expect(viaQuery.headers.get("Sec-WebSocket-Protocol")).toBeNull();
    const viaTenantToken = await open("/v1/ws?topic=p", bearer(tenant.notify_token));
    expect(viaTenantToken.status).toBe(101);
  });

  it("refuses what it must with a JSON 4xx before upgrading", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, { topics: ["a"] });
    const cases: [Promise<Response>, number, string][] = [
      [call("/v1/ws?topic=a", { headers: bearer(token) }), 426, "upgrade_required"],
      [open("/v1/ws?topic=a"), 401, "unauthorized"],
      [open("/v1/ws?topic=a", bearer("not-a-grant")), 401, "invalid_grant"],
      [open("/v1/ws?topic=a", bearer(await grant(tenant, { topics: ["a"] }, { secret: "wrong" }))), 401, "invalid_grant"],
      [open("/v1/ws?topic=b", bearer(token)), 403, "topic_not_granted"],
      [open("/v1/ws?since=1", bearer(token)), 400, "invalid_request"],
      [open(`/v1/ws?topic=a&connection_id=${crypto.randomUUID()}`, bearer(token)), 400, "invalid_request"],
      [open("/v1/ws?topic=a&since=-1", bearer(token)), 400, "invalid_request"],
      [open("/v1/ws?topic=a", { "Sec-WebSocket-Protocol": `chat, bearer.${token}` }), 400, "invalid_request"],
    ];
    for (const [pending, status, code] of cases) {
      const response = await pending;
      expect(response.status, code).toBe(status);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
    }
  });

  it("caps the notify token's sockets on one topic (WS_MAX_SOCKETS_PER_CLIENT, 3 here), not a user's", async () => {
    const tenant = await createTenant();
    for (let i = 0; i < 3; i++) expect((await open("/v1/ws?topic=l", bearer(tenant.notify_token))).status).toBe(101);
    const fourth = await open("/v1/ws?topic=l", bearer(tenant.notify_token));
    expect(fourth.status).toBe(429);
    expect(fourth.webSocket).toBeNull();
    expect(await fourth.json()).toEqual({
      error: {
        code: "quota_exceeded",
        message: "the notify token holds 3 sockets on a topic at most (users' sockets are counted per user, across topics)",
        limit: "notify_token_sockets_per_topic",
        max: 3,
      },
    });
    // another topic, and a connection, are not that topic's
    expect((await open("/v1/ws?topic=l2", bearer(tenant.notify_token))).status).toBe(101);
    expect((await open("/v1/ws", bearer(tenant.notify_token))).status).toBe(101);
    // a user's sockets count per user across topics (USER_MAX_SOCKETS, 100 by default): five on one topic open
    const token = await grant(tenant, { topics: ["l"] }, { sub: "carol" });
    for (let i = 0; i < 5; i++) expect((await open("/v1/ws?topic=l", bearer(token))).status).toBe(101);
  });

  it("closes a socket with 4001 when its grant expires", async () => {
    const tenant = await createTenant();
    const client = await connect(tenant, "x", "", await grant(tenant, { topics: ["x"] }, { expiresIn: Math.floor(Date.now() / 1000) + 2 }));
    await client.next(1);
    expect(await client.closed).toEqual({ code: 4001, reason: "client grant expired" });
  });

  it("closes a disabled tenant's sockets with 4003", async () => {
    const tenant = await createTenant();
    const [a, b] = [await connect(tenant, "d1"), await connect(tenant, "d2")];
    await Promise.all([a.next(1), b.next(1)]);
    const disabled = await call(`/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN });
    expect(await disabled.json()).toMatchObject({ disabled: true, closed_sockets: 2 });
    expect(await a.closed).toEqual({ code: 4003, reason: "tenant disabled" });
    expect(await b.closed).toEqual({ code: 4003, reason: "tenant disabled" });
    expect((await open("/v1/ws?topic=d1", bearer(await grant(tenant, { topics: ["d1"] })))).status).toBe(403);
  });

  it("closes the sockets opened with rotated credentials (4001) before the rotation answers; new ones hear pushes", async () => {
    const tenant = await createTenant();
    const byToken = await connect(tenant, "rot", "", tenant.notify_token);
    const byGrant = await connect(tenant, "rot");
    const elsewhere = await connect(tenant, "rot-2");
    await Promise.all([byToken.next(1), byGrant.next(1), elsewhere.next(1)]);
    const rotated = await (await call(`/v1/admin/tenants/${tenant.id}/rotate`, { method: "POST", headers: ADMIN })).json<Record<string, any>>();
    expect(rotated.closed_sockets).toBe(3);
    for (const client of [byToken, byGrant, elsewhere]) expect(await client.closed).toEqual({ code: 4001, reason: "credentials rotated" });
    // the old credentials no longer open a socket; the new ones do, and hear the next push
    expect((await open("/v1/ws?topic=rot", bearer(tenant.notify_token))).status).toBe(401);
    const renewed = { ...tenant, notify_token: rotated.notify_token, grant_secret: rotated.grant_secret };
    const fresh = await connect(renewed, "rot");
    await fresh.next(1);
    await notify(renewed, "rot", "after-rotation");
    expect((await fresh.next(2))[1]).toMatchObject({ type: "push", content_update: { sync_token: "after-rotation" } });
  });

  it("rotating only the notify token leaves grant sockets open", async () => {
    const tenant = await createTenant();
    const byToken = await connect(tenant, "half", "", tenant.notify_token);
    const byGrant = await connect(tenant, "half");
    await Promise.all([byToken.next(1), byGrant.next(1)]);
    const response = await call(`/v1/admin/tenants/${tenant.id}/rotate`, { method: "POST", headers: ADMIN, json: { grant_secret: false } });
    expect(await response.json()).toMatchObject({ closed_sockets: 1 });
    expect(await byToken.closed).toEqual({ code: 4001, reason: "credentials rotated" });
    byGrant.ws.send("ping");
    expect((await byGrant.messages(2))[1]).toBe("pong");
  });

  it("refuses a handshake whose credential was revoked between authorisation and accept", async () => {
    const tenant = await createTenant();
    const stub = hub(tenant, "race");
    // the Worker authorised this socket with the old notify token; then the rotation ran
    const url = hubConnectUrl({
      tenantId: tenant.id,
      topic: "race",
      owner: null,
      expiresAt: null,
      credential: "cred:notify:stale",
      protocol: null,
      since: null,
      socket: crypto.randomUUID(),
      limits: { sockets: 10, sockets_per_user: 10 },
    });
    const response = await stub.fetch(url, { headers: { Upgrade: "websocket" } });
    expect(response.status).toBe(401);
    expect(response.webSocket).toBeNull();
    // refused before a slot was taken
    expect(await tenantLimiter(env, tenant.id).openSockets()).toBe(0);
  });

  it("closes a grant-key socket (4001) when its key is removed", async () => {
    const tenant = await createTenant();
    const { publicKey, privateKey } = await generateKeyPair("EdDSA", { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: "device-key" };
    await call(`/v1/admin/tenants/${tenant.id}/grant-keys`, { method: "PUT", headers: ADMIN, json: { keys: [jwk] } });
    const token = await new SignJWT({ topics: ["k"] })
      .setProtectedHeader({ alg: "EdDSA", kid: "device-key" })
      .setIssuer(tenant.id)
      .setSubject("eve")
      .setExpirationTime("10m")
      .sign(privateKey);
    const client = await connect(tenant, "k", "", token);
    const hmac = await connect(tenant, "k");
    await Promise.all([client.next(1), hmac.next(1)]);
    const cleared = await call(`/v1/admin/tenants/${tenant.id}/grant-keys`, { method: "PUT", headers: ADMIN, json: { keys: [] } });
    expect(await cleared.json()).toMatchObject({ closed_sockets: 1 });
    expect(await client.closed).toEqual({ code: 4001, reason: "grant key removed" });
    hmac.ws.send("ping");
    expect((await hmac.messages(2))[1]).toBe("pong");
  });

  it("keeps topics and users byte-exact: spaces at the ends reach the hub, and disable closes that socket", async () => {
    const tenant = await createTenant();
    const topic = " d-padded ";
    const client = await connect(tenant, topic, "", await grant(tenant, { topics: [topic] }, { sub: " spaced user " }));
    expect((await client.next(1))[0]).toMatchObject({ type: "hello", topic });
    const stored = await env.DB.prepare("SELECT topic FROM websocket_topics WHERE tenant_id = ?").bind(tenant.id).all<{ topic: string }>();
    expect(stored.results.map((r) => r.topic)).toEqual([topic]);
    await notify(tenant, topic, "padded");
    expect((await client.next(2))[1]).toMatchObject({ topic, content_update: { sync_token: "padded" } });
    const disabled = await call(`/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN });
    expect(await disabled.json()).toMatchObject({ closed_sockets: 1 });
    expect(await client.closed).toEqual({ code: 4003, reason: "tenant disabled" });
  });

  it("takes no notify token from the URL, and answers a hostile grant with 401, never 5xx", async () => {
    const tenant = await createTenant();
    const inQuery = await open(`/v1/ws?topic=q&access_token=${tenant.notify_token}`);
    expect(inQuery.status).toBe(401);
    expect(await inQuery.json()).toMatchObject({ error: { code: "token_in_query" } });
    const now = Math.floor(Date.now() / 1000);
    // signed with the right secret: only the claims are hostile
    const hs256 = (claims: Record<string, unknown>) =>
      new SignJWT({ iss: tenant.id, sub: "mallory", topics: ["q"], exp: now + 600, ...claims })
        .setProtectedHeader({ alg: "HS256" })
        .sign(new TextEncoder().encode(tenant.grant_secret));
    const hostile = [
      await hs256({ exp: 1e13 }),
      await hs256({ exp: 1e308 }),
      await hs256({ exp: 9_999_999_999 }),
      await hs256({ iat: now + 10 * 365 * 86_400 }),
      await hs256({ sub: "line\r\nbreak" }),
      await hs256({ sub: "nul\u0000" }),
      await hs256({ sub: "x".repeat(257) }),
      await hs256({ topics: ["q\u0085"] }),
    ];
    for (const token of hostile) {
      const response = await open("/v1/ws?topic=q", bearer(token));
      expect(response.status).toBe(401);
    }
    // none of them holds a socket slot: a user limited to 3 still opens 3
    await setSocketLimits(tenant, { sockets_per_user: 3 });
    for (let i = 0; i < 3; i++) expect((await open("/v1/ws?topic=q", bearer(await grant(tenant, { topics: ["q"] }, { sub: "line" })))).status).toBe(101);
    expect(await tenantLimiter(env, tenant.id).openSockets()).toBe(3);
  });
});

describe("GET /v1/ws without a topic (the early draft's connection-ID flow)", () => {
  const helloOf = async (client: Client) => (await client.next(1))[0];

  it("opens a connection with a grant or the notify token, greeting with its id and no topics", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, {}, { sub: "conn-hello" });
    const viaHeader = await open("/v1/ws", bearer(token));
    expect(viaHeader.status).toBe(101);
    const hello = await helloOf(new Client(viaHeader.webSocket!));
    expect(hello).toEqual({ type: "hello", connection_id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/), topics: [] });
    const viaProtocol = await open("/v1/ws", { "Sec-WebSocket-Protocol": `webdav-push, bearer.${token}` });
    expect(viaProtocol.headers.get("Sec-WebSocket-Protocol")).toBe("webdav-push");
    const viaQuery = await open(`/v1/ws?access_token=${token}`);
    const viaTenant = await open("/v1/ws", bearer(tenant.notify_token));
    const ids = await Promise.all([viaProtocol, viaQuery, viaTenant].map(async (r) => (await helloOf(new Client(r.webSocket!))).connection_id));
    expect(new Set([hello.connection_id, ...ids]).size).toBe(4);

    const inQuery = await open(`/v1/ws?access_token=${tenant.notify_token}`);
    expect(inQuery.status).toBe(401);
    expect(await inQuery.json()).toMatchObject({ error: { code: "token_in_query" } });
    expect((await open("/v1/ws")).status).toBe(401);
  });

  it("reconnects the same principal only: 403 connection_not_yours for another, 404 for anything unknown", async () => {
    const tenant = await createTenant();
    const alice = await grant(tenant, {}, { sub: "alice" });
    const aliceConnection = await upgrade("/v1/ws", bearer(alice));
    const aliceId = (await helloOf(aliceConnection)).connection_id;
    const tenantConnection = await upgrade("/v1/ws", bearer(tenant.notify_token));
    const tenantId = (await helloOf(tenantConnection)).connection_id;
    const topicSocket = await upgrade("/v1/ws?topic=t", bearer(tenant.notify_token));
    const topicSocketId = (await helloOf(topicSocket)).connection_id;
    const other = await createTenant();

    const cases: [Promise<Response>, number, string][] = [
      [open(`/v1/ws?connection_id=${aliceId}`, bearer(await grant(tenant, {}, { sub: "bob" }))), 403, "connection_not_yours"],
      [open(`/v1/ws?connection_id=${aliceId}`, bearer(tenant.notify_token)), 403, "connection_not_yours"],
      [open(`/v1/ws?connection_id=${tenantId}`, bearer(alice)), 403, "connection_not_yours"],
      [open(`/v1/ws?connection_id=${crypto.randomUUID()}`, bearer(alice)), 404, "not_found"],
      [open(`/v1/ws?connection_id=${topicSocketId}`, bearer(alice)), 404, "not_found"],
      [open(`/v1/ws?connection_id=${topicSocketId}`, bearer(tenant.notify_token)), 404, "not_found"],
      [open(`/v1/ws?connection_id=${aliceId}`, bearer(await grant(other, {}, { sub: "alice" }))), 404, "not_found"],
      [open("/v1/ws?connection_id=", bearer(alice)), 404, "not_found"],
      [open("/v1/ws?connection_id=not%20a%20uuid%0A", bearer(alice)), 404, "not_found"],
      [open(`/v1/ws?connection_id=${"f".repeat(10_000)}`, bearer(alice)), 404, "not_found"],
    ];
    for (const [pending, status, code] of cases) {
      const response = await pending;
      expect(response.status, code).toBe(status);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    // a refusal changes nothing: the holder keeps its socket
    aliceConnection.ws.send("ping");
    expect((await aliceConnection.messages(2))[1]).toBe("pong");
  });

  /** `POST /v1/subscriptions` naming the connection; answers status and body. */
  const subscribe = async (token: string, topic: string, connectionId: string, extra: Record<string, unknown> = {}) => {
    const response = await call("/v1/subscriptions", {
      method: "POST",
      headers: bearer(token),
      json: { topic, push_services: { websocket: { connection_id: connectionId } }, ...extra },
    });
    return { status: response.status, location: response.headers.get("Location"), body: await response.json<Record<string, any>>() };
  };
  const registrationsOf = async (connectionId: string) =>
    (
      await env.DB.prepare(
        "SELECT r.topic FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id WHERE s.transport = 'websocket' AND s.identifier = ? ORDER BY r.topic",
      )
        .bind(connectionId)
        .all<{ topic: string }>()
    ).results.map((row) => row.topic);

  it("attaches topics by POST /v1/subscriptions with push_services.websocket; DELETE detaches at once", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, { topics: ["s1", "s2"] }, { sub: "subscriber" });
    const client = await upgrade("/v1/ws", bearer(token));
    const id = (await helloOf(client)).connection_id;
    const first = await subscribe(token, "s1", id);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ topic: "s1", transport: "websocket" });
    expect((await subscribe(token, "s2", id)).status).toBe(201);
    expect(await registrationsOf(id)).toEqual(["s1", "s2"]);

    await notify(tenant, "s1", "one");
    await notify(tenant, "s2", "two");
    await client.next(3);
    expect(client.frames.slice(1).map((f) => [f.topic, f.content_update.sync_token])).toEqual([["s1", "one"], ["s2", "two"]]);

    expect((await call(new URL(first.location!).pathname, { method: "DELETE", headers: bearer(token) })).status).toBe(204);
    await notify(tenant, "s1", "after-delete");
    await notify(tenant, "s2", "marker");
    await client.next(4);
    expect(client.frames[3]).toMatchObject({ topic: "s2", content_update: { sync_token: "marker" } });
    // the tenant's token may attach its user's connection; another user's grant may not; unknown ids are 404
    expect((await subscribe(tenant.notify_token, "s3", id)).status).toBe(201);
    const other = await subscribe(await grant(tenant, { topics: ["s1"] }, { sub: "intruder" }), "s1", id);
    expect([other.status, other.body.error.code]).toEqual([403, "connection_not_yours"]);
    for (const unknown of [crypto.randomUUID(), "nope"]) expect((await subscribe(token, "s1", unknown)).status).toBe(404);
    expect(await registrationsOf(id)).toEqual(["s2", "s3"]);
    await client.close();
    const reconnected = await upgrade(`/v1/ws?connection_id=${id}`, bearer(token));
    expect(await helloOf(reconnected)).toEqual({ type: "hello", connection_id: id, topics: ["s2", "s3"] });
  });

  it("deletes a connection's registrations when its grace ends, and at once when the tenant is disabled", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, { topics: ["g"] }, { sub: "graceful" });
    const leaving = await upgrade("/v1/ws", bearer(token));
    const leavingId = (await helloOf(leaving)).connection_id;
    const staying = await upgrade("/v1/ws", bearer(tenant.notify_token));
    const stayingId = (await helloOf(staying)).connection_id;
    const web = await call("/v1/subscriptions", { method: "POST", headers: bearer(token), json: await webPushBody("g") });
    expect(web.status).toBe(201);
    for (const id of [leavingId, stayingId]) expect((await subscribe(tenant.notify_token, "g", id)).status).toBe(201);

    await leaving.close();
    expect(await registrationsOf(leavingId)).toEqual(["g"]);
    expect(await runDurableObjectAlarm(connectionHub(env, tenant.id, leavingId))).toBe(true);
    expect(await registrationsOf(leavingId)).toEqual([]);
    expect(await env.DB.prepare("SELECT 1 FROM subscriptions WHERE transport = 'websocket' AND identifier = ?").bind(leavingId).first()).toBeNull();
    // another subscription of the user, and another connection, keep theirs
    expect(await registrationsOf(stayingId)).toEqual(["g"]);
    const kept = await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE tenant_id = ? AND topic = 'g'").bind(tenant.id).first<{ n: number }>();
    expect(kept!.n).toBe(2);
    expect((await open(`/v1/ws?connection_id=${leavingId}`, bearer(token))).status).toBe(404);

    expect((await call(`/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN })).status).toBe(200);
    expect(await staying.closed).toEqual({ code: 4003, reason: "tenant disabled" });
    expect(await registrationsOf(stayingId)).toEqual([]);
  });

  it("hands the connection to a second socket of its owner; the first closes with 4002", async () => {
    const tenant = await createTenant();
    const first = await upgrade("/v1/ws", bearer(tenant.notify_token));
    const id = (await helloOf(first)).connection_id;
    const second = await upgrade(`/v1/ws?connection_id=${id}`, bearer(tenant.notify_token));
    expect(await helloOf(second)).toEqual({ type: "hello", connection_id: id, topics: [] });
    expect(await first.closed).toEqual({ code: 4002, reason: "another socket took over this connection" });
    second.ws.send("subscribe me");
    expect((await second.next(2))[1]).toMatchObject({ type: "error", code: "unexpected_frame" });
  });
});
