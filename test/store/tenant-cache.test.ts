// Tenant rows kept in the isolate (issue 15): a notify reads no D1 for its tenant while the row is
// fresh; whatever the operator changes holds at once in this isolate.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { app } from "../../src/app";
import { forgetAllTenants, keptTenants } from "../../src/store/tenant-cache";
import { ADMIN, bearer, createTenant, grant, type TestTenant } from "../helpers";

const ORIGIN = "https://director.test";
const as = (over: Record<string, string> = {}) => ({ ...env, ...over }) as Env;
const notify = (tenant: TestTenant, over: Record<string, string> = {}, token = tenant.notify_token) =>
  app.fetch(new Request(`${ORIGIN}/v1/notify`, { method: "POST", headers: { ...bearer(token), "Content-Type": "application/json" }, body: JSON.stringify({ topic: "cal" }) }), as(over));
const admin = (path: string, method = "POST", json?: unknown) =>
  app.fetch(new Request(`${ORIGIN}/v1/admin/tenants${path}`, { method, headers: { ...ADMIN, "Content-Type": "application/json" }, body: json === undefined ? undefined : JSON.stringify(json) }), as());
/** A change D1 gets behind the director's back, as another isolate's would be. */
const disableInD1 = (tenant: TestTenant) => env.DB.prepare("UPDATE tenants SET disabled_at = 1 WHERE id = ?").bind(tenant.id).run();

afterEach(() => {
  vi.useRealTimers();
  forgetAllTenants();
});

describe("the tenant cache", () => {
  it("serves a fresh row without D1, and reads D1 again once TENANT_CACHE_SECONDS have passed", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const tenant = await createTenant();
    expect((await notify(tenant, { TENANT_CACHE_SECONDS: "5" })).status).toBe(202);
    await disableInD1(tenant);
    // kept: this isolate has not heard of it
    expect((await notify(tenant, { TENANT_CACHE_SECONDS: "5" })).status).toBe(202);
    vi.advanceTimersByTime(4_000);
    expect((await notify(tenant, { TENANT_CACHE_SECONDS: "5" })).status).toBe(202);
    vi.advanceTimersByTime(1_001);
    const stale = await notify(tenant, { TENANT_CACHE_SECONDS: "5" });
    expect(stale.status).toBe(403);
    expect(await stale.json()).toMatchObject({ error: { code: "tenant_disabled" } });
  });

  it("is off at TENANT_CACHE_SECONDS=0: every request reads D1", async () => {
    const tenant = await createTenant();
    expect((await notify(tenant, { TENANT_CACHE_SECONDS: "0" })).status).toBe(202);
    await disableInD1(tenant);
    expect((await notify(tenant, { TENANT_CACHE_SECONDS: "0" })).status).toBe(403);
    expect(keptTenants()).toBe(0);
  });

  it("holds a rotation, a disable, an enable and new limits at once in this isolate", async () => {
    const tenant = await createTenant();
    const userGrant = await grant(tenant, { topics: ["cal"] });
    const registrations = (token: string) => app.fetch(new Request(`${ORIGIN}/v1/registrations`, { headers: bearer(token) }), as());
    expect((await notify(tenant)).status).toBe(202);
    expect((await registrations(userGrant)).status).toBe(200);

    const rotated = await admin(`/${tenant.id}/rotate`);
    expect(rotated.status).toBe(200);
    const fresh = (await rotated.json()) as { notify_token: string; grant_secret: string };
    const old = await notify(tenant);
    expect(old.status).toBe(401);
    expect((await registrations(userGrant)).status).toBe(401);
    const next = { ...tenant, ...fresh };
    expect((await notify(next)).status).toBe(202);
    expect((await registrations(await grant(next, { topics: ["cal"] }))).status).toBe(200);

    expect((await admin(`/${tenant.id}/disable`)).status).toBe(200);
    expect((await notify(next)).status).toBe(403);
    expect((await admin(`/${tenant.id}/enable`)).status).toBe(200);
    expect((await notify(next)).status).toBe(202);

    // a notify budget of 1 a minute, set now: the next notify is the second this minute
    const limits = { registrations: null, registrations_per_user: null, notify_per_minute: 1, sockets: null, sockets_per_user: null };
    expect((await admin(`/${tenant.id}/limits`, "PUT", limits)).status).toBe(200);
    const refused = await notify(next);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: { code: "rate_limited", limit: "notify_per_minute", max: 1 } });
  });

  it("keeps no row for an id D1 does not know: made-up tokens cannot fill it", async () => {
    const before = keptTenants();
    for (let i = 0; i < 10; i++) {
      const madeUp = `pdn_${"a".repeat(22)}${i.toString(16).padStart(2, "0")}_${"x".repeat(43)}`;
      expect((await notify({ id: "", name: "", grant_secret: "", notify_token: madeUp })).status).toBe(401);
    }
    expect(keptTenants()).toBe(before);
  });
});
