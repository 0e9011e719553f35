// The deliveries consumer's contract (issue 11): per-message ack and retry, per-target retries with
// `next_attempt_at`, the 413 smallest form, the failing-subscription window, the director's own
// faults, and retrying a dead letter. Real D1 and queues; the stand-in push service decrypts.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { deliver, transportsFor } from "../../src/queues/deliveries";
import type { DeliveryJob } from "../../src/queues/jobs";
import type { QueuedFcmTarget } from "../../src/transports/fcm";
import { Meter, meteredEnv } from "../../src/meter";
import { ADMIN, bearer, call, createTenant, fcmService, pushService, queuedTarget, registerSubscriber, type TestTenant } from "../helpers";

const subscription = (id: number) =>
  env.DB.prepare("SELECT * FROM subscriptions WHERE id = ?").bind(id).first<Record<string, number | string | null>>();

const subscriptionIdOf = async (registrationId: string) =>
  (await env.DB.prepare("SELECT subscription_id FROM registrations WHERE id = ?").bind(registrationId).first<{ subscription_id: number }>())!
    .subscription_id;

const head = '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:"><topic>t</topic>';
const message = {
  xml: `${head}<content-update><D:sync-token>http://dav.example/sync/7</D:sync-token></content-update></push-message>`,
  smallestXml: `${head}<content-update/></push-message>`,
  ttl: 600,
  urgency: "normal" as const,
  topic: null,
};

async function jobFor(tenant: TestTenant, behaviour: unknown, over: Partial<DeliveryJob> = {}) {
  const subscriber = await pushService.subscriber(behaviour);
  const registration = await registerSubscriber(tenant, "t", subscriber);
  const job: DeliveryJob = { tenantId: tenant.id, message, targets: [await queuedTarget(registration.id)], attempt: 1, deadline: Math.floor(Date.now() / 1000) + 600, ...over };
  return { subscriber, registration, id: await subscriptionIdOf(registration.id), job };
}

