// Notify → TopicHub → fanout queue → deliveries queue → the stand-in push service, which
// decrypts with http_ece and verifies VAPID with jose. The queues are workerd's real ones.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { deliver, transportsFor } from "../../src/queues/deliveries";
import type { DeliveryJob } from "../../src/queues/jobs";
import type { QueuedWebPushTarget } from "../../src/transports/web-push";
import { topicHeader } from "../../src/transports/web-push";
import { ADMIN, bearer, call, createTenant, keylessSubscriber, pushService, queuedTarget, registerSubscriber, subscribeWith, type TestTenant } from "../helpers";

async function notifyAndFlush(tenant: TestTenant, body: Record<string, unknown>) {
  const response = await call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: body });
  expect(response.status).toBe(202);
  await runDurableObjectAlarm(topicHub(env, tenant.id, body.topic as string));
}

const subscription = (id: number) =>
  env.DB.prepare("SELECT * FROM subscriptions WHERE id = ?").bind(id).first<Record<string, number | string | null>>();

const subscriptionIdOf = async (registrationId: string) =>
  (await env.DB.prepare("SELECT subscription_id FROM registrations WHERE id = ?").bind(registrationId).first<{ subscription_id: number }>())!
    .subscription_id;

describe("Web Push delivery through the queues", () => {
  it("delivers the draft's push-message, encrypted and VAPID-signed, with TTL, Urgency and Topic", async () => {
    const tenant = await createTenant();
    const subscriber = await pushService.subscriber();
    await registerSubscriber(tenant, "calendar-1", subscriber);
    await notifyAndFlush(tenant, { topic: "calendar-1", content_update: { sync_token: "http://dav.example/sync/10" }, urgency: "high" });

    const { received } = await pushService.wait(subscriber.id, 1);
    expect(received).toHaveLength(1);
    const [message] = received;
    expect(message.xml).toBe(
      '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:">' +
        "<topic>calendar-1</topic><content-update><D:sync-token>http://dav.example/sync/10</D:sync-token></content-update></push-message>",
    );
    expect(message.ttl).toBe(86_400);
    expect(message.urgency).toBe("high");
    expect(message.topic).toBe(await topicHeader(tenant.id, "calendar-1"));
    expect(message.topic).toHaveLength(32);
    expect(message.contentType).toBe('application/xml; charset="UTF-8"');
    expect(message.claims).toMatchObject({ aud: new URL(env.TEST_PUSH_SERVICE).origin, sub: "mailto:ops@push-director.example" });
    expect(await pushService.errors()).toEqual([]);
  });

  it("merges a burst into one message and sends each registration what it asked for", async () => {
    const tenant = await createTenant();
    const [content, property, both, spared] = await Promise.all([1, 2, 3, 4].map(() => pushService.subscriber()));
    await registerSubscriber(tenant, "book", content, { content_update: { depth: 1 } });
    await registerSubscriber(tenant, "book", property, { property_update: { depth: 0 } });
    await registerSubscriber(tenant, "book", both, { content_update: { depth: 1 }, property_update: { depth: 0 } });
    const sparedRegistration = await registerSubscriber(tenant, "book", spared);
    await notifyAndFlush(tenant, {
      notifications: [
        { topic: "book", content_update: { sync_token: "s1" }, dont_notify: [sparedRegistration.url] },
        { topic: "book", content_update: { sync_token: "s2" }, ttl: 600, dont_notify: [sparedRegistration.url] },
        { topic: "book", property_update: { depth: 0 }, dont_notify: [sparedRegistration.url] },
      ],
    });
    const head = '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:"><topic>book</topic>';
    const contentXml = "<content-update><D:sync-token>s2</D:sync-token></content-update>";
    const expected: [typeof content, string][] = [
      [content, `${head}${contentXml}</push-message>`],
      [property, `${head}<property-update/></push-message>`],
      [both, `${head}${contentXml}<property-update/></push-message>`],
    ];
    for (const [subscriber, xml] of expected) {
      const { received } = await pushService.wait(subscriber.id, 1);
      expect(received.map((m) => m.xml)).toEqual([xml]);
      expect(received[0].ttl).toBe(86_400);
    }
    expect((await pushService.received(spared.id)).attempts).toBe(0);
  });

  it("deletes gone subscriptions, retries 503 after Retry-After, records refusals without retrying (413 twice: the smallest form too)", async () => {
    const tenant = await createTenant();
    const ok = await pushService.subscriber();
    const gone = await pushService.subscriber({ kind: "gone" });
    const flaky = await pushService.subscriber({ kind: "unavailable", times: 1, retryAfter: 1 });
    const tooLarge = await pushService.subscriber({ kind: "status", status: 413 });
    const ids: Record<string, number> = {};
    const targets: QueuedWebPushTarget[] = [];
    for (const [name, s] of Object.entries({ ok, gone, flaky, tooLarge })) {
      const registration = await registerSubscriber(tenant, "t", s);
      ids[name] = await subscriptionIdOf(registration.id);
      targets.push(await queuedTarget(registration.id));
    }
    const job: DeliveryJob = {
      tenantId: tenant.id,
      message: { xml: "<push-message/>", ttl: 60, urgency: "normal", topic: null, smallestXml: "<push-message></push-message>" },
      targets,
      attempt: 1,
    };
    await deliver([job], env, transportsFor(env));

    expect((await subscription(ids.ok))!.last_success_at).toBeGreaterThan(0);
    expect(await subscription(ids.gone)).toBeNull();
    const goneRegistrations = await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE subscription_id = ?").bind(ids.gone).first<{ n: number }>();
    expect(goneRegistrations!.n).toBe(0);
    expect(await subscription(ids.tooLarge)).toMatchObject({
      consecutive_failures: 1,
      last_failure_status: 413,
      last_failure_reason: "push service answered 413 (the smallest form too)",
      next_attempt_at: null,
    });
    expect(await subscription(ids.flaky)).toMatchObject({ consecutive_failures: 1, last_failure_status: 503, last_failure_reason: "push service answered 503" });

    // only the 503 target comes back, through the real deliveries queue, a second later
    const flakyAfter = await pushService.wait(flaky.id, 1, 2);
    expect(flakyAfter).toMatchObject({ attempts: 2 });
    expect(flakyAfter.received).toHaveLength(1);
    expect((await pushService.received(ok.id)).attempts).toBe(1);
    expect((await pushService.received(tooLarge.id)).attempts).toBe(2);
    expect((await pushService.received(gone.id)).attempts).toBe(1);
  });

  it("makes a target whose next attempt falls past the message's deadline a dead letter at once, with why", async () => {
    const tenant = await createTenant();
    const down = await pushService.subscriber({ kind: "unavailable", times: 100, retryAfter: 3600 });
    const registration = await registerSubscriber(tenant, "t", down);
    const subscriptionId = await subscriptionIdOf(registration.id);
    const now = Math.floor(Date.now() / 1000);
    const job: DeliveryJob = {
      tenantId: tenant.id,
      message: { xml: "<push-message/>", ttl: 60, urgency: "normal", topic: null },
      targets: [await queuedTarget(registration.id)],
      attempt: 1,
      deadline: now + 60,
    };
    expect(await deliver([job], env, transportsFor(env))).toEqual([null]);
    const letter = await vi.waitFor(
      async () => {
        const row = await env.DB.prepare("SELECT * FROM dead_letters WHERE tenant_id = ?").bind(tenant.id).first<{ body: string; reason: string }>();
        if (row === null) throw new Error("no dead letter yet");
        return row;
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(letter.reason).toMatch(/^503; Retry-After 3600 s is past the TTL \((59|60) s left\)$/);
    expect(JSON.parse(letter.body)).toMatchObject({ attempt: 1, reasons: { [subscriptionId]: letter.reason } });
    expect(await subscription(subscriptionId)).toMatchObject({ consecutive_failures: 1, last_failure_status: 503, next_attempt_at: null });
    const listed = await call(`/v1/admin/dead-letters?tenant=${tenant.id}`, { headers: ADMIN });
    expect(await listed.json()).toMatchObject({
      dead_letters: [{ tenant_id: tenant.id, queue: "push-dead-letters", reason: letter.reason, job: { attempt: 1 } }],
      next_before: null,
    });
    expect((await pushService.received(down.id)).attempts).toBe(1);
  });

  it("skips expired registrations and other topics", async () => {
    const tenant = await createTenant();
    const [live, expired, elsewhere] = await Promise.all([1, 2, 3].map(() => pushService.subscriber()));
    await registerSubscriber(tenant, "t", live);
    const old = await registerSubscriber(tenant, "t", expired);
    await registerSubscriber(tenant, "other", elsewhere);
    await env.DB.prepare("UPDATE registrations SET expires_at = ? WHERE id = ?").bind(Math.floor(Date.now() / 1000) - 1, old.id).run();
    await notifyAndFlush(tenant, { topic: "t" });
    await pushService.wait(live.id, 1);
    // the three were fanned out in one job; the live one's arrival means the others were not sent
    expect((await pushService.received(expired.id)).attempts).toBe(0);
    expect((await pushService.received(elsewhere.id)).attempts).toBe(0);
  });

  it("sends a keyless target the message plain and records the outcome like any other", async () => {
    const tenant = await createTenant();
    const ok = await keylessSubscriber();
    const gone = await keylessSubscriber({ kind: "gone" });
    const ids: number[] = [];
    for (const subscriber of [ok, gone]) {
      const response = await subscribeWith({ ALLOW_INSECURE_PUSH_RESOURCES: "true" }, tenant.notify_token, {
        topic: "t",
        push_services: { unified_push: { endpoint: subscriber.endpoint } },
      });
      ids.push(await subscriptionIdOf((await response.json<{ id: string }>()).id));
    }
    const job: DeliveryJob = {
      tenantId: tenant.id,
      message: { xml: "<push-message/>", ttl: 60, urgency: "low", topic: null },
      targets: [ok, gone].map((subscriber, i) => ({ subscriptionId: ids[i], tenantId: tenant.id, endpoint: subscriber.endpoint, plain: true as const })),
      attempt: 1,
    };
    await deliver([job], env, transportsFor(env));
    const { received } = await pushService.received(ok.id);
    expect(received.map((m) => [m.xml, m.ttl, m.urgency])).toEqual([["<push-message/>", 60, "low"]]);
    expect((await subscription(ids[0]))!.last_success_at).toBeGreaterThan(0);
    expect(await subscription(ids[1])).toBeNull();
    expect(await pushService.errors()).toEqual([]);
  });
});
