// delivery_stats: one upsert per row into the current hour, summed; read over a window of hours; purged by age.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hourOf, purgeDeliveryStats, recordDeliveryStats, tenantStats } from "../../src/store/stats";

const NOW = 1_767_225_600 + 1234; // 2026-01-01 00:20:34 UTC
const HOUR = hourOf(NOW);
const zeros = { delivered: 0, retried: 0, refused: 0, gone: 0, dead_lettered: 0, tests: 0 };

const rows = (tenantId: string) =>
  env.DB.prepare("SELECT hour, transport, messages, delivered, retried, refused, gone, dead_lettered, tests FROM delivery_stats WHERE tenant_id = ? ORDER BY hour, transport")
    .bind(tenantId)
    .all()
    .then((r) => r.results);

describe("recordDeliveryStats", () => {
  it("adds each row's counts to its tenant's current hour and transport", async () => {
    expect(HOUR).toBe(1_767_225_600);
    await recordDeliveryStats(env.DB, [{ tenantId: "t-record", transport: "web_push", messages: 1, delivered: 40, retried: 8, gone: 2 }], NOW);
    await recordDeliveryStats(
      env.DB,
      [
        { tenantId: "t-record", transport: "web_push", delivered: 8, dead_lettered: 1 },
        { tenantId: "t-record", transport: "fcm", messages: 1, refused: 3 },
        { tenantId: "t-record", transport: "fcm" }, // nothing to add: nothing written
      ],
      NOW + 100,
    );
    await recordDeliveryStats(env.DB, [{ tenantId: "t-record", transport: "web_push", tests: 1 }], HOUR + 3600);
    expect(await rows("t-record")).toEqual([
      { hour: HOUR, transport: "fcm", messages: 1, ...zeros, refused: 3 },
      { hour: HOUR, transport: "web_push", messages: 1, ...zeros, delivered: 48, retried: 8, gone: 2, dead_lettered: 1 },
      { hour: HOUR + 3600, transport: "web_push", messages: 0, ...zeros, tests: 1 },
    ]);
  });
});

describe("tenantStats", () => {
  it("sums the hours of the window, the current one included, per transport and in all", async () => {
    const at = (hoursAgo: number) => NOW - hoursAgo * 3600;
    await recordDeliveryStats(env.DB, [{ tenantId: "t-read", transport: "web_push", messages: 2, delivered: 10 }], at(0));
    await recordDeliveryStats(env.DB, [{ tenantId: "t-read", transport: "fcm", messages: 1, delivered: 3, gone: 1 }], at(23));
    await recordDeliveryStats(env.DB, [{ tenantId: "t-read", transport: "web_push", messages: 5, delivered: 100 }], at(24));
    await recordDeliveryStats(env.DB, [{ tenantId: "t-other", transport: "web_push", messages: 9, delivered: 9 }], at(0));

    expect(await tenantStats(env.DB, "t-read", 24, NOW)).toEqual({
      tenant_id: "t-read",
      from: HOUR - 23 * 3600,
      to: NOW,
      messages: 3,
      deliveries: { ...zeros, delivered: 13, gone: 1 },
      by_transport: { web_push: { messages: 2, ...zeros, delivered: 10 }, fcm: { messages: 1, ...zeros, delivered: 3, gone: 1 } },
      subscriptions: { total: 0, failing: 0 },
    });
    expect((await tenantStats(env.DB, "t-read", 1, NOW)).messages).toBe(2);
    expect((await tenantStats(env.DB, "t-read", 25, NOW)).messages).toBe(8);
    expect(await tenantStats(env.DB, "t-none", 24, NOW)).toMatchObject({ messages: 0, deliveries: zeros, by_transport: { web_push: { messages: 0 }, fcm: { messages: 0 } } });
  });

  it("counts the tenant's subscriptions to deliver to, and those failing", async () => {
    await env.DB.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES ('t-subs', 'x', 'h', 's', 0, 0)").run();
    const insert = (transport: string, identifier: string, failingSince: number | null) =>
      env.DB.prepare("INSERT INTO subscriptions (tenant_id, transport, service, identifier, failing_since, created_at, updated_at) VALUES ('t-subs', ?1, ?1, ?2, ?3, 0, 0)")
        .bind(transport, identifier, failingSince)
        .run();
    await insert("web_push", "https://p/1", null);
    await insert("web_push", "https://p/2", NOW - 60);
    await insert("fcm", "digest", NOW - 3600);
    await insert("websocket", "connection", null); // delivered by its hub, not counted
    expect((await tenantStats(env.DB, "t-subs", 24, NOW)).subscriptions).toEqual({ total: 3, failing: 2 });
  });
});

describe("purgeDeliveryStats", () => {
  it("deletes rows of hours before the cut-off, a page at a time", async () => {
    for (const hoursAgo of [800, 745, 744, 10]) {
      await recordDeliveryStats(env.DB, [{ tenantId: "t-purge", transport: "web_push", messages: 1 }], HOUR - hoursAgo * 3600);
    }
    const before = HOUR - 744 * 3600; // 31 days
    expect(await purgeDeliveryStats(env.DB, before, 1)).toBe(1);
    expect(await purgeDeliveryStats(env.DB, before, 10)).toBe(1);
    expect(await purgeDeliveryStats(env.DB, before, 10)).toBe(0);
    expect((await rows("t-purge")).map((r) => r.hour)).toEqual([HOUR - 744 * 3600, HOUR - 10 * 3600]);
  });
});