describe("deliveries consumer", () => {
  it("acks each message once its follow-ups are written and retries only the one whose handling threw", async () => {
    const tenant = await createTenant();
    const ok = await jobFor(tenant, { kind: "accept" });
    // a retry without its message: reading its TTL throws
    const broken = { ...ok.job, attempt: 2, message: undefined } as unknown as DeliveryJob;
    const batch = createMessageBatch<DeliveryJob>("push-deliveries", [
      { id: "good", timestamp: new Date(), attempts: 1, body: ok.job },
      { id: "bad", timestamp: new Date(), attempts: 1, body: broken },
    ]);
    const ctx = createExecutionContext();
    await worker.queue!(batch as MessageBatch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.ackAll).toBe(false);
    expect(result.retryBatch.retry).toBe(false);
    expect(result.explicitAcks).toEqual(["good"]);
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(["bad"]);
    expect((await pushService.received(ok.subscriber.id)).received).toHaveLength(1);
  });

  it("writes a batch's outcomes and hourly counts once for all its jobs, the counts added up per tenant", async () => {
    const [one, two] = [await createTenant(), await createTenant()];
    const jobs = [await jobFor(one, { kind: "accept" }), await jobFor(one, { kind: "accept" }), await jobFor(one, { kind: "accept" }), await jobFor(two, { kind: "accept" })];
    const meter = new Meter();
    expect(await deliver(jobs.map((j) => j.job), meteredEnv(env, meter), transportsFor(env))).toEqual([null, null, null, null]);
    // the subscriptions' bound keys read, their successes written, one count row per tenant; a
    // write per job made it 1 + 4 × 2
    expect(meter.drain().d1_queries).toBeLessThanOrEqual(4);
    for (const j of jobs) expect((await subscription(j.id))!.last_success_at).not.toBeNull();
    const delivered = async (tenantId: string) =>
      (await env.DB.prepare("SELECT SUM(delivered) AS n FROM delivery_stats WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>())!.n;
    expect([await delivered(one.id), await delivered(two.id)]).toEqual([3, 1]);
  });

  it("acks dead letters one by one as they are written", async () => {
    const tenant = await createTenant();
    const batch = createMessageBatch("push-dead-letters", [
      { id: "a", timestamp: new Date(), attempts: 1, body: { tenantId: tenant.id, reason: "503; Retry-After 3600 s is past the TTL (58 s left)" } },
      { id: "b", timestamp: new Date(), attempts: 1, body: { tenantId: tenant.id } },
    ]);
    const ctx = createExecutionContext();
    await worker.queue!(batch as MessageBatch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.ackAll).toBe(false);
    expect(result.explicitAcks).toEqual(["a", "b"]);
    const rows = await env.DB.prepare("SELECT reason FROM dead_letters WHERE tenant_id = ? ORDER BY id").bind(tenant.id).all<{ reason: string | null }>();
    expect(rows.results).toEqual([{ reason: "503; Retry-After 3600 s is past the TTL (58 s left)" }, { reason: null }]);
  });

  it("retries only the target that failed, records when, and sends the retry the time left as TTL", async () => {
    const tenant = await createTenant();
    const flaky = await jobFor(tenant, { kind: "unavailable", times: 1, retryAfter: 1 });
    const fine = await pushService.subscriber();
    const fineRegistration = await registerSubscriber(tenant, "t", fine);
    const job = { ...flaky.job, targets: [...flaky.job.targets, await queuedTarget(fineRegistration.id)], deadline: Math.floor(Date.now() / 1000) + 120 };
    const before = Math.floor(Date.now() / 1000);
    expect(await deliver([job], env, transportsFor(env))).toEqual([null]);
    const row = await subscription(flaky.id);
    expect(row).toMatchObject({ consecutive_failures: 1, last_failure_status: 503 });
    expect(row!.failing_since).toBeGreaterThanOrEqual(before);
    expect(row!.next_attempt_at).toBeGreaterThanOrEqual(before + 1);
    const { received } = await pushService.wait(flaky.subscriber.id, 1, 2);
    expect(received[0].ttl).toBeLessThanOrEqual(120);
    expect(received[0].ttl).toBeGreaterThan(100);
    expect((await pushService.received(fine.id)).attempts).toBe(1);
    await vi.waitFor(async () => expect(await subscription(flaky.id)).toMatchObject({ consecutive_failures: 0, failing_since: null, next_attempt_at: null }), {
      timeout: 5000,
      interval: 50,
    });
  });

  it("sends nothing for a job not yet due (a wait past the queue's maximum delay): it goes back to the queue", async () => {
    const tenant = await createTenant();
    const later = await jobFor(tenant, { kind: "accept" }, { attempt: 9, dueAt: Math.floor(Date.now() / 1000) + 50_000, deadline: Math.floor(Date.now() / 1000) + 86_400 });
    expect(await deliver([later.job], env, transportsFor(env))).toEqual([null]);
    expect((await pushService.received(later.subscriber.id)).attempts).toBe(0);
  });

  it("resends at once in the smallest form after a 413", async () => {
    const tenant = await createTenant();
    const large = await jobFor(tenant, { kind: "status", status: 413, times: 1 });
    expect(await deliver([large.job], env, transportsFor(env))).toEqual([null]);
    const { received, attempts } = await pushService.received(large.subscriber.id);
    expect(attempts).toBe(2);
    expect(received.map((m) => m.xml)).toEqual([message.smallestXml]);
    expect((await subscription(large.id))!.last_success_at).toBeGreaterThan(0);
  });

  it("records a refusal with its status and ≤ 200 characters of the push service's body, without retrying", async () => {
    const tenant = await createTenant();
    const refused = await jobFor(tenant, { kind: "status", status: 403, body: `invalid VAPID key ${"x".repeat(300)}` });
    expect(await deliver([refused.job], env, transportsFor(env))).toEqual([null]);
    const row = await subscription(refused.id);
    expect(row).toMatchObject({ consecutive_failures: 1, last_failure_status: 403, next_attempt_at: null });
    expect(row!.last_failure_reason).toBe(`push service answered 403: invalid VAPID key ${"x".repeat(200 - 18)}`);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM dead_letters WHERE tenant_id = ?").bind(tenant.id).first("n")).toBe(0);
    expect((await pushService.received(refused.subscriber.id)).attempts).toBe(1);
    // one upsert per job into the hourly counts
    const stats = await env.DB.prepare("SELECT transport, delivered, refused, retried FROM delivery_stats WHERE tenant_id = ?").bind(tenant.id).all();
    expect(stats.results).toEqual([{ transport: "web_push", delivered: 0, refused: 1, retried: 0 }]);
  });

  it("deletes a subscription failing for FAILING_SUBSCRIPTION_DAYS, with its registrations, at its next failure", async () => {
    const tenant = await createTenant();
    const old = await jobFor(tenant, { kind: "status", status: 403 });
    const recent = await jobFor(tenant, { kind: "status", status: 403 });
    const now = Math.floor(Date.now() / 1000);
    await env.DB.prepare("UPDATE subscriptions SET failing_since = ? WHERE id = ?").bind(now - 3 * 86_400 - 5, old.id).run();
    await env.DB.prepare("UPDATE subscriptions SET failing_since = ? WHERE id = ?").bind(now - 2 * 86_400, recent.id).run();
    await deliver([old.job, recent.job], env, transportsFor(env));
    expect(await subscription(old.id)).toBeNull();
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE id = ?").bind(old.registration.id).first("n")).toBe(0);
    expect(await subscription(recent.id)).toMatchObject({ failing_since: now - 2 * 86_400, consecutive_failures: 1 });
  });

  it("does not count the director's own faults against a subscription", async () => {
    const tenant = await createTenant();
    const target = await jobFor(tenant, { kind: "accept" });
    expect(await deliver([target.job], { ...env, SECRETS_KEY: "" }, transportsFor(env))).toEqual([null]);
    const row = await subscription(target.id);
    expect(row).toMatchObject({ consecutive_failures: 0, failing_since: null, last_failure_at: null });
    expect(row!.next_attempt_at).not.toBeNull();
    // the retry, with the key back, arrives
    await pushService.wait(target.subscriber.id, 1);
  });

  it("delivers an FCM job queued before platforms existed (its target names none) as an Android app's, and acks it", async () => {
    const tenant = await createTenant();
    const token = await fcmService.token("accept");
    const registered = await call("/v1/subscriptions", { method: "POST", headers: bearer(tenant.notify_token), json: { topic: "t", push_services: { fcm: { registration_token: token } } } });
    const id = await subscriptionIdOf((await registered.json<{ id: string }>()).id);
    const row = (await env.DB.prepare("SELECT identifier, sealed_token FROM subscriptions WHERE id = ?").bind(id).first<{ identifier: string; sealed_token: string }>())!;
    // as the previous release queued it: no platform on the target
    const target: QueuedFcmTarget = { subscriptionId: id, tenantId: tenant.id, tokenDigest: row.identifier, sealedToken: row.sealed_token };
    const job: DeliveryJob = { tenantId: tenant.id, message: { ...message, data: { topic: "t" } }, transport: "fcm", targets: [target], attempt: 1, deadline: Math.floor(Date.now() / 1000) + 600 };
    const batch = createMessageBatch<DeliveryJob>("push-deliveries", [{ id: "old", timestamp: new Date(), attempts: 1, body: job }]);
    const ctx = createExecutionContext();
    await worker.queue!(batch as MessageBatch, env);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["old"]);
    const { received, errors } = await fcmService.state();
    expect(errors).toEqual([]);
    expect(received[token]).toEqual([{ platform: "android", data: { topic: "t", push_message: message.xml }, android: { priority: "NORMAL", ttl: "600s" } }]);
    expect(await subscription(id)).toMatchObject({ consecutive_failures: 0, last_success_at: expect.any(Number) });
  });

  it("re-queues a dead letter of an FCM job with each token's platform as stored now, letters from before platforms included", async () => {
    const tenant = await createTenant();
    const token = await fcmService.token("accept");
    const registered = await call("/v1/subscriptions", {
      method: "POST",
      headers: bearer(tenant.notify_token),
      json: { topic: "t", push_services: { fcm: { registration_token: token, platform: "ios" } } },
    });
    const id = await subscriptionIdOf((await registered.json<{ id: string }>()).id);
    const now = Math.floor(Date.now() / 1000);
    // a letter the previous release wrote: its target names no platform
    const body = {
      tenantId: tenant.id,
      message: { ...message, data: { topic: "t" } },
      transport: "fcm",
      targets: [{ subscriptionId: id, tenantId: tenant.id, tokenDigest: "then", sealedToken: "then" }],
      attempt: 3,
      deadline: now - 1,
      reasons: { [id]: "FCM answered 503 UNAVAILABLE" },
      reason: "FCM answered 503 UNAVAILABLE; Retry-After 3600 s is past the TTL (1 s left)",
    };
    const letter = await env.DB.prepare("INSERT INTO dead_letters (tenant_id, queue, body, created_at, reason) VALUES (?, 'push-dead-letters', ?, ?, ?) RETURNING id")
      .bind(tenant.id, JSON.stringify(body), now, body.reason)
      .first<{ id: number }>();
    const retried = await call(`/v1/admin/dead-letters/${letter!.id}/retry`, { method: "POST", headers: ADMIN });
    expect(await retried.json()).toEqual({ id: letter!.id, queued: 1 });
    await vi.waitFor(async () => expect((await fcmService.state()).received[token]).toHaveLength(1), { timeout: 15_000, interval: 50 });
    const { received, errors } = await fcmService.state();
    expect(errors).toEqual([]);
    expect(received[token][0]).toMatchObject({ platform: "ios", apns: { headers: { "apns-priority": "5" } } });
    expect(received[token][0]).not.toHaveProperty("android");
  });

  it("re-queues a dead letter for its subscriptions still there, as a first attempt with a fresh lifetime", async () => {
    const tenant = await createTenant();
    const back = await jobFor(tenant, { kind: "unavailable", times: 1, retryAfter: 3600 });
    const now = Math.floor(Date.now() / 1000);
    await deliver([{ ...back.job, deadline: now + 30 }], env, transportsFor(env));
    const letter = await vi.waitFor(
      async () => {
        const row = await env.DB.prepare("SELECT id FROM dead_letters WHERE tenant_id = ?").bind(tenant.id).first<{ id: number }>();
        if (row === null) throw new Error("no dead letter yet");
        return row;
      },
      { timeout: 10_000, interval: 50 },
    );
    const retried = await call(`/v1/admin/dead-letters/${letter.id}/retry`, { method: "POST", headers: ADMIN });
    expect(retried.status).toBe(202);
    expect(await retried.json()).toEqual({ id: letter.id, queued: 1 });
    const { received } = await pushService.wait(back.subscriber.id, 1, 2);
    expect(received.map((m) => [m.xml, m.ttl])).toEqual([[message.xml, 600]]);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM dead_letters WHERE id = ?").bind(letter.id).first("n")).toBe(0);
    expect((await call(`/v1/admin/dead-letters/${letter.id}/retry`, { method: "POST", headers: ADMIN })).status).toBe(404);

    // every subscription gone: nothing to retry, the letter stays
    const gone = await jobFor(tenant, { kind: "accept" });
    const body = { ...gone.job, reasons: {}, reason: "503; Retry-After 3600 s is past the TTL (1 s left)" };
    await env.DB.prepare("DELETE FROM registrations WHERE subscription_id = ?").bind(gone.id).run();
    await env.DB.prepare("DELETE FROM subscriptions WHERE id = ?").bind(gone.id).run();
    const row = await env.DB.prepare("INSERT INTO dead_letters (tenant_id, queue, body, created_at, reason) VALUES (?, 'push-dead-letters', ?, ?, ?) RETURNING id")
      .bind(tenant.id, JSON.stringify(body), now, body.reason)
      .first<{ id: number }>();
    const nothing = await call(`/v1/admin/dead-letters/${row!.id}/retry`, { method: "POST", headers: ADMIN });
    expect(nothing.status).toBe(409);
    expect(await nothing.json()).toMatchObject({ error: { code: "nothing_to_retry" } });
  });
});
