// The notify budget (issue 12) through `POST /v1/notify`: each change counts in the tenant's
// leaky bucket; over it, 429 `rate_limited` with Retry-After, and nothing reaches a hub.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { leaseSize } from "../../src/limits/bucket";
import type { TenantLimiter } from "../../src/limits/tenant-limiter";
import { tenantLimiter } from "../../src/limits/tenant-limiter";
import { ADMIN, bearer, call, createTenant, type TestTenant } from "../helpers";

/** Sets the tenant's notify limit through the admin API, the rest the defaults. */
async function limitNotifies(tenant: TestTenant, perMinute: number) {
  const json = { registrations: null, registrations_per_user: null, notify_per_minute: perMinute, sockets: null, sockets_per_user: null };
  const response = await call(`/v1/admin/tenants/${tenant.id}/limits`, { method: "PUT", headers: ADMIN, json });
  expect(response.status, await response.clone().text()).toBe(200);
}

const notify = (tenant: TestTenant, json: unknown) => call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json });

const batch = (n: number, topic = "t") => ({ notifications: Array.from({ length: n }, () => ({ topic })) });

/** Notifies one change `count` times; every one must be accepted. */
async function notifyTimes(tenant: TestTenant, count: number, topic = "t") {
  for (let i = 0; i < count; i++) {
    const response = await notify(tenant, { topic });
    expect(response.status, `notify ${i + 1} of ${count}: ${await response.clone().text()}`).toBe(202);
  }
}

interface ErrorBody {
  error: { code: string; message: string; limit?: string; max?: number };
}

/** A topic's hub holds nothing: no pending change, no alarm to flush one. */
async function expectUntouched(tenant: TestTenant, topic: string) {
  const hub = topicHub(env, tenant.id, topic);
  expect(await runInDurableObject(hub, (_instance, ctx) => ctx.storage.list().then((entries) => [...entries.keys()]))).toEqual([]);
  expect(await runDurableObjectAlarm(hub)).toBe(false);
}

/** The level of the tenant's bucket, as the limiter holds it. */
const bucketLevel = (tenant: TestTenant, perMinute: number) =>
  runInDurableObject(tenantLimiter(env, tenant.id), (instance: TenantLimiter) => instance.notifyLevel(perMinute));

describe("the notify budget", () => {
  it("passes a burst up to the limit, then refuses with 429 rate_limited and Retry-After", async () => {
    const tenant = await createTenant();
    await limitNotifies(tenant, 30);
    const started = Date.now();
    await notifyTimes(tenant, 30);
    const refused = await notify(tenant, { topic: "t" });
    // the bucket drains 0.5 per second: the 31st is refused only while less than 1 has drained
    expect(refused.status, `31st notify, ${Date.now() - started} ms after the first`).toBe(429);
    const retryAfter = refused.headers.get("Retry-After");
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // 1 over at 0.5 per second: 2 s at most
    expect(Number(retryAfter)).toBeLessThanOrEqual(2);
    const body = await refused.json<ErrorBody>();
    expect(body).toEqual({ error: { code: "rate_limited", message: expect.any(String), limit: "notify_per_minute", max: 30 } });
    expect(body.error.message).toContain("30 changes per minute");
  });

  it("lets a refused notify reach no hub and count nothing", async () => {
    const tenant = await createTenant();
    await limitNotifies(tenant, 30);
    await notifyTimes(tenant, 30);
    const level = await bucketLevel(tenant, 30);
    for (let i = 0; i < 3; i++) expect((await notify(tenant, { topic: "refused-only" })).status).toBe(429);
    expect((await notify(tenant, batch(5, "refused-only"))).status).toBe(429);
    await expectUntouched(tenant, "refused-only");
    // only drained since: the refusals added nothing
    expect(await bucketLevel(tenant, 30)).toBeLessThanOrEqual(level);
  });

  it("refuses a batch larger than the limit itself with 429 quota_exceeded, counting nothing", async () => {
    const tenant = await createTenant();
    await limitNotifies(tenant, 30);
    const refused = await notify(tenant, batch(31, "too-big"));
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBeNull();
    const body = await refused.json<ErrorBody>();
    expect(body).toEqual({ error: { code: "quota_exceeded", message: expect.any(String), limit: "notify_per_minute", max: 30 } });
    expect(body.error.message).toContain("30");
    await expectUntouched(tenant, "too-big");
    expect(await bucketLevel(tenant, 30)).toBe(0);
    // the whole budget is still there
    expect((await notify(tenant, { topic: "t" })).status).toBe(202);
    expect((await notify(tenant, batch(29))).status).toBe(202);
  });

  it("counts a batch of n as n", async () => {
    const tenant = await createTenant();
    await limitNotifies(tenant, 30);
    expect((await notify(tenant, batch(20))).status).toBe(202);
    const over = await notify(tenant, batch(11));
    expect(over.status).toBe(429);
    expect((await over.json<ErrorBody>()).error.code).toBe("rate_limited");
    // 1 over at 0.5 per second
    expect(over.headers.get("Retry-After")).toBe("2");
    expect((await notify(tenant, batch(10))).status).toBe(202);
  });

  it("makes a raised limit usable at once", async () => {
    const tenant = await createTenant();
    await limitNotifies(tenant, 30);
    await notifyTimes(tenant, 30);
    expect((await notify(tenant, { topic: "t" })).status).toBe(429);
    await limitNotifies(tenant, 60);
    // 30 more fit under 60 (less the lease the first ask takes)
    await notifyTimes(tenant, 29);
  });

  it("keeps tenants apart: another tenant is unaffected by the first's exhaustion", async () => {
    const [first, second] = await Promise.all([createTenant("first"), createTenant("second")]);
    await Promise.all([limitNotifies(first, 30), limitNotifies(second, 30)]);
    await notifyTimes(first, 30);
    expect((await notify(first, { topic: "t" })).status).toBe(429);
    await notifyTimes(second, 30);
    expect((await notify(first, { topic: "t" })).status).toBe(429);
  });

  it("accepts 40 concurrent notifies of a tenant within its limits", async () => {
    const tenant = await createTenant();
    const started = Date.now();
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => notify(tenant, { topic: `concurrent-${i % 4}` })));
    const elapsed = Date.now() - started;
    console.log(`40 concurrent notifies: ${elapsed} ms`);
    expect(responses.map((response) => response.status)).toEqual(Array(40).fill(202));
    // each counted once, the leases at most on top (leaseSize(6000) = 100 per ask)
    expect(await bucketLevel(tenant, 6000)).toBeGreaterThanOrEqual(39);
  });

  it("counts 40 concurrent notifies as 40, plus at most the one lease an isolate holds", async () => {
    const tenant = await createTenant();
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => notify(tenant, { topic: `concurrent-${i % 4}` })));
    expect(responses.map((response) => response.status)).toEqual(Array(40).fill(202));
    // an isolate leases at most a second's worth (leaseSize(6000) = 100) beyond what it admitted
    const usage = await call(`/v1/admin/tenants/${tenant.id}/limits`, { headers: ADMIN });
    const { notify_per_minute } = (await usage.json<{ usage: { notify_per_minute: number } }>()).usage;
    expect(notify_per_minute).toBeGreaterThanOrEqual(39);
    expect(notify_per_minute).toBeLessThanOrEqual(40 + leaseSize(6000));
  });
});
