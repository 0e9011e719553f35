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
    expect(body.transports.fcm).toEqual({ project_id: "push-director-test" });
    const unconfigured = await (await app.fetch(new Request("https://director.test/.well-known/webdav-push"), { ...env, FCM_SERVICE_ACCOUNT: "" })).json<any>();
    expect(unconfigured.transports.fcm).toBeUndefined();
    expect(body.transports.websocket).toMatchObject({ url: "wss://director.test/v1/ws", subprotocol: "webdav-push", replay: { max_messages: 5 } });
    expect(body.endpoints.subscriptions).toBe("https://director.test/v1/subscriptions");
    expect(body.limits).toMatchObject({ max_registration_seconds: 604_800, notify_batch_max: 100 });
  });

  it("answers unknown routes with a JSON 404", async () => {
    const response = await call("/v2/nothing");
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: "not_found", message: "no route for GET /v2/nothing" } });
  });
});
