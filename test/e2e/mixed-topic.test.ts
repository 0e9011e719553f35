// One topic with Web Push, FCM and WebSocket subscribers at once, through `npm start`: every
// subscriber gets every message exactly once, on its own transport.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { FcmService } from "../support/fcm-service";
import { PushService } from "../support/push-service";
import { api, mintGrant, startDirector, type Director } from "./director";

let director: Director;
let webPush: PushService;
let fcm: FcmService;
let dir: string;

beforeAll(async () => {
  [webPush, fcm] = await Promise.all([new PushService().start(), new FcmService().start()]);
  dir = mkdtempSync(path.join(tmpdir(), "push-director-fcm-"));
  const fcmVars = path.join(dir, "fcm.env");
  // a later --env-file overrides the generated secrets file and wrangler.toml's [vars]
  writeFileSync(fcmVars, [`FCM_SERVICE_ACCOUNT='${fcm.serviceAccount()}'`, `FCM_API_BASE=${fcm.url}`, `GOOGLE_OAUTH_TOKEN_URL=${fcm.tokenUrl}`].join("\n"));
  director = await startDirector({}, ["--env-file", fcmVars]);
  webPush.vapidPublicKey = director.vars.VAPID_PUBLIC_KEY;
});

afterAll(async () => {
  await Promise.all([director?.stop(), webPush?.stop(), fcm?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

describe("a mixed topic through wrangler dev", () => {
  it("delivers each message once per subscriber over Web Push, FCM and WebSocket", async () => {
    const discovery = await api(director, "/.well-known/webdav-push", "");
    expect(discovery.body.transports.fcm).toEqual({ project_id: fcm.projectId, platforms: ["android", "ios"] });

    const tenant = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "mixed" } })).body;
    const browsers = Array.from({ length: 5 }, () => webPush.addSubscriber());
    const phones = Array.from({ length: 5 }, () => fcm.addToken());
    for (const b of browsers) {
      const r = await api(director, "/v1/subscriptions", tenant.notify_token, {
        json: { topic: "shared", push_services: { web_push: { endpoint: b.endpoint, keys: { p256dh: b.p256dh, auth: b.auth } } } },
      });
      expect(r.status).toBe(201);
    }
    for (const token of phones) {
      const r = await api(director, "/v1/subscriptions", tenant.notify_token, { json: { topic: "shared", push_services: { fcm: { registration_token: token } } } });
      expect(r.status).toBe(201);
    }
    const grant = await mintGrant(tenant, ["shared"], "viewer");
    const sockets = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          new Promise<{ ws: WebSocket; frames: Record<string, any>[] }>((resolve, reject) => {
            const ws = new WebSocket(`${director.url.replace("http:", "ws:")}/v1/ws?topic=shared`, ["webdav-push", `bearer.${grant}`]);
            const frames: Record<string, any>[] = [];
            ws.on("message", (data) => frames.push(JSON.parse(data.toString())));
            ws.once("open", () => resolve({ ws, frames }));
            ws.once("error", reject);
          }),
      ),
    );

    for (const [round, syncToken] of ["m1", "m2"].entries()) {
      const r = await api(director, "/v1/notify", tenant.notify_token, { json: { topic: "shared", content_update: { sync_token: syncToken } } });
      expect(r.status).toBe(202);
      await Promise.all([
        webPush.waitUntil(() => browsers.every((b) => webPush.received(b.id).length === round + 1)),
        fcm.waitUntil(() => phones.every((t) => (fcm.received.get(t) ?? []).length === round + 1)),
      ]);
    }
    for (const b of browsers) expect(webPush.received(b.id).map((m) => /sync-token>(\w+)</.exec(m.xml)![1])).toEqual(["m1", "m2"]);
    for (const t of phones) expect(fcm.received.get(t)!.map((m) => m.data.sync_token)).toEqual(["m1", "m2"]);
    for (const s of sockets) {
      expect(s.frames.filter((f) => f.type === "push").map((f) => [f.seq, f.content_update.sync_token])).toEqual([
        [1, "m1"],
        [2, "m2"],
      ]);
      s.ws.close();
    }
    expect(webPush.errors).toEqual([]);
    expect(fcm.errors).toEqual([]);
  });
});
