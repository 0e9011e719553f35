// Web Push answers to outcomes, the Topic header, and what a redirecting push service gets: a
// refusal, through the hub and the real queues to the stand-in push service.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { retryAfterSeconds } from "../../src/transports/transport";
import { topicHeader, webPushOutcome } from "../../src/transports/web-push";
import { bearer, call, createTenant, pushService, registerSubscriber } from "../helpers";

describe("web push outcomes (RFC 8030)", () => {
  it("maps push service answers to outcomes, quoting the body of a refusal", () => {
    expect(webPushOutcome(201, null)).toEqual({ kind: "delivered", status: 201 });
    for (const status of [400, 401, 403]) expect(webPushOutcome(status, null)).toEqual({ kind: "failed", status, reason: `push service answered ${status}` });
    expect(webPushOutcome(413, null, "too big")).toEqual({ kind: "too_large", status: 413, reason: "push service answered 413: too big" });
    expect(webPushOutcome(429, "7")).toEqual({ kind: "retry", status: 429, afterSeconds: 7, reason: "push service answered 429" });
    expect(webPushOutcome(403, null, "  bad\n  key ")).toEqual({ kind: "failed", status: 403, reason: "push service answered 403: bad key" });
    for (const status of [300, 301, 302, 303, 304, 307, 308, 399]) {
      expect(webPushOutcome(status, "1")).toEqual({ kind: "failed", status, reason: `push service answered ${status} (redirects are not followed)` });
    }
  });

  it("reads Retry-After as seconds or an HTTP-date", () => {
    const now = Date.parse("Tue, 24 Nov 2026 10:00:00 GMT");
    expect(retryAfterSeconds("120", now)).toBe(120);
    expect(retryAfterSeconds("Tue, 24 Nov 2026 10:01:30 GMT", now)).toBe(90);
    expect(retryAfterSeconds("Tue, 24 Nov 2026 09:00:00 GMT", now)).toBe(0);
    expect(retryAfterSeconds("soon", now)).toBeNull();
    expect(retryAfterSeconds(null, now)).toBeNull();
  });
});

describe("Topic header (RFC 8030 §5.4)", () => {
  it("is 32 base64url characters, stable per topic, distinct across topics and tenants", async () => {
    const a = await topicHeader("tenant-1", "calendar");
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(a.length % 4).not.toBe(1);
    expect(await topicHeader("tenant-1", "calendar")).toBe(a);
    expect(await topicHeader("tenant-1", "contacts")).not.toBe(a);
    expect(await topicHeader("tenant-2", "calendar")).not.toBe(a);
    expect(a).not.toContain("calendar");
  });
});

describe("a push service that redirects", () => {
  it("is refused: the outcome is failed, never retried, and the Location is never requested", async () => {
    const tenant = await createTenant();
    const elsewhere = await pushService.subscriber();
    const redirecting = await pushService.subscriber({ kind: "redirect", status: 307, location: elsewhere.endpoint });
    const permanent = await pushService.subscriber({ kind: "redirect", status: 308, location: elsewhere.endpoint });
    // answers 503 once: its retry, through the real deliveries queue, shows what was retried
    const flaky = await pushService.subscriber({ kind: "unavailable", times: 1, retryAfter: 1 });
    const registrations = await Promise.all([redirecting, permanent, flaky].map((s) => registerSubscriber(tenant, "moved", s)));
    const subscriptionOf = async (registrationId: string) =>
      env.DB.prepare(
        "SELECT s.consecutive_failures, s.last_failure_reason FROM subscriptions s JOIN registrations r ON r.subscription_id = s.id WHERE r.id = ?",
      )
        .bind(registrationId)
        .first();

    expect((await call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: { topic: "moved" } })).status).toBe(202);
    await runDurableObjectAlarm(topicHub(env, tenant.id, "moved"));

    // the three went out in one delivery job; its retry holds only the 503 target
    expect(await pushService.wait(flaky.id, 1, 2)).toMatchObject({ attempts: 2 });
    await vi.waitFor(
      async () => {
        expect(await subscriptionOf(registrations[0].id)).toEqual({ consecutive_failures: 1, last_failure_reason: "push service answered 307 (redirects are not followed)" });
        expect(await subscriptionOf(registrations[1].id)).toEqual({ consecutive_failures: 1, last_failure_reason: "push service answered 308 (redirects are not followed)" });
      },
      { timeout: 5000, interval: 50 },
    );
    expect((await pushService.received(redirecting.id)).attempts).toBe(1);
    expect((await pushService.received(permanent.id)).attempts).toBe(1);
    expect(await pushService.received(elsewhere.id)).toEqual({ received: [], attempts: 0 });
    expect(await pushService.errors()).toEqual([]);
  }, 30_000);
});
