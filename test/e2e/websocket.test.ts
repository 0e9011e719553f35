// WebSockets end to end: 200 clients (the `ws` package) on one topic of `npm start` all receive
// one notify; a reconnect with ?since= replays what was missed.
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

interface Socket {
  ws: WebSocket;
  frames: Record<string, any>[];
  until: (count: number) => Promise<Record<string, any>[]>;
}

function connect(url: string, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ["webdav-push", `bearer.${token}`]);
    const frames: Record<string, any>[] = [];
    const waiters: (() => void)[] = [];
    ws.on("message", (data) => {
      frames.push(JSON.parse(data.toString()));
      for (const w of waiters.splice(0)) w();
    });
    const until = async (count: number) => {
      while (frames.length < count) await new Promise<void>((r) => waiters.push(r));
      return frames;
    };
    ws.once("open", () => resolve({ ws, frames, until }));
    ws.once("error", reject);
  });
}

describe("WebSockets through wrangler dev", () => {
  it("pushes one notify to 200 sockets of a topic, and replays it after a reconnect", async () => {
    const tenant = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "ws" } })).body;
    const wsUrl = `${director.url.replace("http:", "ws:")}/v1/ws?topic=room`;
    const grants = await Promise.all(Array.from({ length: 20 }, (_, i) => mintGrant(tenant, ["room"], `user-${i}`)));
    // 10 sockets per user: under the default per-client limit of 20
    const sockets: Socket[] = [];
    for (let i = 0; i < 200; i += 20) sockets.push(...(await Promise.all(grants.map((g) => connect(wsUrl, g)))));
    await Promise.all(sockets.map((s) => s.until(1)));
    expect(new Set(sockets.map((s) => s.frames[0].connection_id)).size).toBe(200);
    expect(sockets.every((s) => s.frames[0].type === "hello" && s.frames[0].seq === 0)).toBe(true);

    const notified = await api(director, "/v1/notify", tenant.notify_token, { json: { topic: "room", content_update: { sync_token: "v2" } } });
    expect(notified.status).toBe(202);
    const frames = await Promise.all(sockets.map((s) => s.until(2).then((f) => f[1])));
    for (const frame of frames) {
      expect(frame).toMatchObject({ type: "push", seq: 1, topic: "room", content_update: { sync_token: "v2" }, property_update: null });
      expect(frame.xml).toContain("<D:sync-token>v2</D:sync-token>");
    }
    for (const s of sockets) s.ws.close();

    const late = await connect(`${wsUrl}&since=0`, grants[0]);
    expect((await late.until(2)).map((f) => [f.type, f.seq])).toEqual([
      ["hello", 1],
      ["push", 1],
    ]);
    late.ws.close();
  });
});
