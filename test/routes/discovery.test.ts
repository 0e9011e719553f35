import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { call } from "../helpers";

describe("GET /.well-known/webdav-push", () => {
  it("tells version, transports with the VAPID public key, endpoints and limits", async () => {
    const response = await call("/.well-known/webdav-push");
    expect(response.status).toBe(200);
    const body = await response.json<Record<string, any>>();
    expect(body.version).toBe("draft-bitfire-webdav-push-00");
    expect(body.transports.web_push).toEqual({ vapid_public_key: env.VAPID_PUBLIC_KEY, content_encodings: ["aes128gcm"] });
    // iOS apps too, through FCM's apns block
    expect(body.transports.fcm).toEqual({ project_id: "push-director-test", platforms: ["android", "ios"] });
    const unconfigured = await (await app.fetch(new Request("https://director.test/.well-known/webdav-push"), { ...env, FCM_SERVICE_ACCOUNT: "" })).json<any>();
    expect(unconfigured.transports.fcm).toBeUndefined();
    expect(body.transports.websocket).toMatchObject({ url: "wss://director.test/v1/ws", subprotocol: "webdav-push", replay: { max_messages: 5 } });
    expect(body.endpoints.subscriptions).toBe("https://director.test/v1/subscriptions");
    expect(body.limits).toMatchObject({ max_registration_seconds: 604_800, notify_batch_max: 100 });
  });

  it("tells the default quotas and the frame limits (wrangler.toml's [vars], or an operator's)", async () => {
    const body = await (await call("/.well-known/webdav-push")).json<Record<string, any>>();
    expect(body.limits.default_quotas).toEqual({
      registrations: 100_000,
      registrations_per_user: 1_000,
      notify_per_minute: 6_000,
      sockets: 10_000,
      sockets_per_user: 100,
    });
    expect(body.limits).toMatchObject({ ws_frame_burst: 20, ws_frames_per_second: 1 });
    const operator = { ...env, USER_MAX_REGISTRATIONS: "7", TENANT_NOTIFY_PER_MINUTE: "0", WS_FRAME_BURST: "5" };
    const changed = await (await app.fetch(new Request("https://director.test/.well-known/webdav-push"), operator)).json<any>();
    // a notify limit of 0 would refuse every notify forever: the default stands
    expect(changed.limits.default_quotas).toMatchObject({ registrations_per_user: 7, notify_per_minute: 6_000 });
    expect(changed.limits.ws_frame_burst).toBe(5);
  });

  it("says how each API authenticates, what unified_push takes, and the push services in order of preference", async () => {
    const body = await (await call("/.well-known/webdav-push")).json<Record<string, any>>();
    const client = { scheme: "Bearer", credentials: ["grant", "notify_token"] };
    expect(body.auth).toEqual({
      notify: { scheme: "Bearer", credentials: ["notify_token"] },
      subscriptions: client,
      register: client,
      registrations: { ...client, delete: { credentials: [] } },
      websocket: client,
      admin: { scheme: "Bearer", credentials: ["admin_token"] },
    });
    expect(body.transports.unified_push).toEqual({ vapid_public_key: env.VAPID_PUBLIC_KEY, content_encodings: ["aes128gcm"], unencrypted: true });
    expect(body.push_service_preference).toEqual(["web_push", "unified_push", "fcm", "websocket"]);
    expect(body.endpoints).toMatchObject({
      unsubscribe: "https://director.test/v1/unsubscribe",
      early_draft: { notify: "https://director.test/notify", subscribe: "https://director.test/subscribe", unsubscribe: "https://director.test/unsubscribe" },
    });

    const discover = async (over: Partial<Env>) =>
      (await app.fetch(new Request("https://director.test/.well-known/webdav-push"), { ...env, ...over })).json<Record<string, any>>();
    const strict = await discover({ REQUIRE_ENCRYPTION: "true", PUSH_SERVICE_PREFERENCE: "websocket, unified_push" });
    expect(strict.transports.unified_push.unencrypted).toBe(false);
    // listed names first, the others after in the default order
    expect(strict.push_service_preference).toEqual(["websocket", "unified_push", "web_push", "fcm"]);
    // fcm appears nowhere unless configured
    const noFcm = await discover({ FCM_SERVICE_ACCOUNT: "", PUSH_SERVICE_PREFERENCE: "fcm,web_push,carrier_pigeon" });
    expect(noFcm.push_service_preference).toEqual(["web_push", "unified_push", "websocket"]);
    expect(JSON.stringify(noFcm)).not.toMatch(/fcm/);
  });

  it("answers unknown routes with a JSON 404", async () => {
    const response = await call("/v2/nothing");
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: "not_found", message: "no route for GET /v2/nothing" } });
  });
});
