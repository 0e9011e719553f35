// The test push against the stand-in push services (test/support/push-service.ts decrypts with
// http_ece and verifies VAPID with jose; fcm-service.ts checks every messages:send): what the push
// service receives, what the caller is told, what is recorded, and who may send one how often.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keyringOf } from "../../src/crypto/sealed";
import { generateVapidKeys } from "../../src/crypto/vapid";
import { nowSeconds } from "../../src/expiry";
import { NotTestable, testPush, TestPushRateLimited } from "../../src/registering/test-push";
import { tenantStats } from "../../src/store/stats";
import { keepVapidKey } from "../../src/store/vapid-keys";
import { bearer, call, createTenant, keylessSubscriber, pushService, registerSubscriber, subscribeWith, type PlainReceivedMessage, type TestTenant } from "../helpers";
import { upgrade } from "../socket-client";

const tenantActor = (tenant: TestTenant) => ({ tenantId: tenant.id, owner: null });

const subscriptionOf = (registrationId: string) =>
  env.DB.prepare("SELECT s.* FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id WHERE r.id = ?")
    .bind(registrationId)
    .first<Record<string, number | string | null>>();

const EMPTY_CONTENT_UPDATE = (topic: string) =>
  `<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:"><topic>${topic}</topic><content-update/></push-message>`;

const fcmToken = async (behaviour: string) =>
  ((await (await fetch(`${env.TEST_FCM_SERVICE}/_tokens`, { method: "POST", body: JSON.stringify({ behaviour }) })).json()) as { token: string }).token;

