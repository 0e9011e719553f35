import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Change } from "../../src/hub/change";
import { topicHub, type TopicHub } from "../../src/hub/topic-hub";
import type { HubSockets } from "../../src/limits/socket-slots";
import { bearer, change, createTenant } from "../helpers";
import { upgrade } from "../socket-client";

/** A content update of a member unless `over` says otherwise. */
const contentChange = (over: Partial<Change> = {}): Change => change({ contentUpdate: { syncToken: null, depth: 1 }, ...over });

const hub = (name: string) => env.TOPIC_HUB.get(env.TOPIC_HUB.idFromName(name));

describe("TopicHub", () => {
  it("merges changes within the window into one pending message and sets one alarm", async () => {
    const stub = hub("merge-window");
    await stub.accept("tenant", [contentChange({ contentUpdate: { syncToken: "s1", depth: 1 } })]);
    await stub.accept("tenant", [contentChange({ contentUpdate: { syncToken: "s2", depth: 1 } }), contentChange({ contentUpdate: null, propertyUpdate: { props: null, depth: 0 } })]);
    const state = await runInDurableObject(stub, async (_instance: TopicHub, ctx) => ({
      pending: await ctx.storage.get<{ change: Change }>("pending"),
      alarm: await ctx.storage.getAlarm(),
      seq: await ctx.storage.get("seq"),
    }));
    expect(state.pending!.change.contentUpdate).toEqual({ syncToken: "s2", depth: 1 });
    expect(state.pending!.change.propertyUpdate).toEqual({ props: null, depth: 0 });
    expect(state.alarm).toBeGreaterThan(Date.now());
    expect(state.alarm! - Date.now()).toBeLessThanOrEqual(1000);
    expect(state.seq).toBeUndefined();
  });

  it("flushes on the alarm: one numbered message, nothing left pending", async () => {
    const stub = hub("flush");
    await stub.accept("tenant", [contentChange({})]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await stub.accept("tenant", [contentChange({})]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const state = await runInDurableObject(stub, async (_instance: TopicHub, ctx) => ({
      pending: await ctx.storage.get("pending"),
      outbox: await ctx.storage.get("outbox"),
      seq: await ctx.storage.get("seq"),
    }));
    expect(state).toEqual({ pending: undefined, outbox: undefined, seq: 2 });
    expect(await runDurableObjectAlarm(stub)).toBe(false);
  });

  it("answers the limiter's re-check: which sockets are open here, handshakes under way included", async () => {
    const tenant = await createTenant();
    const client = await upgrade("/v1/ws?topic=recheck", bearer(tenant.notify_token));
    await client.next(1);
    const stub = topicHub(env, tenant.id, "recheck");
    const [slot] = await runInDurableObject(stub, (_hub: TopicHub, ctx) =>
      ctx.getWebSockets().map((ws) => (ws.deserializeAttachment() as { slot: { id: string } }).slot.id),
    );
    expect(await stub.openSocketIds([slot, "never-opened"])).toEqual([slot]);
    // between taking its slot and being accepted, a socket is open for the re-check too
    const opening = (hub: TopicHub) => (hub as unknown as { sockets: HubSockets }).sockets.opening;
    await runInDurableObject(stub, (hub: TopicHub) => opening(hub).set("handshake", null));
    expect(await stub.openSocketIds(["handshake", slot])).toEqual(["handshake", slot]);
    await runInDurableObject(stub, (hub: TopicHub) => opening(hub).delete("handshake"));
    await client.close();
    expect(await stub.openSocketIds([slot, "handshake"])).toEqual([]);
  });
});
