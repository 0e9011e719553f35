// FCM HTTP v1 through the real queues to the OAuth + FCM stand-in, which verifies the service
// account's JWT assertion and checks every message.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { fcmMessage, fcmOutcome, fcmTransport, MAX_APNS_PAYLOAD_BYTES, MAX_DATA_BYTES, serviceAccountOf } from "../../src/transports/fcm";
import { topicHeader } from "../../src/transports/web-push";
import { bearer, call, createTenant, fcmService, pushService, registerSubscriber, type TestTenant } from "../helpers";

async function registerToken(tenant: TestTenant, topic: string, token: string, platform?: string): Promise<number> {
  const fcm = platform === undefined ? { registration_token: token } : { registration_token: token, platform };
  const response = await call("/v1/subscriptions", { method: "POST", headers: bearer(tenant.notify_token), json: { topic, push_services: { fcm } } });
  expect(response.status).toBe(201);
  const { id } = await response.json<{ id: string }>();
  return (await env.DB.prepare("SELECT subscription_id FROM registrations WHERE id = ?").bind(id).first<{ subscription_id: number }>())!.subscription_id;
}

async function notifyAndFlush(tenant: TestTenant, topic: string, body: Record<string, unknown>) {
  expect((await call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: { topic, ...body } })).status).toBe(202);
  await runDurableObjectAlarm(topicHub(env, tenant.id, topic));
}

const subscription = (id: number) => env.DB.prepare("SELECT * FROM subscriptions WHERE id = ?").bind(id).first<Record<string, unknown>>();