describe("testPush", () => {
  it("sends the topic with an empty content-update, TTL 60 and no Topic header, encrypted and signed, and records the success", async () => {
    const tenant = await createTenant();
    const subscriber = await pushService.subscriber();
    const registration = await registerSubscriber(tenant, "calendar-1", subscriber);
    const now = nowSeconds();
    const result = await testPush(env, tenantActor(tenant), registration.id, now);
    expect(result).toEqual({ outcome: "delivered", status: 201, reason: null, ms: expect.any(Number) });
    const { received } = await pushService.received(subscriber.id);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ xml: EMPTY_CONTENT_UPDATE("calendar-1"), ttl: 60, topic: null, contentType: 'application/xml; charset="UTF-8"' });
    expect(await pushService.errors()).toEqual([]);
    expect(await subscriptionOf(registration.id)).toMatchObject({ last_success_at: now, consecutive_failures: 0, failing_since: null });
    // counted only as a test
    const stats = await tenantStats(env.DB, tenant.id, 1, now);
    expect(stats.messages).toBe(0);
    expect(stats.deliveries).toEqual({ delivered: 0, retried: 0, refused: 0, gone: 0, dead_lettered: 0, tests: 1 });
    expect(stats.by_transport.web_push.tests).toBe(1);
  });

  it("records a refusal like a delivery, and leaves a retry a real message queued due when it was", async () => {
    const tenant = await createTenant();
    const subscriber = await pushService.subscriber({ kind: "status", status: 400 });
    const registration = await registerSubscriber(tenant, "calendar-1", subscriber);
    const now = nowSeconds();
    await env.DB.prepare("UPDATE subscriptions SET next_attempt_at = ? WHERE id = (SELECT subscription_id FROM registrations WHERE id = ?)")
      .bind(now + 300, registration.id)
      .run();
    expect(await testPush(env, tenantActor(tenant), registration.id, now)).toMatchObject({ outcome: "failed", status: 400, reason: "push service answered 400" });
    expect(await subscriptionOf(registration.id)).toMatchObject({
      consecutive_failures: 1,
      last_failure_at: now,
      last_failure_status: 400,
      last_failure_reason: "push service answered 400",
      failing_since: now,
      next_attempt_at: now + 300,
    });
  });

  it("signs with the VAPID key the subscription is bound to, which the push service insists on", async () => {
    const tenant = await createTenant();
    const old = await generateVapidKeys();
    await keepVapidKey(env.DB, await keyringOf(env), old, nowSeconds());
    const subscriber = await pushService.subscriber({ kind: "accept" }, old.publicKey);
    const registration = await registerSubscriber(tenant, "calendar-1", subscriber);
    await env.DB.prepare("UPDATE subscriptions SET vapid_public_key = ? WHERE id = (SELECT subscription_id FROM registrations WHERE id = ?)")
      .bind(old.publicKey, registration.id)
      .run();
    expect(await testPush(env, tenantActor(tenant), registration.id, nowSeconds())).toMatchObject({ outcome: "delivered", status: 201 });
    expect((await pushService.received(subscriber.id)).received).toHaveLength(1);
  });

  it("sends a keyless UnifiedPush endpoint the message plain", async () => {
    const tenant = await createTenant();
    const subscriber = await keylessSubscriber();
    const response = await subscribeWith({ ALLOW_INSECURE_PUSH_RESOURCES: "true" }, tenant.notify_token, {
      topic: "calendar-1",
      push_services: { unified_push: { endpoint: subscriber.endpoint } },
    });
    const registration = (await response.json()) as { id: string };
    expect(await testPush(env, tenantActor(tenant), registration.id, nowSeconds())).toMatchObject({ outcome: "delivered", status: 201 });
    const [message] = (await pushService.received(subscriber.id)).received as PlainReceivedMessage[];
    expect(message).toMatchObject({ xml: EMPTY_CONTENT_UPDATE("calendar-1"), ttl: 60, topic: null, schemaError: null });
  });

  it("sends over FCM with the token opened, and reports FCM's refusal", async () => {
    const tenant = await createTenant();
    const register = async (token: string) =>
      (await (await call("/v1/subscriptions", { method: "POST", headers: bearer(tenant.notify_token), json: { topic: "book", push_services: { fcm: { registration_token: token } } } })).json()) as { id: string };
    const ok = await fcmToken("accept");
    const delivered = await register(ok);
    expect(await testPush(env, tenantActor(tenant), delivered.id, nowSeconds())).toMatchObject({ outcome: "delivered", status: 200, reason: null });
    const state = (await (await fetch(`${env.TEST_FCM_SERVICE}/_state`)).json()) as { received: Record<string, { data: Record<string, string>; android: Record<string, string> }[]> };
    expect(state.received[ok]).toHaveLength(1);
    expect(state.received[ok][0].data).toEqual({ topic: "book", push_message: EMPTY_CONTENT_UPDATE("book") });
    expect(state.received[ok][0].android).toEqual({ priority: "NORMAL", ttl: "60s" });

    // an iOS app's token gets its test push through the apns block, as its deliveries do
    const iphone = await fcmToken("accept");
    const ios = (await (
      await call("/v1/subscriptions", {
        method: "POST",
        headers: bearer(tenant.notify_token),
        json: { topic: "book", push_services: { fcm: { registration_token: iphone, platform: "ios" } } },
      })
    ).json()) as { id: string };
    const sent = nowSeconds();
    expect(await testPush(env, tenantActor(tenant), ios.id, sent)).toMatchObject({ outcome: "delivered", status: 200 });
    const iosState = (await (await fetch(`${env.TEST_FCM_SERVICE}/_state`)).json()) as { received: Record<string, Record<string, unknown>[]>; errors: string[] };
    expect(iosState.errors).toEqual([]);
    expect(iosState.received[iphone]).toEqual([
      {
        platform: "ios",
        data: { topic: "book", push_message: EMPTY_CONTENT_UPDATE("book") },
        apns: {
          headers: { "apns-push-type": "background", "apns-priority": "5", "apns-expiration": expect.stringMatching(/^\d+$/) },
          payload: { aps: { "content-available": 1 } },
        },
      },
    ]);
    const expiration = Number((iosState.received[iphone][0].apns as { headers: Record<string, string> }).headers["apns-expiration"]);
    expect(expiration - sent).toBeGreaterThanOrEqual(60);
    expect(expiration - sent).toBeLessThanOrEqual(65);

    const mismatch = await register(await fcmToken("sender-mismatch"));
    const refused = await testPush(env, tenantActor(tenant), mismatch.id, nowSeconds());
    expect(refused).toMatchObject({ outcome: "failed", status: 403, reason: expect.stringMatching(/^FCM answered 403 SENDER_ID_MISMATCH/) });
    expect(await subscriptionOf(mismatch.id)).toMatchObject({ consecutive_failures: 1, last_failure_status: 403 });

    const stats = await tenantStats(env.DB, tenant.id, 1, nowSeconds());
    expect(stats.by_transport.fcm.tests).toBe(3);
    expect(stats.deliveries.refused).toBe(0);
  });

  it("deletes a gone subscription with its registrations, as a delivery would", async () => {
    const tenant = await createTenant();
    const subscriber = await pushService.subscriber({ kind: "gone" });
    const registration = await registerSubscriber(tenant, "calendar-1", subscriber);
    expect(await testPush(env, tenantActor(tenant), registration.id, nowSeconds())).toMatchObject({ outcome: "gone", status: 410, reason: "push service answered 410" });
    expect(await subscriptionOf(registration.id)).toBeNull();
    expect(await testPush(env, tenantActor(tenant), registration.id, nowSeconds())).toBeNull();
  });

  it("allows one per registration every 10 s, whoever asks, and none to someone else's", async () => {
    const tenant = await createTenant();
    const subscriber = await pushService.subscriber();
    const registration = await registerSubscriber(tenant, "calendar-1", subscriber);
    const now = nowSeconds();
    await testPush(env, tenantActor(tenant), registration.id, now);
    const limited = await testPush(env, tenantActor(tenant), registration.id, now + 3).catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(TestPushRateLimited);
    expect((limited as TestPushRateLimited).retryAfterSeconds).toBe(7);
    // another registration is not held back
    const second = await registerSubscriber(tenant, "calendar-2", await pushService.subscriber());
    expect(await testPush(env, tenantActor(tenant), second.id, now + 3)).toMatchObject({ outcome: "delivered" });
    expect(await testPush(env, tenantActor(tenant), registration.id, now + 10)).toMatchObject({ outcome: "delivered" });
    expect((await pushService.received(subscriber.id)).received).toHaveLength(2);
    // someone else's: as if it did not exist, and nothing is sent or claimed
    expect(await testPush(env, { tenantId: tenant.id, owner: "mallory" }, registration.id, now + 30)).toBeNull();
    expect(await testPush(env, { tenantId: (await createTenant("other")).id, owner: null }, registration.id, now + 30)).toBeNull();
    expect(await testPush(env, tenantActor(tenant), registration.id, now + 30)).toMatchObject({ outcome: "delivered" });
  });

  it("has nothing to test for a WebSocket connection, or FCM when it is not configured", async () => {
    const tenant = await createTenant();
    const socket = await upgrade("/v1/ws", bearer(tenant.notify_token));
    const [hello] = await socket.next(1);
    const attached = await call("/v1/subscriptions", {
      method: "POST",
      headers: bearer(tenant.notify_token),
      json: { topic: "calendar-1", push_services: { websocket: { connection_id: hello.connection_id } } },
    });
    expect(attached.status).toBe(201);
    const { id } = (await attached.json()) as { id: string };
    await expect(testPush(env, tenantActor(tenant), id, nowSeconds())).rejects.toBeInstanceOf(NotTestable);
    await socket.close();

    const fcm = await call("/v1/subscriptions", {
      method: "POST",
      headers: bearer(tenant.notify_token),
      json: { topic: "book", push_services: { fcm: { registration_token: await fcmToken("accept") } } },
    });
    const registration = (await fcm.json()) as { id: string };
    await expect(testPush({ ...env, FCM_SERVICE_ACCOUNT: "" }, tenantActor(tenant), registration.id, nowSeconds())).rejects.toThrow(/FCM is not configured/);
    // refused before the rate limit is claimed
    expect(await testPush(env, tenantActor(tenant), registration.id, nowSeconds())).toMatchObject({ outcome: "delivered" });
  });
});
