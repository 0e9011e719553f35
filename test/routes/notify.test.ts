import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { normalizeChange } from "../../src/routes/notify";
import { bearer, call, createTenant, grant } from "../helpers";

const notify = (token: string, json: unknown) => call("/v1/notify", { method: "POST", headers: bearer(token), json });

/** Flushes the topic's hub (its alarm) and answers how many messages it has sent to fan-out. */
async function hubSeq(tenantId: string, topic: string): Promise<number | undefined> {
  const stub = topicHub(env, tenantId, topic);
  await runDurableObjectAlarm(stub);
  return runInDurableObject(stub, async (_hub, state) => (await state.storage.get<{ seq: number }>("hub"))?.seq);
}

describe("POST /v1/notify", () => {
  it("accepts one change with 202 and hands it to the topic's hub", async () => {
    const tenant = await createTenant();
    const response = await notify(tenant.notify_token, { topic: "cal-1", content_update: { sync_token: "http://example.com/sync/10" } });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 1, topics: 1 });
    expect(await hubSeq(tenant.id, "cal-1")).toBe(1);
  });

  it("accepts a batch, one hub per topic", async () => {
    const tenant = await createTenant();
    const response = await notify(tenant.notify_token, {
      notifications: [{ topic: "a" }, { topic: "b", property_update: {} }, { topic: "a", urgency: "high", ttl: 60 }],
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 3, topics: 2 });
    // the two changes to "a" arrived within the merge window: one message
    expect(await hubSeq(tenant.id, "a")).toBe(1);
    expect(await hubSeq(tenant.id, "b")).toBe(1);
  });

  it("keeps tenants' topics apart", async () => {
    const [one, two] = [await createTenant("one"), await createTenant("two")];
    await notify(one.notify_token, { topic: "shared-name" });
    expect(await hubSeq(one.id, "shared-name")).toBe(1);
    expect(await hubSeq(two.id, "shared-name")).toBeUndefined();
  });

  it("takes only the tenant's notify token", async () => {
    const tenant = await createTenant();
    expect((await call("/v1/notify", { method: "POST", json: { topic: "t" } })).status).toBe(401);
    expect((await notify("pdn_nonsense", { topic: "t" })).status).toBe(401);
    const withGrant = await notify(await grant(tenant), { topic: "topic-1" });
    expect(withGrant.status).toBe(403);
    expect(await withGrant.json()).toMatchObject({ error: { code: "tenant_token_required" } });
  });

  it("rejects malformed changes with 400 naming the field", async () => {
    const tenant = await createTenant();
    const cases: [unknown, RegExp][] = [
      [{}, /topic/],
      [{ topic: "" }, /topic/],
      [{ topic: "t", urgency: "urgent" }, /urgency/],
      [{ topic: "t", ttl: 0 }, /ttl/],
      [{ topic: "t", ttl: 1.5 }, /ttl/],
      [{ topic: "t", ttl: 99_999_999 }, /ttl/],
      [{ topic: "t", content_update: { sync_token: 10 } }, /content_update\.sync_token/],
      [{ topic: "t", content_update: { depth: 2 } }, /depth/],
      [{ topic: "t", property_update: { props: "displayname" } }, /property_update\.props/],
      [{ topic: "t", dont_notify: "all" }, /dont_notify/],
      [{ notifications: [] }, /notifications/],
      [{ notifications: [{ topic: "ok" }, { topic: 3 }] }, /notifications\.1\.topic/],
      [{ notifications: Array.from({ length: 101 }, () => ({ topic: "t" })) }, /notifications/],
      ["topic", /object/],
    ];
    for (const [body, message] of cases) {
      const response = await notify(tenant.notify_token, body);
      const text = await response.text();
      expect(response.status, text).toBe(400);
      expect(JSON.parse(text).error.message, text).toMatch(message);
    }
    expect(await hubSeq(tenant.id, "ok")).toBeUndefined();
  });

  it("accepts the largest batch", async () => {
    const tenant = await createTenant();
    const response = await notify(tenant.notify_token, { notifications: Array.from({ length: 100 }, (_, i) => ({ topic: `t${i % 7}` })) });
    expect(await response.json()).toEqual({ accepted: 100, topics: 7 });
  });
});

describe("normalizeChange", () => {
  it("reads a bare topic as a content update of an internal member", () => {
    expect(normalizeChange({ topic: "t" })).toEqual({
      topic: "t",
      contentUpdate: { syncToken: null, depth: 1 },
      propertyUpdate: null,
      urgency: "normal",
      ttl: null,
      dontNotify: [],
    });
  });

  it("keeps depths, props and the registrations not to notify", () => {
    const change = normalizeChange({
      topic: "t",
      property_update: { depth: "infinity", props: ["{DAV:}displayname"] },
      dont_notify: ["https://d.example/v1/registrations/AAAAAAAAAAAAAAAAAAAAAA", "https://elsewhere.example/x", "junk"],
    });
    expect(change.contentUpdate).toBeNull();
    expect(change.propertyUpdate).toEqual({ depth: 2, props: ["{DAV:}displayname"] });
    expect(change.dontNotify).toEqual(["AAAAAAAAAAAAAAAAAAAAAA"]);
    expect(normalizeChange({ topic: "t", dont_notify: "*" }).dontNotify).toBe("*");
    expect(normalizeChange({ topic: "t", content_update: { depth: "0" } }).contentUpdate).toEqual({ syncToken: null, depth: 0 });
  });
});
