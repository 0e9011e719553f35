// FCM HTTP v1 through the real queues to the OAuth + FCM stand-in, which verifies the service
// account's JWT assertion and checks every message.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { fcmMessage, fcmOutcome, fcmTransport, MAX_DATA_BYTES, serviceAccountOf } from "../../src/transports/fcm";
import { topicHeader } from "../../src/transports/web-push";
import { bearer, call, createTenant, pushService, registerSubscriber, type TestTenant } from "../helpers";

const fcmControl = {
  async token(behaviour = "accept"): Promise<string> {
    return ((await (await fetch(`${env.TEST_FCM_SERVICE}/_tokens`, { method: "POST", body: JSON.stringify({ behaviour }) })).json()) as { token: string }).token;
  },
  async state(): Promise<{
    received: Record<string, { data: Record<string, string>; android: Record<string, string> }[]>;
    attempts: Record<string, number>;
    redirected: Record<string, number>;
    errors: string[];
    tokensIssued: number;
  }> {
    return (await fetch(`${env.TEST_FCM_SERVICE}/_state`)).json();
  },
  revoke: () => fetch(`${env.TEST_FCM_SERVICE}/_revoke`, { method: "POST" }),
};

async function registerToken(tenant: TestTenant, topic: string, token: string): Promise<number> {
  const response = await call("/v1/subscriptions", { method: "POST", headers: bearer(tenant.notify_token), json: { topic, push_services: { fcm: { registration_token: token } } } });
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
      ok: await fcmControl.token("accept"),
      unregistered: await fcmControl.token("unregistered"),
      invalid: await fcmControl.token("invalid"),
      flaky: await fcmControl.token("unavailable-once"),
      mismatch: await fcmControl.token("sender-mismatch"),
    };
    const ids: Record<string, number> = {};
    for (const [name, token] of Object.entries(tokens)) ids[name] = await registerToken(tenant, "cal", token);
    await notifyAndFlush(tenant, "cal", { content_update: { sync_token: "s-7" }, urgency: "high", ttl: 600 });

    await vi.waitFor(
      async () => {
        const { received } = await fcmControl.state();
        if (!received[tokens.ok] || !received[tokens.flaky]) throw new Error("not yet");
      },
      { timeout: 15_000, interval: 50 },
    );
    const { received, errors } = await fcmControl.state();
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
    const token = await fcmControl.token("accept");
    await registerToken(tenant, "r", token);
    await notifyAndFlush(tenant, "r", { content_update: { sync_token: "1" } });
    await vi.waitFor(async () => expect((await fcmControl.state()).received[token]).toHaveLength(1), { timeout: 15_000, interval: 50 });
    const issued = (await fcmControl.state()).tokensIssued;
    await notifyAndFlush(tenant, "r", { content_update: { sync_token: "2" } });
    await vi.waitFor(async () => expect((await fcmControl.state()).received[token]).toHaveLength(2), { timeout: 15_000, interval: 50 });
    expect((await fcmControl.state()).tokensIssued).toBe(issued);

    await fcmControl.revoke();
    await notifyAndFlush(tenant, "r", { content_update: { sync_token: "3" } });
    await vi.waitFor(async () => expect((await fcmControl.state()).received[token]).toHaveLength(3), { timeout: 15_000, interval: 50 });
    expect((await fcmControl.state()).tokensIssued).toBe(issued + 1);
  }, 30_000);

  it("refuses a redirect from messages:send: failed, never retried, the Location never requested", async () => {
    const tenant = await createTenant();
    const redirecting = await fcmControl.token("redirect");
    // answers 503 once: its retry shows what the retry job holds
    const flaky = await fcmControl.token("unavailable-once");
    const ids = { redirecting: await registerToken(tenant, "moved", redirecting), flaky: await registerToken(tenant, "moved", flaky) };
    await notifyAndFlush(tenant, "moved", { content_update: { sync_token: "r1" } });
    await vi.waitFor(async () => expect((await fcmControl.state()).received[flaky]).toHaveLength(1), { timeout: 15_000, interval: 50 });
    const state = await fcmControl.state();
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
    const outcome = await transport.send({ subscriptionId: 1, token: await fcmControl.token("accept") }, { xml: "<push-message/>", ttl: 60, urgency: "normal", topic: null });
    expect(outcome).toEqual({ kind: "retry", status: null, afterSeconds: null, reason: "FCM: OAuth token endpoint answered 307 (redirects are not followed)" });
    expect(requested).toEqual([{ url: `${env.TEST_FCM_SERVICE}/token-redirect/${key}`, redirect: "manual" }]);
    expect((await fcmControl.state()).redirected[key]).toBeUndefined();
  });

  it("asks fetch not to follow redirects, for the access token and the send alike", async () => {
    const token = await fcmControl.token("accept");
    const requested: { url: string; redirect: RequestInit["redirect"] }[] = [];
    const recording: typeof fetch = (input, init) => {
      requested.push({ url: String(input), redirect: init?.redirect });
      return fetch(input, init);
    };
    // with the access tokens revoked, a token request comes whether one was cached or not
    await fcmControl.revoke();
    const transport = fcmTransport(env, serviceAccountOf(env)!, recording);
    expect(await transport.send({ subscriptionId: 1, token }, { xml: "<push-message/>", ttl: 60, urgency: "normal", topic: null })).toEqual({ kind: "delivered", status: 200 });
    expect(requested.map((r) => r.url)).toContain(env.GOOGLE_OAUTH_TOKEN_URL);
    expect(requested.map((r) => r.url)).toContain(`${env.FCM_API_BASE}/v1/projects/${serviceAccountOf(env)!.project_id}/messages:send`);
    expect(requested.every((r) => r.redirect === "manual")).toBe(true);
  });

  it("delivers to Web Push and FCM subscribers of one topic, once each", async () => {
    const tenant = await createTenant();
    const token = await fcmControl.token("accept");
    await registerToken(tenant, "mixed", token);
    const browser = await pushService.subscriber();
    await registerSubscriber(tenant, "mixed", browser);
    await notifyAndFlush(tenant, "mixed", { content_update: { sync_token: "m1" } });
    expect((await pushService.wait(browser.id, 1)).received).toHaveLength(1);
    await vi.waitFor(async () => expect((await fcmControl.state()).received[token]).toHaveLength(1), { timeout: 15_000, interval: 50 });
  });
});

describe("FCM messages and answers", () => {
  const message = { xml: "<push-message/>", ttl: 86_400, urgency: "low" as const, topic: "T".repeat(32), data: { topic: "t" } };

  it("carries the XML only while the data fits in 4096 bytes", () => {
    expect(fcmMessage("tok", message).message).toEqual({
      token: "tok",
      data: { topic: "t", push_message: "<push-message/>" },
      android: { priority: "NORMAL", ttl: "86400s", collapse_key: "T".repeat(32) },
    });
    const big = fcmMessage("tok", { ...message, xml: "x".repeat(MAX_DATA_BYTES) }).message;
    expect(big.data).toEqual({ topic: "t" });
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
