// FCM topic membership in D1 (issue 16 item 4): every way a member leaves writes its leaving row
// (migrations/0014's triggers), whichever statement made it leave; nothing else does.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { fcmTopicOf, newFcmTopicName, triggersKey } from "../../src/store/fcm-topics";
import { bearer, call, createTenant, fcmService, type TestTenant } from "../helpers";

const group = { content_update_depth: 1 as const, property_update_depth: null, property_update_props: null };

/** A tenant with `n` FCM registrations on topic "t", each a member of the group's FCM topic. */
async function members(n: number): Promise<{ tenant: TestTenant; name: string; ids: string[]; subscriptions: number[] }> {
  const tenant = await createTenant();
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const response = await call("/v1/subscriptions", {
      method: "POST",
      headers: bearer(tenant.notify_token),
      json: { topic: "t", trigger: { content_update: { depth: 1 } }, push_services: { fcm: { registration_token: await fcmService.token() } } },
    });
    ids.push((await response.json<{ id: string }>()).id);
  }
  const name = await fcmTopicOf(env.DB, tenant.id, "t", group, Math.floor(Date.now() / 1000));
  await env.DB.prepare("UPDATE registrations SET fcm_topic = ? WHERE tenant_id = ?").bind(name, tenant.id).run();
  const subscriptions = [];
  for (const id of ids) subscriptions.push((await env.DB.prepare("SELECT subscription_id FROM registrations WHERE id = ?").bind(id).first<{ subscription_id: number }>())!.subscription_id);
  return { tenant, name, ids, subscriptions };
}

const leaving = async (name: string) =>
  (await env.DB.prepare("SELECT subscription_id, tenant_id, token_digest, sealed_token FROM fcm_topic_leaving WHERE name = ? ORDER BY subscription_id").bind(name).all<Record<string, unknown>>()).results;

describe("fcm_topics", () => {
  it("names a group's topic once, randomly: pd- and 22 base64url characters, the same for every later fan-out", async () => {
    const tenant = await createTenant();
    const now = Math.floor(Date.now() / 1000);
    const first = await fcmTopicOf(env.DB, tenant.id, "t", group, now);
    expect(first).toMatch(/^pd-[A-Za-z0-9_-]{22}$/);
    expect(await fcmTopicOf(env.DB, tenant.id, "t", group, now)).toBe(first);
    expect(await fcmTopicOf(env.DB, tenant.id, "t", { ...group, content_update_depth: 0 }, now)).not.toBe(first);
    expect(new Set(Array.from({ length: 100 }, newFcmTopicName)).size).toBe(100);
    expect(triggersKey(group)).toBe("[1,null,null]");
  });
});

describe("fcm_topic_leaving: written by the statement that makes a member leave", () => {
  it("a registration deleted: its token, sealed as stored", async () => {
    const { name, ids, subscriptions } = await members(2);
    const stored = await env.DB.prepare("SELECT identifier, sealed_token FROM subscriptions WHERE id = ?").bind(subscriptions[0]).first<{ identifier: string; sealed_token: string }>();
    // the subscription goes with its last registration: the copy outlives both
    expect((await call(`/v1/registrations/${ids[0]}`, { method: "DELETE" })).status).toBe(204);
    expect(await env.DB.prepare("SELECT 1 FROM subscriptions WHERE id = ?").bind(subscriptions[0]).first()).toBeNull();
    expect(await leaving(name)).toEqual([{ subscription_id: subscriptions[0], tenant_id: expect.any(String), token_digest: stored!.identifier, sealed_token: stored!.sealed_token }]);
  });

  it("a subscription deleted first, its registrations cascading; a tenant deleted; triggers changed", async () => {
    const a = await members(2);
    await env.DB.prepare("DELETE FROM subscriptions WHERE id = ?").bind(a.subscriptions[0]).run();
    expect((await leaving(a.name)).map((r) => r.subscription_id)).toEqual([a.subscriptions[0]]);

    const b = await members(2);
    await env.DB.prepare("DELETE FROM tenants WHERE id = ?").bind(b.tenant.id).run();
    // the topic went with its tenant; the removals wait for the cron
    expect((await leaving(b.name)).map((r) => r.subscription_id).sort()).toEqual([...b.subscriptions].sort());
    expect(await env.DB.prepare("SELECT 1 FROM fcm_topics WHERE name = ?").bind(b.name).first()).toBeNull();

    const c = await members(2);
    await env.DB.prepare("UPDATE registrations SET property_update_depth = 0 WHERE id = ?").bind(c.ids[1]).run();
    expect((await leaving(c.name)).map((r) => r.subscription_id)).toEqual([c.subscriptions[1]]);
    expect(await env.DB.prepare("SELECT fcm_topic FROM registrations WHERE id = ?").bind(c.ids[1]).first()).toEqual({ fcm_topic: null });
  });

  it("nothing else: a renewal, a member joining, a registration that is no member", async () => {
    const { name, ids } = await members(1);
    await env.DB.prepare("UPDATE registrations SET expires_at = expires_at + 60, updated_at = updated_at + 1 WHERE id = ?").bind(ids[0]).run();
    await env.DB.prepare("UPDATE registrations SET fcm_topic = NULL WHERE id = ?").bind(ids[0]).run();
    await env.DB.prepare("UPDATE registrations SET fcm_topic = ? WHERE id = ?").bind(name, ids[0]).run();
    await env.DB.prepare("UPDATE registrations SET fcm_topic = NULL WHERE id = ?").bind(ids[0]).run();
    await env.DB.prepare("DELETE FROM registrations WHERE id = ?").bind(ids[0]).run();
    expect(await leaving(name)).toEqual([]);
  });
});
