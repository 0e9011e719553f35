import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { Change } from "../../src/hub/change";
import { topicHub, type TopicHub } from "../../src/hub/topic-hub";
import type { HubSockets } from "../../src/limits/socket-slots";
import { bearer, change, createTenant, pushService, registerSubscriber } from "../helpers";
import { upgrade } from "../socket-client";

/** A content update of a member unless `over` says otherwise. */
const contentChange = (over: Partial<Change> = {}): Change => change({ contentUpdate: { syncToken: null, depth: 1 }, ...over });

const hub = (name: string) => env.TOPIC_HUB.get(env.TOPIC_HUB.idFromName(name));

/** Marks a hub as one that has held a socket (as a socket's handshake does): it keeps a replay log. */
const heldSockets = (stub: DurableObjectStub<TopicHub>) => runInDurableObject(stub, (_instance: TopicHub, ctx) => ctx.storage.put("remembered", true));

/** The hub's record as stored (one key: its number, pending message, flush time and outbox). */
const record = async (ctx: DurableObjectState) =>
  (await ctx.storage.get<{ seq: number; pending?: { change: Change }; flushAt?: number; outbox?: unknown[] }>("hub")) ?? null;

describe("TopicHub", () => {
  it("merges changes within the window into one pending message and sets one alarm", async () => {
    const stub = hub("merge-window");
    await stub.accept("tenant", [contentChange({ contentUpdate: { syncToken: "s1", depth: 1 } })]);
    await stub.accept("tenant", [contentChange({ contentUpdate: { syncToken: "s2", depth: 1 } }), contentChange({ contentUpdate: null, propertyUpdate: { props: null, depth: 0 } })]);
    const state = await runInDurableObject(stub, async (_instance: TopicHub, ctx) => ({
      pending: (await record(ctx))?.pending,
      alarm: await ctx.storage.getAlarm(),
      seq: (await record(ctx))?.seq,
    }));
    expect(state.pending!.change.contentUpdate).toEqual({ syncToken: "s2", depth: 1 });
    expect(state.pending!.change.propertyUpdate).toEqual({ props: null, depth: 0 });
    expect(state.alarm).toBeGreaterThan(Date.now());
    expect(state.alarm! - Date.now()).toBeLessThanOrEqual(1000);
    expect(state.seq).toBe(0);
  });

  it("flushes on the alarm: one numbered message, nothing left pending", async () => {
    const stub = hub("flush");
    await stub.accept("tenant", [contentChange({})]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await stub.accept("tenant", [contentChange({})]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const state = await runInDurableObject(stub, async (_instance: TopicHub, ctx) => record(ctx));
    expect(state).toEqual({ seq: 2 });
    expect(await runDurableObjectAlarm(stub)).toBe(false);
  });

  it("merges 50 changes in one window into one message: one fan-out job, one alarm", async () => {
    const stub = hub("fifty");
    // as a registration for the topic tells it (src/registering/register.ts)
    await stub.registered();
    for (let i = 0; i < 50; i++) await stub.accept("tenant", [contentChange({ contentUpdate: { syncToken: `s${i}`, depth: 1 } })]);
    const before = await runInDurableObject(stub, async (_instance: TopicHub, ctx) => ({ alarm: await ctx.storage.getAlarm(), outbox: (await record(ctx))?.outbox }));
    expect(before.alarm).not.toBeNull();
    expect(before.outbox).toBeUndefined();
    // the flush queues the outbox and empties it; what it queued is one job, numbered 1, with the last token
    const queued: unknown[] = [];
    await runInDurableObject(stub, (instance: TopicHub) => {
      const env = (instance as unknown as { env: Env }).env;
      (instance as unknown as { env: Env }).env = { ...env, FANOUT: { ...env.FANOUT, sendBatch: async (messages: { body: unknown }[]) => void queued.push(...messages.map((m) => m.body)) } } as unknown as Env;
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(queued).toEqual([expect.objectContaining({ seq: 1, change: expect.objectContaining({ contentUpdate: { syncToken: "s49", depth: 1 } }) })]);
    expect(await runDurableObjectAlarm(stub)).toBe(false);
  });

  it("queues no fan-out for a topic nobody registered to, until a registration tells it; the message is numbered and logged all the same", async () => {
    const tenant = await createTenant();
    const stub = topicHub(env, tenant.id, "quiet");
    await heldSockets(stub);
    const queued: unknown[] = [];
    const catchQueue = () =>
      runInDurableObject(stub, (instance: TopicHub) => {
        const env = (instance as unknown as { env: Env }).env;
        (instance as unknown as { env: Env }).env = { ...env, FANOUT: { sendBatch: async (messages: { body: unknown }[]) => void queued.push(...messages.map((m) => m.body)) } } as unknown as Env;
      });
    await catchQueue();
    await stub.accept(tenant.id, [contentChange({ topic: "quiet" })]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(queued).toEqual([]);
    const seq = () => runInDurableObject(stub, async (_instance: TopicHub, ctx) => [(await record(ctx))?.seq, (await ctx.storage.list({ prefix: "log:" })).size]);
    expect(await seq()).toEqual([1, 1]);

    // a registration through the API (which tells the hub): the next flush fans out
    await registerSubscriber(tenant, "quiet", await pushService.subscriber());
    await stub.accept(tenant.id, [contentChange({ topic: "quiet" })]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(queued).toHaveLength(1);
    expect(await seq()).toEqual([2, 2]);
    // a hub that was never told (evicted: its memory gone) asks D1, finds the registration and fans out
    await evictDurableObject(stub);
    await catchQueue();
    await stub.accept(tenant.id, [contentChange({ topic: "quiet" })]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(queued).toHaveLength(2);
  });

  it("fans out again at once when a registration tells it, whatever D1 said before", async () => {
    const stub = hub("told");
    const queued: unknown[] = [];
    await runInDurableObject(stub, (instance: TopicHub) => {
      const env = (instance as unknown as { env: Env }).env;
      (instance as unknown as { env: Env }).env = { ...env, FANOUT: { sendBatch: async (messages: { body: unknown }[]) => void queued.push(...messages.map((m) => m.body)) } } as unknown as Env;
    });
    await stub.accept("tenant", [contentChange({})]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(queued).toHaveLength(0);
    await stub.registered();
    await stub.accept("tenant", [contentChange({})]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(queued).toEqual([expect.objectContaining({ seq: 2 })]);
  });

  it("keeps an accepted change through an eviction, and flushes it", async () => {
    const stub = hub("evicted");
    await heldSockets(stub);
    await stub.accept("tenant", [contentChange({ contentUpdate: { syncToken: "kept", depth: 1 } })]);
    await evictDurableObject(stub);
    await stub.accept("tenant", [contentChange({ contentUpdate: null, propertyUpdate: { props: null, depth: 0 } })]);
    await evictDurableObject(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const state = await runInDurableObject(stub, async (_instance: TopicHub, ctx) => ({
      pending: (await record(ctx))?.pending,
      seq: (await record(ctx))?.seq,
      log: [...(await ctx.storage.list<{ frame: unknown }>({ prefix: "log:" })).values()].map((entry) => entry.frame),
    }));
    expect(state.pending).toBeUndefined();
    expect(state.seq).toBe(1);
    // both changes, merged, in the one message flushed
    expect(state.log).toEqual([expect.objectContaining({ seq: 1, content_update: expect.objectContaining({ sync_token: "kept" }), property_update: expect.anything() })]);
  });

  it("keeps the newest WS_REPLAY_SIZE messages of its replay log, pruned without listing it", async () => {
    const stub = hub("pruned");
    await heldSockets(stub);
    for (let i = 0; i < 8; i++) {
      await stub.accept("tenant", [contentChange({})]);
      expect(await runDurableObjectAlarm(stub)).toBe(true);
      // a wake-up in between: the log's times are read again
      if (i === 3) await evictDurableObject(stub);
    }
    const keys = await runInDurableObject(stub, async (_instance: TopicHub, ctx) => [...(await ctx.storage.list({ prefix: "log:" })).keys()]);
    // WS_REPLAY_SIZE is 5 in the tests
    expect(keys).toEqual([4, 5, 6, 7, 8].map((n) => `log:${String(n).padStart(12, "0")}`));
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
  it("writes few rows: an accept one row and the alarm, a flush its record (and log entry once it held sockets), the queue's acknowledgement one more (METER)", async () => {
    const stub = hub("rows");
    await stub.registered();
    const lines: { invocation: string; do_rows_written: number; queue_messages_sent: number }[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      if (typeof line === "string" && line.startsWith("meter ")) lines.push(JSON.parse(line.slice(6)));
    });
    try {
      await stub.accept("tenant", [contentChange({})]);
      expect(await runDurableObjectAlarm(stub)).toBe(true);
    } finally {
      spy.mockRestore();
    }
    // the record (pending message and flush time) and setAlarm
    expect(lines.find((line) => line.invocation === "TopicHub.accept")).toMatchObject({ do_rows_written: 2 });
    // the record, the job queued, the record again (outbox emptied); no replay log: no socket ever
    expect(lines.find((line) => line.invocation === "TopicHub.alarm")).toMatchObject({ do_rows_written: 2, queue_messages_sent: 1 });
    expect(await runInDurableObject(stub, async (_instance: TopicHub, ctx) => (await ctx.storage.list({ prefix: "log:" })).size)).toBe(0);

    // a hub that has held a socket also logs the message for `?since=`
    await heldSockets(stub);
    await evictDurableObject(stub);
    await stub.registered();
    lines.length = 0;
    const again = vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      if (typeof line === "string" && line.startsWith("meter ")) lines.push(JSON.parse(line.slice(6)));
    });
    try {
      await stub.accept("tenant", [contentChange({})]);
      expect(await runDurableObjectAlarm(stub)).toBe(true);
    } finally {
      again.mockRestore();
    }
    expect(lines.find((line) => line.invocation === "TopicHub.alarm")).toMatchObject({ do_rows_written: 3 });
    expect(await runInDurableObject(stub, async (_instance: TopicHub, ctx) => [...(await ctx.storage.list({ prefix: "log:" })).keys()])).toEqual([`log:${"2".padStart(12, "0")}`]);
  });

  it("reads a hub stored in the layout before its record (a key per field), and deletes those keys on its first write", async () => {
    const stub = hub("legacy");
    const oldJob = { tenantId: "tenant", seq: 7, change: contentChange({ contentUpdate: { syncToken: "old", depth: 1 } }) };
    await runInDurableObject(stub, async (_instance: TopicHub, ctx) => {
      ctx.storage.kv.put("seq", 7);
      ctx.storage.kv.put("outbox", [oldJob]);
      ctx.storage.kv.put("pending", { tenantId: "tenant", change: contentChange({ contentUpdate: { syncToken: "waiting", depth: 1 } }) });
      ctx.storage.kv.put("flushAt", Date.now() + 1000);
      // as the old layout's accept set it with flushAt
      await ctx.storage.setAlarm(Date.now() + 1000);
    });
    await evictDurableObject(stub);
    await stub.registered();
    const queued: { seq: number; change: Change }[] = [];
    await runInDurableObject(stub, (instance: TopicHub) => {
      const env = (instance as unknown as { env: Env }).env;
      (instance as unknown as { env: Env }).env = { ...env, FANOUT: { sendBatch: async (messages: { body: never }[]) => void queued.push(...messages.map((m) => m.body)) } } as unknown as Env;
    });
    await stub.accept("tenant", [contentChange({ contentUpdate: { syncToken: "new", depth: 1 } })]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // the old outbox's job first, then the pending change merged with the new one, numbered after the old seq
    expect(queued.map((job) => [job.seq, job.change.contentUpdate?.syncToken])).toEqual([
      [7, "old"],
      [8, "new"],
    ]);
    const stored = await runInDurableObject(stub, async (_instance: TopicHub, ctx) => ({
      record: await record(ctx),
      legacy: await ctx.storage.get(["seq", "outbox", "pending", "flushAt"]),
    }));
    expect(stored.record).toEqual({ seq: 8 });
    expect(stored.legacy.size).toBe(0);
  });
});
