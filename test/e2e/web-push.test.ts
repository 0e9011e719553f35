// Web Push end to end: `npm start` (wrangler dev, local D1/DO/Queues) delivering to a local push
// service that decrypts with http_ece and verifies VAPID with jose. 60 subscribers: 50 accept,
// 5 are gone (410), 5 answer 503 once (Retry-After: 1) and then accept.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PushService, type Behaviour, type SubscriberInfo } from "../support/push-service";
import { api, startDirector, type Director } from "./director";

let director: Director;
let service: PushService;

beforeAll(async () => {
  [director, service] = await Promise.all([startDirector(), new PushService().start()]);
  service.vapidPublicKey = director.vars.VAPID_PUBLIC_KEY;
});

afterAll(async () => {
  await Promise.all([director?.stop(), service?.stop()]);
});

describe("Web Push through wrangler dev", () => {
  it("delivers one notify to every live subscriber exactly once, drops gone ones, retries unavailable ones", async () => {
    const tenant = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "e2e" } })).body;
    const groups: Record<string, { behaviour: Behaviour; count: number }> = {
      accepting: { behaviour: { kind: "accept" }, count: 50 },
      gone: { behaviour: { kind: "gone" }, count: 5 },
      flaky: { behaviour: { kind: "unavailable", times: 1, retryAfter: 1 }, count: 5 },
    };
    const subscribers: Record<string, SubscriberInfo[]> = {};
    for (const [name, { behaviour, count }] of Object.entries(groups)) {
      subscribers[name] = Array.from({ length: count }, () => service.addSubscriber(behaviour));
    }
    await Promise.all(
      Object.values(subscribers)
        .flat()
        .map(async (s) => {
          const response = await api(director, "/v1/subscriptions", tenant.notify_token, {
            json: { topic: "team-calendar", push_services: { web_push: { endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } } } },
          });
          expect(response.status).toBe(201);
        }),
    );

    const notified = await api(director, "/v1/notify", tenant.notify_token, {
      json: { topic: "team-calendar", content_update: { sync_token: "https://dav.example/sync/42" }, ttl: 3600 },
    });
    expect(notified.status).toBe(202);

    const live = [...subscribers.accepting, ...subscribers.flaky];
    await service.waitUntil(() => live.every((s) => service.received(s.id).length >= 1) && subscribers.gone.every((s) => service.attempts(s.id) >= 1));
    const xml =
      '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:"><topic>team-calendar</topic>' +
      "<content-update><D:sync-token>https://dav.example/sync/42</D:sync-token></content-update></push-message>";
    for (const s of subscribers.accepting) {
      expect(service.received(s.id).map((m) => [m.xml, m.ttl])).toEqual([[xml, 3600]]);
    }
    // a retry sends what is left of the message's lifetime (RFC 8030 §5.2 TTL), never more
    for (const s of subscribers.flaky) {
      const [message] = service.received(s.id);
      expect(message.xml).toBe(xml);
      expect(message.ttl).toBeLessThan(3600);
      expect(message.ttl).toBeGreaterThan(3600 - 60);
    }
    for (const s of subscribers.flaky) expect(service.attempts(s.id)).toBe(2);
    for (const s of subscribers.gone) expect(service.received(s.id)).toEqual([]);
    expect(service.errors).toEqual([]);

    // the gone subscriptions are deleted with their registrations (recorded right after the sends)
    const counts = async () => (await api(director, `/v1/admin/tenants/${tenant.id}`, director.adminToken)).body.counts;
    await vi.waitFor(async () => expect(await counts()).toEqual({ subscriptions: 55, registrations: 55 }), { timeout: 10_000, interval: 100 });
    expect(service.requests).toBe(50 + 5 + 5 * 2);
  });
});
