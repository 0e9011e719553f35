// Registration quotas (issue 12): live registrations per tenant and per grant `sub`, on every
// route that creates one, counted in D1 in the transaction that writes.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { defaultLimits, type Limits } from "../../src/limits/limits";
import { liveRegistrations, liveRegistrationsSql, setTenantLimits } from "../../src/store/limits";
import { bearer, call, createTenant, grant, userAgentKeys, webPushBody, type TestTenant } from "../helpers";

const PUSH = "https://bitfire.at/webdav-push";

/** The tenant's limits: these, the rest the defaults (set in D1 as the PUT does). */
async function limit(tenant: TestTenant, limits: Partial<Limits>) {
  await setTenantLimits(env.DB, tenant.id, { ...defaultLimits(env), ...limits }, 0);
}

const userGrant = (tenant: TestTenant, sub: string, topics = ["cal"]) => grant(tenant, { topics }, { sub });

function subscribe(token: string, body: unknown, path = "/v1/subscriptions") {
  return call(path, { method: "POST", headers: bearer(token), json: body });
}

async function pushRegister(token: string, topic: string, endpoint: string) {
  const keys = await userAgentKeys();
  const body = `<?xml version="1.0" encoding="utf-8"?><push-register xmlns="${PUSH}" xmlns:D="DAV:"><subscription><web-push-subscription>
    <push-resource>${endpoint}</push-resource><content-encoding>aes128gcm</content-encoding>
    <subscription-public-key type="p256dh">${keys.p256dh}</subscription-public-key><auth-secret>${keys.auth}</auth-secret>
    </web-push-subscription></subscription></push-register>`;
  return call("/v1/register", { method: "POST", headers: { ...bearer(token), "Content-Type": "application/xml", "Push-Topic": topic }, body });
}

async function rows(tenant: TestTenant) {
  return (await env.DB.prepare(
    "SELECT (SELECT COUNT(*) FROM registrations WHERE tenant_id = ?1) AS registrations, (SELECT COUNT(*) FROM subscriptions WHERE tenant_id = ?1) AS subscriptions",
  )
    .bind(tenant.id)
    .first<{ registrations: number; subscriptions: number }>())!;
}

/** What the triggers keep, against a count of the rows. */
async function counters(tenant: TestTenant) {
  const { results } = await env.DB.prepare(
    `SELECT c.owner, c.registrations AS kept,
       (SELECT COUNT(*) FROM registrations r WHERE r.tenant_id = c.tenant_id AND (c.owner = '' OR r.owner = c.owner)) AS counted
     FROM registration_counts c WHERE c.tenant_id = ? ORDER BY c.owner`,
  )
    .bind(tenant.id)
    .all<{ owner: string; kept: number; counted: number }>();
  return results;
}

async function expectQuota(response: Response, limit: string, max: number) {
  expect(response.status).toBe(429);
  const { error } = await response.json<{ error: Record<string, unknown> }>();
  expect(error).toEqual({ code: "quota_exceeded", message: expect.any(String), limit, max });
  expect(error.message).toContain(`registration limit reached: ${max} per ${limit === "registrations" ? "tenant" : "user"}`);
}