describe("FCM HTTP v1", () => {
  it("sends a data message per token and acts on each answer", async () => {
    const tenant = await createTenant();
    const tokens = {
      ok: await fcmService.token("accept"),
      unregistered: await fcmService.token("unregistered"),
      invalid: await fcmService.token("invalid"),
      flaky: await fcmService.token("unavailable-once"),
      mismatch: await fcmService.token("sender-mismatch"),
    };
    const ids: Record<string, number> = {};
    for (const [name, token] of Object.entries(tokens)) ids[name] = await registerToken(tenant, "cal", token);
    await notifyAndFlush(tenant, "cal", { content_update: { sync_token: "s-7" }, urgency: "high", ttl: 600 });

    await vi.waitFor(
      async () => {
        const { received } = await fcmService.state();
        if (!received[tokens.ok] || !received[tokens.flaky]) throw new Error("not yet");
      },
      { timeout: 15_000, interval: 50 },
    );
    const { received, errors } = await fcmService.state();
    expect(errors).toEqual([]);
    expect(received[tokens.ok]).toEqual([
      {
        data: {
          topic: "cal",
          sync_token: "s-7",
          push_message:
            '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:"><topic>cal</topic>' +
            "<content-update><D:sync-token>s-7</D:sync-token></content-update></push-message>",
        },
        // no platform named: an Android app's, with the android block and no apns
        platform: "android",
        android: { priority: "HIGH", ttl: "600s", collapse_key: await topicHeader(tenant.id, "cal") },
      },
    ]);
    expect(received[tokens.flaky]).toHaveLength(1);
    await vi.waitFor(async () => expect(await subscription(ids.unregistered)).toBeNull(), { timeout: 5000, interval: 50 });
    expect(await subscription(ids.invalid)).toBeNull();
    expect(await subscription(ids.mismatch)).toMatchObject({ consecutive_failures: 1, last_failure_reason: "FCM answered 403 SENDER_ID_MISMATCH" });
    expect(await subscription(ids.ok)).toMatchObject({ consecutive_failures: 0 });
  }, 30_000);

  it("reuses the access token, and refreshes it once when FCM answers 401", async () => {
    const tenant = await createTenant();
    const token = await fcmService.token("accept");
    await registerToken(tenant, "r", token);
    await notifyAndFlush(tenant, "r", { content_update: { sync_token: "1" } });
    await vi.waitFor(async () => expect((await fcmService.state()).received[token]).toHaveLength(1), { timeout: 15_000, interval: 50 });
    const issued = (await fcmService.state()).tokensIssued;
    await notifyAndFlush(tenant, "r", { content_update: { sync_token: "2" } });
    await vi.waitFor(async () => expect((await fcmService.state()).received[token]).toHaveLength(2), { timeout: 15_000, interval: 50 });
    expect((await fcmService.state()).tokensIssued).toBe(issued);

    await fcmService.revoke();
    await notifyAndFlush(tenant, "r", { content_update: { sync_token: "3" } });
    await vi.waitFor(async () => expect((await fcmService.state()).received[token]).toHaveLength(3), { timeout: 15_000, interval: 50 });
    expect((await fcmService.state()).tokensIssued).toBe(issued + 1);
  }, 30_000);

  it("refuses a redirect from messages:send: failed, never retried, the Location never requested", async () => {
    const tenant = await createTenant();
    const redirecting = await fcmService.token("redirect");
    // answers 503 once: its retry shows what the retry job holds
    const flaky = await fcmService.token("unavailable-once");
    const ids = { redirecting: await registerToken(tenant, "moved", redirecting), flaky: await registerToken(tenant, "moved", flaky) };
    await notifyAndFlush(tenant, "moved", { content_update: { sync_token: "r1" } });
    await vi.waitFor(async () => expect((await fcmService.state()).received[flaky]).toHaveLength(1), { timeout: 15_000, interval: 50 });
    const state = await fcmService.state();
    expect(state.attempts[flaky]).toBe(2);
    expect(state.attempts[redirecting]).toBe(1);
    expect(state.redirected[redirecting]).toBeUndefined();
    expect(await subscription(ids.redirecting)).toMatchObject({ consecutive_failures: 1, last_failure_reason: "FCM answered 307 (redirects are not followed)" });
  }, 30_000);

  it("never follows a redirect from the OAuth token endpoint: the send is retried later", async () => {
    const account = serviceAccountOf(env)!;
    const key = `oauth-${crypto.randomUUID()}`;
    const requested: { url: string; redirect: RequestInit["redirect"] }[] = [];
    const recording: typeof fetch = (input, init) => {
      requested.push({ url: String(input), redirect: init?.redirect });
      return fetch(input, init);
    };
    const transport = fcmTransport({ ...env, GOOGLE_OAUTH_TOKEN_URL: `${env.TEST_FCM_SERVICE}/token-redirect/${key}` }, account, recording);
    const [outcome] = await transport.send([{ subscriptionId: 1, token: await fcmService.token("accept"), platform: "android" }], { xml: "<push-message/>", ttl: 60, urgency: "normal", topic: null });
    expect(outcome).toEqual({ kind: "retry", status: null, afterSeconds: null, reason: "FCM: OAuth token endpoint answered 307 (redirects are not followed)" });
    expect(requested).toEqual([{ url: `${env.TEST_FCM_SERVICE}/token-redirect/${key}`, redirect: "manual" }]);
    expect((await fcmService.state()).redirected[key]).toBeUndefined();
  });

  it("asks fetch not to follow redirects, for the access token and the send alike", async () => {
    const token = await fcmService.token("accept");
    const requested: { url: string; redirect: RequestInit["redirect"] }[] = [];
    const recording: typeof fetch = (input, init) => {
      requested.push({ url: String(input), redirect: init?.redirect });
      return fetch(input, init);
    };
    // with the access tokens revoked, a token request comes whether one was cached or not
    await fcmService.revoke();
    const transport = fcmTransport(env, serviceAccountOf(env)!, recording);
    expect((await transport.send([{ subscriptionId: 1, token, platform: "android" }], { xml: "<push-message/>", ttl: 60, urgency: "normal", topic: null }))[0]).toEqual({ kind: "delivered", status: 200 });
    expect(requested.map((r) => r.url)).toContain(env.GOOGLE_OAUTH_TOKEN_URL);
    expect(requested.map((r) => r.url)).toContain(`${env.FCM_API_BASE}/v1/projects/${serviceAccountOf(env)!.project_id}/messages:send`);
    expect(requested.every((r) => r.redirect === "manual")).toBe(true);
  });

  it("reaches an iOS app through the apns block: a background push, priority 5 even when urgent, expiring at now + TTL", async () => {
    const tenant = await createTenant();
    const iphone = await fcmService.token("accept");
    const pixel = await fcmService.token("accept");
    await registerToken(tenant, "ios", iphone, "ios");
    await registerToken(tenant, "ios", pixel, "android");
    const before = Math.floor(Date.now() / 1000);
    await notifyAndFlush(tenant, "ios", { content_update: { sync_token: "i-1" }, urgency: "high", ttl: 600 });
    await vi.waitFor(
      async () => {
        const { received } = await fcmService.state();
        expect(received[iphone]).toHaveLength(1);
        expect(received[pixel]).toHaveLength(1);
      },
      { timeout: 15_000, interval: 50 },
    );
    const after = Math.floor(Date.now() / 1000);
    const { received, errors } = await fcmService.state();
    // the stand-in checks every field of the apns block, and that neither platform carries the other's
    expect(errors).toEqual([]);
    const [ios] = received[iphone];
    expect(ios).toEqual({
      platform: "ios",
      data: {
        topic: "ios",
        sync_token: "i-1",
        push_message:
          '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:"><topic>ios</topic>' +
          "<content-update><D:sync-token>i-1</D:sync-token></content-update></push-message>",
      },
      apns: {
        headers: { "apns-push-type": "background", "apns-priority": "5", "apns-expiration": expect.stringMatching(/^\d+$/) },
        payload: { aps: { "content-available": 1 } },
      },
    });
    const expiration = Number((ios as Extract<typeof ios, { platform: "ios" }>).apns.headers["apns-expiration"]);
    expect(expiration).toBeGreaterThanOrEqual(before + 600);
    expect(expiration).toBeLessThanOrEqual(after + 600);
    expect(received[pixel]).toEqual([{ platform: "android", data: ios.data, android: { priority: "HIGH", ttl: "600s", collapse_key: await topicHeader(tenant.id, "ios") } }]);
  }, 30_000);

  it("delivers to Web Push and FCM subscribers of one topic, once each", async () => {
    const tenant = await createTenant();
    const token = await fcmService.token("accept");
    await registerToken(tenant, "mixed", token);
    const browser = await pushService.subscriber();
    await registerSubscriber(tenant, "mixed", browser);
    await notifyAndFlush(tenant, "mixed", { content_update: { sync_token: "m1" } });
    expect((await pushService.wait(browser.id, 1)).received).toHaveLength(1);
    await vi.waitFor(async () => expect((await fcmService.state()).received[token]).toHaveLength(1), { timeout: 15_000, interval: 50 });
  });
});

