// GET /v1/stats (the tenant's notify token) and GET /v1/admin/tenants/{id}/stats (the operator).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { nowSeconds } from "../../src/expiry";
import { recordDeliveryStats } from "../../src/store/stats";
import { ADMIN, bearer, call, createTenant, grant, registerSubscriber, pushService } from "../helpers";

const zeros = { delivered: 0, retried: 0, refused: 0, gone: 0, dead_lettered: 0, tests: 0 };

describe("stats routes", () => {
  it("show the tenant its counts, and the operator any tenant's, in the same shape", async () => {
    const tenant = await createTenant();
    const other = await createTenant("other");
    const now = nowSeconds();
    await recordDeliveryStats(env.DB, [{ tenantId: tenant.id, transport: "web_push", messages: 1, delivered: 2, retried: 1 }], now);
    await recordDeliveryStats(env.DB, [{ tenantId: other.id, transport: "fcm", messages: 7 }], now);
    const registration = await registerSubscriber(tenant, "calendar-1", await pushService.subscriber());
    await env.DB.prepare("UPDATE subscriptions SET failing_since = ? WHERE id = (SELECT subscription_id FROM registrations WHERE id = ?)").bind(now, registration.id).run();

    const response = await call("/v1/stats", { headers: bearer(tenant.notify_token) });
    expect(response.status).toBe(200);
    const shown = (await response.json()) as Record<string, unknown>;
    expect(shown).toEqual({
      tenant_id: tenant.id,
      from: expect.any(Number),
      to: expect.any(Number),
      messages: 1,
      deliveries: { ...zeros, delivered: 2, retried: 1 },
      by_transport: { web_push: { messages: 1, ...zeros, delivered: 2, retried: 1 }, fcm: { messages: 0, ...zeros } },
      subscriptions: { total: 1, failing: 1 },
    });
    expect((shown.to as number) - (shown.from as number)).toBeGreaterThan(23 * 3600);
    expect((shown.to as number) - (shown.from as number)).toBeLessThanOrEqual(24 * 3600);

    const operator = await call(`/v1/admin/tenants/${tenant.id}/stats?hours=720`, { headers: ADMIN });
    expect(operator.status).toBe(200);
    expect(await operator.json()).toMatchObject({ tenant_id: tenant.id, messages: 1, subscriptions: { total: 1, failing: 1 } });
    expect(await (await call(`/v1/admin/tenants/${other.id}/stats`, { headers: ADMIN })).json()).toMatchObject({ messages: 7, by_transport: { fcm: { messages: 7 } } });
  });

  it("takes ?hours= from 1 to 720, else 400", async () => {
    const tenant = await createTenant();
    for (const hours of ["1", "720"]) {
      const response = await call(`/v1/stats?hours=${hours}`, { headers: bearer(tenant.notify_token) });
      expect(response.status, hours).toBe(200);
      const { from, to } = (await response.json()) as { from: number; to: number };
      expect(to - from, hours).toBeLessThanOrEqual(Number(hours) * 3600);
      expect(from % 3600).toBe(0);
    }
    for (const hours of ["0", "721", "1.5", "a", ""]) {
      const response = await call(`/v1/stats?hours=${hours}`, { headers: bearer(tenant.notify_token) });
      expect(response.status, hours).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
      expect((await call(`/v1/admin/tenants/${tenant.id}/stats?hours=${hours}`, { headers: ADMIN })).status, hours).toBe(400);
    }
  });

  it("needs the notify token (a grant is 403) or the admin token; an unknown tenant is 404", async () => {
    const tenant = await createTenant();
    const withGrant = await call("/v1/stats", { headers: bearer(await grant(tenant)) });
    expect(withGrant.status).toBe(403);
    expect(((await withGrant.json()) as { error: { code: string } }).error.code).toBe("tenant_token_required");
    expect((await call("/v1/stats")).status).toBe(401);
    expect((await call("/v1/stats", { headers: ADMIN })).status).toBe(401);
    expect((await call(`/v1/admin/tenants/${tenant.id}/stats`, { headers: bearer(tenant.notify_token) })).status).toBe(401);
    expect((await call("/v1/admin/tenants/0123456789abcdef01234567/stats", { headers: ADMIN })).status).toBe(404);
  });
});
