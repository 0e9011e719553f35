// One topic with Web Push, FCM (Android and iOS apps), Huawei Push Kit and WebSocket subscribers
// at once, through `npm start`: every subscriber gets every message exactly once, on its own
// transport, and a notify costs one Push Kit request per 50 tokens and one FCM request per token.
import type { IncomingMessage, ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { FcmService } from "../support/fcm-service";
import { HmsService } from "../support/hms-service";
import { PushService } from "../support/push-service";
import { api, mintGrant, startDirector, type Director } from "./director";

const isSend = (req: IncomingMessage) => req.method === "POST" && (req.url ?? "").endsWith("/messages:send");

/** FCM that also counts every messages:send it is asked, whatever it answers (a refused access token too). */
class CountingFcm extends FcmService {
  sends = 0;
  protected handle(req: IncomingMessage, raw: Buffer, res: ServerResponse) {
    if (isSend(req)) this.sends++;
    return super.handle(req, raw, res);
  }
}

/** Push Kit likewise: `requests` holds only the sends that passed its checks, `sends` every one. */
class CountingHms extends HmsService {
  sends = 0;
  protected handle(req: IncomingMessage, raw: Buffer, res: ServerResponse) {
    if (isSend(req)) this.sends++;
    return super.handle(req, raw, res);
  }
}

/** A WebSocket subscriber: the frames it got, and a wait for its n-th push frame. */
interface Socket {
  ws: WebSocket;
  frames: Record<string, any>[];
  pushes: (n: number) => Promise<void>;
}

function connect(url: string, grant: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ["webdav-push", `bearer.${grant}`]);
    const frames: Record<string, any>[] = [];
    const count = () => frames.filter((f) => f.type === "push").length;
    const pushes = (n: number) =>
      new Promise<void>((done) => {
        const check = () => count() >= n && (ws.off("message", check), done());
        ws.on("message", check);
        check();
      });
    // registered before `pushes` adds its listeners, so a frame is kept before it is counted
    ws.on("message", (data) => frames.push(JSON.parse(data.toString())));
    ws.once("open", () => resolve({ ws, frames, pushes }));
    ws.once("error", reject);
  });
}

let director: Director;
let webPush: PushService;
let fcm: CountingFcm;
let hms: CountingHms;

beforeAll(async () => {
  [webPush, fcm, hms] = await Promise.all([new PushService().start(), new CountingFcm().start(), new CountingHms().start()]);
  director = await startDirector({}, [], { vars: { ...fcm.vars(), ...hms.vars() } });
  webPush.vapidPublicKey = director.vars.VAPID_PUBLIC_KEY;
});

afterAll(async () => {
  await Promise.all([director?.stop(), webPush?.stop(), fcm?.stop(), hms?.stop()]);
});

describe("a mixed topic through wrangler dev", () => {
  it("delivers each message once per subscriber over Web Push, FCM (Android, iOS), Push Kit and WebSocket", async () => {
    const discovery = await api(director, "/.well-known/webdav-push", "");
    expect(discovery.body.transports.fcm).toEqual({ project_id: fcm.projectId, platforms: ["android", "ios"] });
    expect(discovery.body.transports.hms).toEqual({ app_id: hms.appId });

    const tenant = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "mixed" } })).body;
    const subscribe = async (push_services: unknown) => {
      const r = await api(director, "/v1/subscriptions", tenant.notify_token, { json: { topic: "shared", push_services } });
      expect(r.status).toBe(201);
    };
    const browsers = Array.from({ length: 5 }, () => webPush.addSubscriber());
    const androids = Array.from({ length: 5 }, () => fcm.addToken());
    const iphones = Array.from({ length: 5 }, () => fcm.addToken());
    // one delivery chunk's worth (TARGETS_PER_JOB): a single Push Kit request each notify
    const huaweis = Array.from({ length: 50 }, () => hms.addToken());
    for (const b of browsers) await subscribe({ web_push: { endpoint: b.endpoint, keys: { p256dh: b.p256dh, auth: b.auth } } });
    for (const token of androids) await subscribe({ fcm: { registration_token: token } });
    for (const token of iphones) await subscribe({ fcm: { registration_token: token, platform: "ios" } });
    for (const token of huaweis) await subscribe({ hms: { token } });
    const grant = await mintGrant(tenant, ["shared"], "viewer");
    const sockets = await Promise.all(Array.from({ length: 5 }, () => connect(`${director.url.replace("http:", "ws:")}/v1/ws?topic=shared`, grant)));
    const phones = [...androids, ...iphones];

    for (const [round, syncToken] of ["m1", "m2"].entries()) {
      const r = await api(director, "/v1/notify", tenant.notify_token, { json: { topic: "shared", content_update: { sync_token: syncToken } } });
      expect(r.status).toBe(202);
      await Promise.all([
        webPush.waitUntil(() => browsers.every((b) => webPush.received(b.id).length === round + 1)),
        fcm.waitUntil(() => phones.every((t) => (fcm.received.get(t) ?? []).length === round + 1)),
        hms.waitUntil(() => huaweis.every((t) => (hms.received.get(t) ?? []).length === round + 1)),
        ...sockets.map((s) => s.pushes(round + 1)),
      ]);
      // what this notify cost: one FCM request per token, one Push Kit request for all 50 tokens
      expect(fcm.sends).toBe(phones.length * (round + 1));
      expect(hms.sends).toBe(round + 1);
      expect(hms.requests).toHaveLength(round + 1);
      expect([...hms.requests[round]].sort()).toEqual([...huaweis].sort());
    }

    for (const b of browsers) expect(webPush.received(b.id).map((m) => /sync-token>(\w+)</.exec(m.xml)![1])).toEqual(["m1", "m2"]);
    for (const t of androids) {
      expect(fcm.received.get(t)!.map((m) => [m.platform, m.data.sync_token])).toEqual([
        ["android", "m1"],
        ["android", "m2"],
      ]);
    }
    for (const t of iphones) {
      const received = fcm.received.get(t)!;
      expect(received.map((m) => [m.platform, m.data.sync_token])).toEqual([
        ["ios", "m1"],
        ["ios", "m2"],
      ]);
      for (const m of received) expect(m.platform === "ios" && m.apns.payload).toEqual({ aps: { "content-available": 1 } });
    }
    for (const t of huaweis) expect(hms.received.get(t)!.map((m) => m.data.sync_token)).toEqual(["m1", "m2"]);
    for (const s of sockets) {
      expect(s.frames.filter((f) => f.type === "push").map((f) => [f.seq, f.content_update.sync_token])).toEqual([
        [1, "m1"],
        [2, "m2"],
      ]);
      s.ws.close();
    }
    expect(webPush.errors).toEqual([]);
    expect(fcm.errors).toEqual([]);
    expect(hms.errors).toEqual([]);
  });
});