describe("FCM messages and answers", () => {
  const message = { xml: "<push-message/>", ttl: 86_400, urgency: "low" as const, topic: "T".repeat(32), data: { topic: "t" } };

  const NOW = 1_767_225_600;
  const android = { token: "tok", platform: "android" as const };
  const ios = { token: "tok", platform: "ios" as const };

  it("carries the XML only while the data fits in 4096 bytes", () => {
    expect(fcmMessage(android, message, NOW).message).toEqual({
      token: "tok",
      data: { topic: "t", push_message: "<push-message/>" },
      android: { priority: "NORMAL", ttl: "86400s", collapse_key: "T".repeat(32) },
    });
    for (const target of [android, ios]) {
      const big = fcmMessage(target, { ...message, xml: "x".repeat(MAX_DATA_BYTES) }, NOW).message;
      expect(big.data).toEqual({ topic: "t" });
    }
  });

  it("carries the XML to iOS apps only while APNs's payload, aps and data in JSON, fits in 4096 bytes", () => {
    // within FCM's data limit, but over APNs's once quoted beside aps
    const payload = (xml: string) => JSON.stringify({ aps: { "content-available": 1 }, topic: "t", push_message: xml });
    const overhead = payload("").length;
    const fitting = "x".repeat(MAX_APNS_PAYLOAD_BYTES - overhead);
    const over = `${fitting}x`;
    expect(new TextEncoder().encode(`topict${"push_message"}${over}`).byteLength).toBeLessThanOrEqual(MAX_DATA_BYTES);
    expect(fcmMessage(android, { ...message, xml: over }, NOW).message.data).toHaveProperty("push_message", over);
    for (const target of [ios, { topic: "pd-x" }]) {
      expect(fcmMessage(target, { ...message, xml: fitting }, NOW).message.data, JSON.stringify(target)).toHaveProperty("push_message", fitting);
      expect(fcmMessage(target, { ...message, xml: over }, NOW).message.data, JSON.stringify(target)).toEqual({ topic: "t" });
    }
    // quoting counts: a quote in the XML takes two bytes of the payload
    expect(fcmMessage(ios, { ...message, xml: `${fitting.slice(1)}"` }, NOW).message.data).toEqual({ topic: "t" });
  });

  it("keeps an Android app's message as it always was: the android block, no apns", () => {
    expect(JSON.stringify(fcmMessage(android, { ...message, urgency: "high" }, NOW))).toBe(
      `{"message":{"token":"tok","data":{"topic":"t","push_message":"<push-message/>"},"android":{"priority":"HIGH","ttl":"86400s","collapse_key":"${"T".repeat(32)}"}}}`,
    );
    expect(fcmMessage(android, { ...message, topic: null }, NOW).message).not.toHaveProperty("apns");
  });

  it("sends an iOS app a background push through apns: priority 5 at every urgency, expiring at now + TTL, no android block", () => {
    for (const urgency of ["very-low", "low", "normal", "high"] as const) {
      expect(fcmMessage(ios, { ...message, urgency, ttl: 600 }, NOW)).toEqual({
        message: {
          token: "tok",
          data: { topic: "t", push_message: "<push-message/>" },
          apns: {
            headers: { "apns-push-type": "background", "apns-priority": "5", "apns-expiration": String(NOW + 600) },
            payload: { aps: { "content-available": 1 } },
          },
        },
      });
    }
  });

  it("maps FCM's error codes to outcomes", () => {
    const error = (status: number, errorCode: string, extra: object[] = []) => ({
      error: { status: "X", details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }, ...extra] },
    });
    expect(fcmOutcome(200, null, null)).toEqual({ kind: "delivered", status: 200 });
    expect(fcmOutcome(404, error(404, "UNREGISTERED"), null).kind).toBe("gone");
    expect(fcmOutcome(400, error(400, "INVALID_ARGUMENT", [{ fieldViolations: [{ field: "message.token" }] }]), null).kind).toBe("gone");
    expect(fcmOutcome(400, error(400, "INVALID_ARGUMENT"), null).kind).toBe("failed");
    expect(fcmOutcome(429, error(429, "QUOTA_EXCEEDED"), "30")).toEqual({ kind: "retry", status: 429, afterSeconds: 30, reason: "FCM answered 429 QUOTA_EXCEEDED" });
    expect(fcmOutcome(503, error(503, "UNAVAILABLE"), null).kind).toBe("retry");
    expect(fcmOutcome(500, error(500, "INTERNAL"), null).kind).toBe("retry");
    expect(fcmOutcome(403, error(403, "SENDER_ID_MISMATCH"), null)).toEqual({ kind: "failed", status: 403, reason: "FCM answered 403 SENDER_ID_MISMATCH" });
    for (const status of [301, 302, 303, 307, 308]) {
      expect(fcmOutcome(status, null, "5")).toEqual({ kind: "failed", status, reason: `FCM answered ${status} (redirects are not followed)` });
    }
  });
});
