import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { topicHub } from "../src/hub/topic-hub";
import { Meter, meteredEnv, meterLine, type Counts } from "../src/meter";
import { bearer, call, createTenant, webPushBody } from "./helpers";

/** The `meter` lines written while the spy listens (METER is on in this project: vitest.config.ts). */
let lines: (Counts & { invocation: string })[] = [];
beforeEach(() => {
  lines = [];
  vi.spyOn(console, "log").mockImplementation((line: unknown) => {
    if (typeof line === "string" && line.startsWith("meter ")) lines.push(JSON.parse(line.slice("meter ".length)));
  });
});
afterEach(() => vi.restoreAllMocks());

const sum = (field: keyof Counts, of = lines) => of.reduce((total, line) => total + line[field], 0);

describe("meter", () => {
  it("writes one line per invocation: the invocation's name and every count", () => {
    const meter = new Meter();
    meter.add("d1_queries", 2);
    expect(JSON.parse(meterLine("fetch", meter.drain()).slice(6))).toMatchObject({ invocation: "fetch", d1_queries: 2, rows_read: 0 });
    // drained: the next line starts from nothing
    expect(meter.drain().d1_queries).toBe(0);
  });

  it("counts D1 queries and their rows from meta, and answers as D1 does", async () => {
    const meter = new Meter();
    const db = meteredEnv(env, meter).DB;
    await db.prepare("CREATE TABLE IF NOT EXISTS meter_probe (n INTEGER PRIMARY KEY)").run();
    await db.batch([1, 2, 3].map((n) => db.prepare("INSERT OR REPLACE INTO meter_probe (n) VALUES (?)").bind(n)));
    const written = meter.drain();
    expect(written.d1_queries).toBe(4);
    expect(written.rows_written).toBeGreaterThanOrEqual(3);

    expect(await db.prepare("SELECT n FROM meter_probe ORDER BY n").first()).toEqual(await env.DB.prepare("SELECT n FROM meter_probe ORDER BY n").first());
    expect(await db.prepare("SELECT n FROM meter_probe ORDER BY n").first("n")).toBe(1);
    expect(await db.prepare("SELECT n FROM meter_probe WHERE n > 9").first()).toBeNull();
    expect((await db.prepare("SELECT n FROM meter_probe").all()).results).toHaveLength(3);
    const read = meter.drain();
    expect(read.d1_queries).toBe(4);
    expect(read.rows_read).toBeGreaterThanOrEqual(3 * 3 + 0);
    expect(read.rows_written).toBe(0);
  });

  it("counts queue messages and their bytes, and Durable Object calls by the caller", async () => {
    const meter = new Meter();
    const sent: unknown[] = [];
    // a queue that only keeps what it is given, so nothing is consumed behind the test
    const queue = { send: async (body: unknown) => void sent.push(body), sendBatch: async (messages: { body: unknown }[]) => void sent.push(...messages.map((m) => m.body)) };
    const metered = meteredEnv({ ...env, DEAD_LETTERS: queue as unknown as Queue }, meter);
    await metered.DEAD_LETTERS.send({ a: "é" });
    await metered.DEAD_LETTERS.sendBatch([{ body: 1 }, { body: "xy" }]);
    expect(sent).toEqual([{ a: "é" }, 1, "xy"]);
    // {"a":"é"} is 10 bytes in UTF-8, 1 is 1, "xy" is 4
    expect(meter.drain()).toMatchObject({ queue_messages_sent: 3, queue_bytes_sent: 15 });
    const limiter = metered.TENANT_LIMITER.get(metered.TENANT_LIMITER.idFromName("meter-probe"));
    await limiter.openSockets();
    await limiter.notifyLevel(60);
    expect(meter.drain().do_requests).toBe(2);
  });

  it("a warm notify: no D1 query, no queue message, one hub request", async () => {
    const tenant = await createTenant("meter-warm");
    const notify = () => call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: { topic: "warm", content_update: { sync_token: "s1" } } });
    // the first reads the tenant and takes a lease of notify budget; the second finds both in memory
    expect((await notify()).status).toBe(202);
    lines = [];
    expect((await notify()).status).toBe(202);
    const request = lines.filter((line) => line.invocation === "fetch");
    expect(request).toHaveLength(1);
    expect(request[0]).toMatchObject({ worker_requests: 1, d1_queries: 0, rows_read: 0, rows_written: 0, queue_messages_sent: 0, do_requests: 1 });
    // the hub's own line: one call, storage written, still no D1 and no queue
    const hub = lines.filter((line) => line.invocation === "TopicHub.accept");
    expect(hub).toHaveLength(1);
    expect(hub[0]).toMatchObject({ do_requests: 1, d1_queries: 0, queue_messages_sent: 0 });
    expect(hub[0]!.do_rows_written).toBeGreaterThanOrEqual(1);
  });

  it("50 notifies to one topic in a window: one queue message", async () => {
    const tenant = await createTenant("meter-fifty");
    const registered = await call("/v1/subscriptions", { method: "POST", headers: bearer(tenant.notify_token), json: await webPushBody("fifty") });
    expect(registered.status).toBe(201);
    lines = [];
    for (let i = 0; i < 50; i++) {
      const response = await call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: { topic: "fifty", content_update: { sync_token: `s${i}` } } });
      expect(response.status).toBe(202);
    }
    expect(await runDurableObjectAlarm(topicHub(env, tenant.id, "fifty"))).toBe(true);
    expect(lines.filter((line) => line.invocation === "fetch")).toHaveLength(50);
    expect(sum("queue_messages_sent")).toBe(1);
    expect(lines.find((line) => line.invocation === "TopicHub.alarm")).toMatchObject({ queue_messages_sent: 1 });
  });
});
