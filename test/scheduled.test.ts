import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { bearer, call, createTenant, webPushBody } from "./helpers";

describe("scheduled purge", () => {
  it("deletes expired registrations and the subscriptions left without any", async () => {
    const tenant = await createTenant();
    const shared = await webPushBody();
    const register = async (topic: string, body: Record<string, unknown>) =>
      (await (await call("/v1/subscriptions", { method: "POST", headers: bearer(tenant.notify_token), json: { ...body, topic } })).json()) as { id: string };
    const expiring = await register("a", shared);
    const living = await register("b", shared);
    const lonely = await register("c", await webPushBody());
    const past = Math.floor(Date.now() / 1000) - 1;
    await env.DB.prepare("INSERT INTO dead_letters (tenant_id, queue, body, created_at) VALUES (?, 'q', '{}', ?), (?, 'q', '{\"fresh\":true}', ?)")
      .bind(tenant.id, past - 31 * 86_400, tenant.id, past)
      .run();
    await env.DB.prepare("UPDATE registrations SET expires_at = ? WHERE id IN (?, ?)").bind(past, expiring.id, lonely.id).run();

    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "17 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);

    const ids = (await env.DB.prepare("SELECT id FROM registrations WHERE tenant_id = ?").bind(tenant.id).all<{ id: string }>()).results;
    expect(ids.map((r) => r.id)).toEqual([living.id]);
    const subs = await env.DB.prepare("SELECT identifier FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).all<{ identifier: string }>();
    expect(subs.results.map((s) => s.identifier)).toEqual([(shared.push_services as any).web_push.endpoint]);
    const letters = await env.DB.prepare("SELECT body FROM dead_letters WHERE tenant_id = ?").bind(tenant.id).all<{ body: string }>();
    expect(letters.results).toEqual([{ body: '{"fresh":true}' }]);
  });

  it("deletes subscriptions failing for FAILING_SUBSCRIPTION_DAYS with their registrations, and keeps the rest", async () => {
    const tenant = await createTenant();
    const register = async (topic: string) =>
      (await (await call("/v1/subscriptions", { method: "POST", headers: bearer(tenant.notify_token), json: { ...(await webPushBody()), topic } })).json()) as { id: string };
    const [stale, failing, healthy] = [await register("a"), await register("b"), await register("c")];
    const now = Math.floor(Date.now() / 1000);
    const setFailing = (registrationId: string, since: number | null) =>
      env.DB.prepare("UPDATE subscriptions SET failing_since = ? WHERE id = (SELECT subscription_id FROM registrations WHERE id = ?)").bind(since, registrationId).run();
    await setFailing(stale.id, now - 3 * 86_400 - 60);
    await setFailing(failing.id, now - 3 * 86_400 + 3600);
    await setFailing(healthy.id, null);

    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "17 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);

    const ids = (await env.DB.prepare("SELECT id FROM registrations WHERE tenant_id = ? ORDER BY topic").bind(tenant.id).all<{ id: string }>()).results;
    expect(ids.map((r) => r.id)).toEqual([failing.id, healthy.id]);
    const subs = await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first("n");
    expect(subs).toBe(2);
  });
});
