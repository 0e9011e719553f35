// The early draft's connection-ID flow end to end through `npm start`, with the `ws` client: one
// socket, three topics attached by the Subscription API, one unsubscribed, other users refused,
// and a reconnect that gets the push it missed first, once.
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

type Frame = Record<string, any>;

interface Socket {
  ws: WebSocket;
  frames: Frame[];
  until: (count: number) => Promise<Frame[]>;
  closed: Promise<number>;
}

/** Opens a socket (the grant in the subprotocol list, as a browser sends it); rejects with the refusal's status. */
function connect(path: string, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${director.url.replace("http:", "ws:")}${path}`, ["webdav-push", `bearer.${token}`]);
    const frames: Frame[] = [];
    const waiters: (() => void)[] = [];
    ws.on("message", (data) => {
      frames.push(JSON.parse(data.toString()));
      for (const w of waiters.splice(0)) w();
    });
    const until = async (count: number) => {
      while (frames.length < count) await new Promise<void>((r) => waiters.push(r));
      return frames;
    };
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.once("open", () => resolve({ ws, frames, until, closed }));
    ws.once("unexpected-response", (_request, response) => reject(new Error(`status ${response.statusCode}`)));
    ws.once("error", reject);
  });
}

const pushes = (socket: Socket) => socket.frames.filter((f) => f.type === "push").map((f) => `${f.topic}/${f.content_update?.sync_token}`);

describe("connections through wrangler dev", () => {
  it("attaches three topics to one socket, detaches one, refuses others, and replays a missed push once", async () => {
    const tenant = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "conn" } })).body;
    const topics = ["cal", "contacts", "tasks"];
    const alice = await mintGrant(tenant, topics, "alice");
    const notify = async (topic: string, syncToken: string) =>
      expect((await api(director, "/v1/notify", tenant.notify_token, { json: { topic, content_update: { sync_token: syncToken } } })).status).toBe(202);

    const socket = await connect("/v1/ws", alice);
    const [hello] = await socket.until(1);
    expect(hello).toEqual({ type: "hello", connection_id: expect.stringMatching(/^[0-9a-f-]{36}$/), topics: [] });
    const id: string = hello.connection_id;

    const locations: Record<string, string> = {};
    for (const topic of topics) {
      const created = await api(director, "/v1/subscriptions", alice, { json: { topic, push_services: { websocket: { connection_id: id } } } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ topic, transport: "websocket" });
      locations[topic] = created.headers.get("Location")!;
      expect(locations[topic]).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/registrations\/[A-Za-z0-9_-]{22}$/);
    }
    for (const topic of topics) await notify(topic, `${topic}-1`);
    await socket.until(4);
    expect(pushes(socket).sort()).toEqual(["cal/cal-1", "contacts/contacts-1", "tasks/tasks-1"]);

    // the early draft's /unsubscribe names the connection; the topic's frames stop at once
    const unsubscribed = await fetch(`${director.url}/unsubscribe`, {
      method: "POST",
      headers: { Authorization: `Bearer ${alice}`, "Content-Type": "application/json" },
      body: JSON.stringify({ topic: "tasks", push_services: { websocket: { connection_id: id } } }),
    });
    expect(unsubscribed.status).toBe(204);
    await notify("tasks", "tasks-2");
    await notify("cal", "cal-2");
    await socket.until(5);
    expect(pushes(socket).at(-1)).toBe("cal/cal-2");

    // another user's grant cannot attach to it nor take it over; an unknown id is a 404
    const bob = await mintGrant(tenant, topics, "bob");
    const attachByBob = await api(director, "/v1/subscriptions", bob, { json: { topic: "cal", push_services: { websocket: { connection_id: id } } } });
    expect([attachByBob.status, attachByBob.body.error.code]).toEqual([403, "connection_not_yours"]);
    const unknown = await api(director, "/v1/subscriptions", alice, { json: { topic: "cal", push_services: { websocket: { connection_id: crypto.randomUUID() } } } });
    expect(unknown.status).toBe(404);
    await expect(connect(`/v1/ws?connection_id=${id}`, bob)).rejects.toThrow("status 403");
    await expect(connect(`/v1/ws?connection_id=${crypto.randomUUID()}`, alice)).rejects.toThrow("status 404");

    // closed: the push it misses is kept; the reconnect gets it right after hello, once
    socket.ws.close();
    await socket.closed;
    await notify("contacts", "contacts-missed");
    const back = await connect(`/v1/ws?connection_id=${id}`, await mintGrant(tenant, topics, "alice"));
    const [again, missed] = await back.until(2);
    expect(again).toEqual({ type: "hello", connection_id: id, topics: ["cal", "contacts"] });
    expect(missed).toMatchObject({ type: "push", topic: "contacts", content_update: { sync_token: "contacts-missed" } });
    await notify("cal", "cal-live");
    await back.until(3);
    expect(pushes(back)).toEqual(["contacts/contacts-missed", "cal/cal-live"]);
    expect(pushes(socket)).not.toContain("contacts/contacts-missed");
    back.ws.close();
  });
});