describe("registration quotas", () => {
  it("refuses a user's registration past registrations_per_user with 429 quota_exceeded, and writes nothing", async () => {
    const tenant = await createTenant();
    await limit(tenant, { registrations: 20, registrations_per_user: 5 });
    const mallory = await userGrant(tenant, "mallory");
    for (let i = 0; i < 5; i++) expect((await subscribe(mallory, await webPushBody("cal"))).status).toBe(201);
    const before = await rows(tenant);
    const refused = await subscribe(mallory, await webPushBody("cal"));
    await expectQuota(refused, "registrations_per_user", 5);
    // neither the registration nor its new subscription
    expect(await rows(tenant)).toEqual(before);
    // another user of the tenant still registers
    expect((await subscribe(await userGrant(tenant, "alice"), await webPushBody("cal"))).status).toBe(201);
  });

  it("counts the tenant's limit across users and the notify token's registrations; the user's limit is named first", async () => {
    const tenant = await createTenant();
    await limit(tenant, { registrations: 4, registrations_per_user: 2 });
    expect((await subscribe(tenant.notify_token, await webPushBody("cal"))).status).toBe(201);
    expect((await subscribe(tenant.notify_token, await webPushBody("cal"))).status).toBe(201);
    const alice = await userGrant(tenant, "alice");
    expect((await subscribe(alice, await webPushBody("cal"))).status).toBe(201);
    expect((await subscribe(alice, await webPushBody("cal"))).status).toBe(201);
    // alice is at both limits: hers is the one named
    await expectQuota(await subscribe(alice, await webPushBody("cal")), "registrations_per_user", 2);
    // bob has room of his own, the tenant has none; nor has its notify token
    await expectQuota(await subscribe(await userGrant(tenant, "bob"), await webPushBody("cal")), "registrations", 4);
    await expectQuota(await subscribe(tenant.notify_token, await webPushBody("cal")), "registrations", 4);
    expect(await liveRegistrations(env.DB, tenant.id, Math.floor(Date.now() / 1000))).toBe(4);
  });

  it("updates a live registration at any usage: same push resource and topic, 201 created false, push-register 204", async () => {
    const tenant = await createTenant();
    await limit(tenant, { registrations_per_user: 1 });
    const alice = await userGrant(tenant, "alice");
    const body = await webPushBody("cal");
    expect((await subscribe(alice, body)).status).toBe(201);
    const again = await subscribe(alice, { ...body, push_services: { web_push: { ...body.push_services.web_push, keys: await userAgentKeys() } } });
    expect(again.status).toBe(201);
    expect((await again.json<{ created: boolean }>()).created).toBe(false);
    // the same push resource on another topic is a new registration
    await expectQuota(await subscribe(await userGrant(tenant, "alice", ["cal", "book"]), { ...body, topic: "book" }), "registrations_per_user", 1);

    const endpoint = `https://push.example.net/xml/${crypto.randomUUID()}`;
    const bob = await userGrant(tenant, "bob", ["inbox"]);
    expect((await pushRegister(bob, "inbox", endpoint)).status).toBe(204);
    expect((await pushRegister(bob, "inbox", endpoint)).status).toBe(204);
  });

  it("answers push-register over quota with 403 push-not-available naming the limit", async () => {
    const tenant = await createTenant();
    await limit(tenant, { registrations_per_user: 5 });
    const bob = await userGrant(tenant, "bob", ["inbox"]);
    for (let i = 0; i < 5; i++) expect((await pushRegister(bob, "inbox", `https://push.example.net/${i}-${crypto.randomUUID()}`)).status).toBe(204);
    const refused = await pushRegister(bob, "inbox", `https://push.example.net/6-${crypto.randomUUID()}`);
    expect(refused.status).toBe(403);
    const xml = await refused.text();
    expect(xml).toMatch(/<[\w:]*push-not-available\/>/);
    expect(xml).toContain("<D:responsedescription>registration limit reached: 5 per user</D:responsedescription>");
  });

  it("applies to the early draft's /subscribe too", async () => {
    const tenant = await createTenant();
    await limit(tenant, { registrations: 1 });
    expect((await subscribe(tenant.notify_token, await webPushBody("cal"), "/subscribe")).status).toBe(201);
    await expectQuota(await subscribe(tenant.notify_token, await webPushBody("cal"), "/subscribe"), "registrations", 1);
  });

  it("checks after validation, grant scope and triggers: those refusals come first", async () => {
    const tenant = await createTenant();
    await limit(tenant, { registrations: 0 });
    const alice = await userGrant(tenant, "alice");
    expect((await subscribe(alice, { topic: "cal" })).status).toBe(400);
    expect((await subscribe(alice, await webPushBody("not-granted"))).status).toBe(403);
    await env.DB.prepare("INSERT INTO tenant_triggers (tenant_id, content_update_depth, property_update_depth, updated_at) VALUES (?, NULL, NULL, 0)").bind(tenant.id).run();
    const noTrigger = await subscribe(alice, await webPushBody("cal"));
    expect(noTrigger.status).toBe(403);
    expect((await noTrigger.json<{ error: { code: string } }>()).error.code).toBe("no_supported_trigger");
  });

  it("frees a slot for the next request when a registration is deleted or expires, or the limit is raised", async () => {
    const tenant = await createTenant();
    await limit(tenant, { registrations_per_user: 2 });
    const alice = await userGrant(tenant, "alice");
    const first = await subscribe(alice, await webPushBody("cal"));
    expect(first.status).toBe(201);
    expect((await subscribe(alice, await webPushBody("cal"))).status).toBe(201);
    await expectQuota(await subscribe(alice, await webPushBody("cal")), "registrations_per_user", 2);

    expect((await call(new URL(first.headers.get("Location")!).pathname, { method: "DELETE" })).status).toBe(204);
    const third = await subscribe(alice, await webPushBody("cal"));
    expect(third.status).toBe(201);
    await expectQuota(await subscribe(alice, await webPushBody("cal")), "registrations_per_user", 2);

    // expired, not yet purged: no longer counted; registering it again counts as new
    const { id } = await third.json<{ id: string }>();
    await env.DB.prepare("UPDATE registrations SET expires_at = 1 WHERE id = ?").bind(id).run();
    expect((await subscribe(alice, await webPushBody("cal"))).status).toBe(201);
    await expectQuota(await subscribe(alice, await webPushBody("cal")), "registrations_per_user", 2);

    await limit(tenant, { registrations_per_user: 3 });
    expect((await subscribe(alice, await webPushBody("cal"))).status).toBe(201);
    // lowered below usage: nothing is deleted, new ones are refused
    await limit(tenant, { registrations_per_user: 1 });
    await expectQuota(await subscribe(alice, await webPushBody("cal")), "registrations_per_user", 1);
    expect(await liveRegistrations(env.DB, tenant.id, Math.floor(Date.now() / 1000))).toBe(3);
  });

  it("gives 10 simultaneous new registrations with 3 slots left exactly 3 × 201, 3 rows more, no orphan subscription", async () => {
    const tenant = await createTenant();
    await limit(tenant, { registrations: 5 });
    for (let i = 0; i < 2; i++) expect((await subscribe(tenant.notify_token, await webPushBody("cal"))).status).toBe(201);
    const before = await rows(tenant);
    const bodies = await Promise.all(Array.from({ length: 10 }, () => webPushBody("cal")));
    const statuses = (await Promise.all(bodies.map((body) => subscribe(tenant.notify_token, body)))).map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(7);
    expect(await rows(tenant)).toEqual({ registrations: before.registrations + 3, subscriptions: before.subscriptions + 3 });
    const orphans = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM subscriptions s WHERE s.tenant_id = ? AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.subscription_id = s.id)",
    )
      .bind(tenant.id)
      .first<{ n: number }>();
    expect(orphans!.n).toBe(0);
  });

  it("keeps the counters equal to the rows through inserts, deletes, cascades and a change of owner", async () => {
    const tenant = await createTenant();
    const alice = await userGrant(tenant, "alice");
    const bob = await userGrant(tenant, "bob");
    const shared = await webPushBody("cal");
    for (const token of [alice, alice, bob, tenant.notify_token]) expect((await subscribe(token, await webPushBody("cal"))).status).toBe(201);
    expect((await subscribe(alice, shared)).status).toBe(201);
    expect(await counters(tenant)).toEqual([
      { owner: "", kept: 5, counted: 5 },
      { owner: "alice", kept: 3, counted: 3 },
      { owner: "bob", kept: 1, counted: 1 },
    ]);
    // alice's registration expires; bob registers the same push resource and topic: it is his now
    await env.DB.prepare("UPDATE registrations SET expires_at = 1 WHERE owner = 'alice' AND subscription_id = (SELECT id FROM subscriptions WHERE identifier = ?)")
      .bind(shared.push_services.web_push.endpoint)
      .run();
    expect((await subscribe(bob, shared)).status).toBe(201);
    expect(await counters(tenant)).toEqual([
      { owner: "", kept: 5, counted: 5 },
      { owner: "alice", kept: 2, counted: 2 },
      { owner: "bob", kept: 2, counted: 2 },
    ]);
    // a subscription deleted (a push resource gone) takes its registrations with it, by cascade
    await env.DB.prepare("DELETE FROM subscriptions WHERE identifier = ?").bind(shared.push_services.web_push.endpoint).run();
    await env.DB.prepare("DELETE FROM registrations WHERE tenant_id = ? AND owner = 'alice'").bind(tenant.id).run();
    expect(await counters(tenant)).toEqual([
      { owner: "", kept: 2, counted: 2 },
      { owner: "bob", kept: 1, counted: 1 },
    ]);
  });

  it("serves the quota check from the counters and indexes, never a scan of the tenant's registrations", async () => {
    const plan = async (sql: string) =>
      (await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind("t", "alice", 0).all<{ detail: string }>()).results.map((r) => r.detail).join("\n");
    const tenantPlan = await plan(`SELECT ${liveRegistrationsSql("?1", "?3")} + 0 * ?2`);
    expect(tenantPlan).toMatch(/SEARCH registration_counts USING INDEX sqlite_autoindex_registration_counts/);
    expect(tenantPlan).toMatch(/SEARCH registrations USING COVERING INDEX registrations_by_tenant_expiry \(tenant_id=\? AND expires_at<\?\)/);
    const userPlan = await plan(`SELECT ${liveRegistrationsSql("?1", "?3", "?2")}`);
    expect(userPlan).toMatch(/SEARCH registrations USING COVERING INDEX registrations_by_owner_expiry \(tenant_id=\? AND owner=\? AND expires_at<\?\)/);
    expect(`${tenantPlan}\n${userPlan}`).not.toMatch(/SCAN (?!CONSTANT ROW)/);
  });
});
