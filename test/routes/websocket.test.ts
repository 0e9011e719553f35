import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { ADMIN, bearer, call, createTenant, grant, ORIGIN, type TestTenant } from "../helpers";

type Frame = Record<string, any>;

/** A connected test client: every frame it got, and promises for the next ones and the close. */
class Client {
  readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly raw: string[] = [];

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (event) => {
      const data = event.data as string;
      this.raw.push(data);
      if (data.startsWith("{")) this.frames.push(JSON.parse(data));
      for (const waiter of this.waiters.splice(0)) waiter();
    });
    this.closed = new Promise((resolve) => ws.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason })));
  }

  /** Resolves once `count` messages have arrived. */
  async messages(count: number): Promise<string[]> {
    while (this.raw.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.raw;
  }

  async next(count: number): Promise<Frame[]> {
    while (this.frames.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.frames;
  }
}

async function open(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${ORIGIN}${path}`, { headers: { Upgrade: "websocket", ...headers } }));
}

let users = 0;
/** Connects with `token`, or with a grant for a new user (the per-client limit is per user). */
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
      [open("/v1/ws", bearer(token)), 400, "invalid_request"],
      [open("/v1/ws?topic=a&since=-1", bearer(token)), 400, "invalid_request"],
      [open("/v1/ws?topic=a", { "Sec-WebSocket-Protocol": `chat, bearer.${token}` }), 400, "invalid_request"],
    ];
    for (const [pending, status, code] of cases) {
      const response = await pending;
      expect(response.status, code).toBe(status);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
    }
  });

  it("limits sockets per client on a topic", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, { topics: ["l"] }, { sub: "carol" });
    for (let i = 0; i < 3; i++) expect((await open("/v1/ws?topic=l", bearer(token))).status).toBe(101);
    const fourth = await open("/v1/ws?topic=l", bearer(token));
    expect(fourth.status).toBe(429);
    expect(await fourth.json()).toMatchObject({ error: { code: "too_many_sockets" } });
    expect((await open("/v1/ws?topic=l", bearer(await grant(tenant, { topics: ["l"] }, { sub: "dave" })))).status).toBe(101);
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
});
