// What a month costs on Cloudflare (issue 15, item 9): `npm start` with METER=true runs a small
// workload, its `meter` lines (src/meter.ts) are added up per phase, and COSTS.md prices them for
// 1,000,000 Web Push subscriptions at Workers Paid prices. Part `cost` of `npm run bench`;
// `node bench/cost.ts` runs it alone and writes COSTS.md.
//
// The workload, one tenant, the shipped COALESCE_MS (real merge windows):
//  - registrations: REGISTRATIONS subscriptions with endpoints as long as real ones, one topic each,
//    with the D1 file measured before and after (bytes per registration), then all renewed once;
//  - shape A (one subscription per topic) and shape B (twenty per topic): every topic notified once a
//    round, paced at the rate the modelled month sends that shape's notifies, until every subscriber
//    received; rounds SPARSE_GAP_MS apart, so each notify finds its hub as a topic changing ten
//    times a day does (what the hub knows of its listeners gone, src/hub/topic-hub.ts). A warm-up
//    round comes first, uncounted: a hub's first flush has no earlier message to prune.
// A meter line belongs to the phase whose window holds its arrival; a window ends once no line has
// arrived for QUIET_MS after the last delivery.
import { createECDH, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { api, startDirector, type Director, type MeterEntry } from "../test/e2e/director.ts";
import { PushService, type SubscriberInfo } from "../test/support/push-service.ts";
import { METER_COUNTS as COUNTS, type MeterCount as Count } from "../src/meter-counts.ts";
import { pragma, readCopy } from "./sqlite.ts";

const root = path.resolve(import.meta.dirname, "..");

// ---- the workload --------------------------------------------------------------------------

/** Topics and subscriptions per topic of each shape; more would only make the run longer. */
const SHAPES = [
  { key: "A", topics: 50, perTopic: 1 },
  { key: "B", topics: 10, perTopic: 20 },
] as const;
type ShapeKey = (typeof SHAPES)[number]["key"];
/** Registrations made (and renewed) to measure what one costs and how many bytes it takes in D1. */
const REGISTRATIONS = 300;
/** Counted notify rounds per shape, after the warm-up (BENCH_COST_ROUNDS). */
const ROUNDS = Number(process.env.BENCH_COST_ROUNDS ?? 2);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`BENCH_COST_ROUNDS: a positive integer, not ${process.env.BENCH_COST_ROUNDS}`);
/**
 * Between two contacts with a topic: longer than LISTENERS_KNOWN_MS (60 s, src/hub/topic-hub.ts),
 * so each flush asks D1 whether the topic has registrations again, as one every 2.4 h does.
 */
const SPARSE_GAP_MS = 65_000;
/** No meter line for this long after the last delivery ends a phase (queue batches wait up to 1 s). */
const QUIET_MS = 2_500;
/** Concurrent registrations while setting up; the measured ones go one at a time, so their active ms is theirs alone. */
const REGISTERING = 8;
/**
 * WS_REPLAY_SECONDS for the run: a month's topic changes every 2.4 h, past the shipped 1 h replay
 * window, so each flush prunes the previous message; rounds SPARSE_GAP_MS apart do the same with this.
 */
const REPLAY_SECONDS = 30;
/** Below the 4 MB of output test/e2e/director.ts keeps: nothing has been dropped from its start. */
const OUTPUT_SAFE = 3_500_000;

// ---- the month modelled -------------------------------------------------------------------

const MONTH_DAYS = 30;
const SUBSCRIPTIONS = 1_000_000;
const CHANGES_PER_DAY = 10;
const PLAN_SUBSCRIPTIONS = 10_000_000;
/**
 * Renewals: a registration lives at most MAX_REGISTRATION_SECONDS (wrangler.toml: 7 days), so a
 * client renews at least every 7 days; one renewing more often costs more registrations.
 */
const RENEWAL_DAYS = 7;

// ---- prices and limits (Workers Paid) --------------------------------------------------------

/** When the prices and limits below were read. */
const PRICES_READ = "2026-12-01";
const SOURCES = {
  workers: "https://developers.cloudflare.com/workers/platform/pricing/",
  durableObjects: "https://developers.cloudflare.com/durable-objects/platform/pricing/",
  d1: "https://developers.cloudflare.com/d1/platform/pricing/",
  queues: "https://developers.cloudflare.com/queues/platform/pricing/",
  logs: "https://developers.cloudflare.com/workers/platform/pricing/#workers-logs",
  doLimits: "https://developers.cloudflare.com/durable-objects/platform/limits/",
  doSockets: "https://developers.cloudflare.com/durable-objects/api/state/",
  queueLimits: "https://developers.cloudflare.com/queues/platform/limits/",
  d1Limits: "https://developers.cloudflare.com/d1/platform/limits/",
};
const BASE_PER_MONTH = 5;

type Item =
  | "workerRequests"
  | "cpuMs"
  | "doRequests"
  | "doGbS"
  | "doRowsRead"
  | "doRowsWritten"
  | "doStorageGbMonth"
  | "d1RowsRead"
  | "d1RowsWritten"
  | "d1StorageGbMonth"
  | "queueOps"
  | "logEvents";

interface Price {
  name: string;
  /** Included per month, in the item's unit. */
  included: number;
  /** USD per `per` units beyond. */
  price: number;
  per: number;
  unit: string;
  source: string;
  /** Set when the price could not be confirmed from the docs as of PRICES_READ. */
  unconfirmed?: string;
}

const MILLION = 1_000_000;
const PRICES: Record<Item, Price> = {
  workerRequests: { name: "Workers requests", included: 10 * MILLION, price: 0.3, per: MILLION, unit: "requests", source: SOURCES.workers },
  cpuMs: { name: "Workers CPU time", included: 30 * MILLION, price: 0.02, per: MILLION, unit: "CPU ms", source: SOURCES.workers },
  doRequests: { name: "Durable Objects requests", included: MILLION, price: 0.15, per: MILLION, unit: "requests", source: SOURCES.durableObjects },
  doGbS: { name: "Durable Objects duration", included: 400_000, price: 12.5, per: MILLION, unit: "GB-s", source: SOURCES.durableObjects },
  doRowsRead: { name: "Durable Objects SQLite rows read", included: 25_000 * MILLION, price: 0.001, per: MILLION, unit: "rows", source: SOURCES.durableObjects },
  doRowsWritten: { name: "Durable Objects SQLite rows written", included: 50 * MILLION, price: 1, per: MILLION, unit: "rows", source: SOURCES.durableObjects },
  doStorageGbMonth: { name: "Durable Objects SQL stored data", included: 5, price: 0.2, per: 1, unit: "GB-month", source: SOURCES.durableObjects },
  d1RowsRead: { name: "D1 rows read", included: 25_000 * MILLION, price: 0.001, per: MILLION, unit: "rows", source: SOURCES.d1 },
  d1RowsWritten: { name: "D1 rows written", included: 50 * MILLION, price: 1, per: MILLION, unit: "rows", source: SOURCES.d1 },
  d1StorageGbMonth: { name: "D1 storage", included: 5, price: 0.75, per: 1, unit: "GB-month", source: SOURCES.d1 },
  queueOps: { name: "Queues operations", included: MILLION, price: 0.4, per: MILLION, unit: "operations (64 KB written, read or deleted)", source: SOURCES.queues },
  logEvents: {
    name: "Workers Logs events",
    included: 20 * MILLION,
    price: 0.6,
    per: MILLION,
    unit: "log events",
    source: SOURCES.logs,
    unconfirmed:
      "the last documented Workers Logs price; the page says that from December 1, 2026 Workers Logs use Cloudflare Observability pricing, whose figures were not on the pages read",
  },
};

/** Queues bill per 64 KB, a KB being 1,000 bytes, each message carrying about 100 bytes of metadata (queues pricing). */
const QUEUE_CHUNK_BYTES = 64_000;
const QUEUE_METADATA_BYTES = 100;
/** Duration bills the 128 MB an object is allocated; the docs' examples count 128 MB as 0.128 GB. */
const DO_GB = 0.128;
const GB = 1e9;
/** Documented limits the plan for 10,000,000 checks against. */
const LIMITS = {
  doRequestsPerSecond: 1_000,
  socketsPerObject: 32_768,
  queueMessagesPerSecond: 5_000,
  queueMaxBatch: 100,
  queueConcurrency: 250,
  d1DatabaseBytes: 10 * GB,
  /** "If your average query takes 1 ms, you can run approximately 1,000 queries per second." */
  d1QueriesPerSecondAt1Ms: 1_000,
};

// ---- counting ------------------------------------------------------------------------------


/** One invocation's lines of a phase, summed; queue chunks counted line by line (see `chunks`). */
export type InvocationTotals = Record<Count | "lines" | "queue_write_chunks" | "queue_read_chunks", number>;

/** A Worker invocation (billed as a Worker request); every other line is a Durable Object's. */
const isWorkerLine = (invocation: string) => invocation === "fetch" || invocation === "scheduled" || invocation.startsWith("queue:");
/** An alarm: a Durable Object request no caller made. */
const isAlarm = (invocation: string) => invocation.endsWith(".alarm");

/**
 * 64 KB chunks of `messages` messages of `bytes` in all: exact while every message fits one chunk
 * (here each is a few KB), a lower bound for a line mixing one large message with small ones.
 */
const chunks = (messages: number, bytes: number) => (messages === 0 ? 0 : Math.max(messages, Math.ceil((bytes + QUEUE_METADATA_BYTES * messages) / QUEUE_CHUNK_BYTES)));

function totalsOf(lines: MeterEntry[]): Record<string, InvocationTotals> {
  const out: Record<string, InvocationTotals> = {};
  for (const line of lines) {
    const totals = (out[line.invocation] ??= Object.fromEntries(
      [...COUNTS, "lines", "queue_write_chunks", "queue_read_chunks"].map((k) => [k, 0]),
    ) as InvocationTotals);
    totals.lines++;
    for (const count of COUNTS) totals[count] += Number(line[count] ?? 0);
    totals.queue_write_chunks += chunks(Number(line.queue_messages_sent ?? 0), Number(line.queue_bytes_sent ?? 0));
    totals.queue_read_chunks += chunks(Number(line.queue_messages_consumed ?? 0), Number(line.queue_bytes_consumed ?? 0));
  }
  return out;
}

/** What Cloudflare bills, from one phase's lines (the accounting rules, in one place). */
export interface Units {
  workerRequests: number;
  /** Upper bound: the Worker invocations' active ms, which include their I/O waits. */
  cpuMs: number;
  /** Callers' stub calls plus alarms: an object's own line (1 per tracked call) is not counted again. */
  doRequests: number;
  /** Objects' active ms × 128 MB; calls overlapping on one object are each counted (an upper bound). */
  doGbS: number;
  doRowsRead: number;
  doRowsWritten: number;
  d1Queries: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  /** Each message: a write and a delete per 64 KB chunk, a read per chunk each time a batch carries it. */
  queueOps: number;
  queueMessagesSent: number;
  queueBatches: number;
  /** The director's own JSON log lines plus one invocation log per Worker invocation. */
  logEvents: number;
}

function unitsOf(phase: Pick<PhaseFigures, "byInvocation" | "logLines">): Units {
  const all = Object.entries(phase.byInvocation);
  const sum = (count: keyof InvocationTotals, which: (invocation: string) => boolean = () => true) =>
    all.reduce((n, [invocation, totals]) => n + (which(invocation) ? totals[count] : 0), 0);
  const object = (invocation: string) => !isWorkerLine(invocation);
  const workerRequests = sum("worker_requests");
  const writeChunks = sum("queue_write_chunks");
  return {
    workerRequests,
    cpuMs: sum("active_ms", isWorkerLine),
    doRequests: sum("do_requests") - sum("lines", object) + sum("lines", isAlarm),
    doGbS: (sum("active_ms", object) / 1000) * DO_GB,
    doRowsRead: sum("do_rows_read"),
    doRowsWritten: sum("do_rows_written"),
    d1Queries: sum("d1_queries"),
    d1RowsRead: sum("rows_read"),
    d1RowsWritten: sum("rows_written"),
    queueOps: 2 * writeChunks + sum("queue_read_chunks"),
    queueMessagesSent: sum("queue_messages_sent"),
    queueBatches: sum("lines", (invocation) => invocation.startsWith("queue:")),
    logEvents: phase.logLines + workerRequests,
  };
}

// ---- the run -------------------------------------------------------------------------------

export interface PhaseFigures {
  name: string;
  kind: "setup" | "registration" | "renewal" | "warm-up" | "notify";
  shape: ShapeKey | null;
  round: number | null;
  /** Notifies sent, or registrations made. */
  operations: number;
  /** Push messages the push service accepted. */
  deliveries: number;
  seconds: number;
  byInvocation: Record<string, InvocationTotals>;
  /** The director's JSON log lines written in the phase. */
  logLines: number;
  /** CPU time of the local workerd processes in the phase (Worker, objects and the simulated D1 and Queues alike). */
  workerdCpuMs: number | null;
}

export interface SqliteSize {
  pageSize: number;
  /** Pages in use: page_count − freelist_count. */
  pages: number;
  /** Bytes of each table with its indexes (dbstat). */
  tables: Record<string, number>;
}

export interface CostFigures {
  shapes: { key: ShapeKey; topics: number; perTopic: number }[];
  rounds: number;
  phases: PhaseFigures[];
  /** Meter lines no phase window held (between phases), by invocation. */
  unattributed: Record<string, number>;
  registrations: number;
  /** Characters in each measured registration's push endpoint. */
  endpointLength: number;
  d1Before: SqliteSize;
  d1After: SqliteSize;
  /** TopicHub databases of notified topics: how many, and bytes in use each (mean). */
  topicHubs: { count: number; bytes: number };
  /** Push-service checks that failed and subscribers that got a message twice. */
  errors: string[];
  duplicates: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A push endpoint of the length FCM's are (`…/fcm/send/<token>`), with real keys. */
function realisticSubscription() {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  return {
    endpoint: `https://fcm.googleapis.com/fcm/send/${randomBytes(16).toString("base64url")}:APA91b${randomBytes(105).toString("base64url")}`,
    keys: { p256dh: ecdh.getPublicKey().toString("base64url"), auth: randomBytes(16).toString("base64url") },
  };
}

/** CPU ms the director's workerd processes have used so far (Linux /proc), or null elsewhere. */
function workerdCpuMs(director: Director): number | null {
  try {
    const ps = execFileSync("ps", ["-e", "-o", "pid=,pgid=,comm="], { encoding: "utf8" });
    const pids = ps
      .split("\n")
      .map((line) => line.trim().split(/\s+/))
      .filter(([, pgid, comm]) => Number(pgid) === director.pid && comm === "workerd")
      .map(([pid]) => pid);
    if (pids.length === 0) return null;
    let ticks = 0;
    for (const pid of pids) {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    }
    return (ticks * 1000) / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
  } catch {
    return null;
  }
}

/**
 * Sizes a SQLite database workerd keeps open: its file and WAL copied while the director is quiet,
 * the copy opened (which replays the WAL) and measured; the original is never touched.
 */
function sqliteSize(file: string): SqliteSize {
  return readCopy(file, (db) => {
    const tables: Record<string, number> = {};
    const rows = db
      .prepare("SELECT m.tbl_name AS tbl, SUM(d.pgsize) AS bytes FROM dbstat d JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name")
      .all() as { tbl: string; bytes: number }[];
    for (const row of rows) tables[row.tbl] = Number(row.bytes);
    return { pageSize: pragma(db, "page_size"), pages: pragma(db, "page_count") - pragma(db, "freelist_count"), tables };
  });
}

/** The databases of one kind of object (`do/<script>-<Class>`) or of D1, without miniflare's metadata. */
function databases(director: Director, folder: string): string[] {
  const dir = path.join(director.stateDir, "v3", folder);
  return readdirSync(dir)
    .filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite")
    .map((name) => path.join(dir, name));
}

/** Whether a TopicHub's storage holds a flushed message: its record (`hub`), or `seq` as hubs kept it before. */
function flushedHub(file: string): boolean {
  return readCopy(file, (db) => {
    try {
      return db.prepare("SELECT 1 FROM _cf_KV WHERE key IN ('hub', 'seq')").get() !== undefined;
    } catch {
      return false; // no kv table: nothing stored
    }
  });
}

const isLogLine = (line: string) => /^\{"level":"(info|warn|error)","event":/.test(line.trim());

export async function costWorkload(): Promise<CostFigures> {
  const service = new PushService();
  service.decryptEvery = 50;
  const [director] = await Promise.all([startDirector({}, ["--var", "METER:true", "--var", `WS_REPLAY_SECONDS:${REPLAY_SECONDS}`]), service.start()]);
  try {
    service.vapidPublicKey = director.vars.VAPID_PUBLIC_KEY;
    const windows: { phase: PhaseFigures; from: number; to: number }[] = [];
    // the output kept is the last 4 MB (test/e2e/director.ts): log lines are counted only while
    // none has been dropped, which a run this size never comes near
    let outputDropped = false;
    const outputLength = () => {
      const length = director.output().length;
      if (length > OUTPUT_SAFE) outputDropped = true;
      return length;
    };

    /** Runs `work` as a phase: its window closes once no meter line has come for QUIET_MS. */
    const phase = async (
      name: string,
      kind: PhaseFigures["kind"],
      meta: { shape?: ShapeKey; round?: number },
      work: () => Promise<{ operations: number; deliveries: number }>,
    ) => {
      const from = performance.now();
      const outFrom = outputLength();
      const cpuFrom = workerdCpuMs(director);
      const done = await work();
      for (;;) {
        const last = director.meters().at(-1)?.at ?? 0;
        const quiet = performance.now() - Math.max(last, from);
        if (quiet >= QUIET_MS) break;
        await sleep(QUIET_MS - quiet + 50);
      }
      const to = performance.now();
      const cpuTo = workerdCpuMs(director);
      const output = director.output().slice(outFrom);
      const lines = director.meters().filter((m) => m.at >= from && m.at <= to);
      const figures: PhaseFigures = {
        name,
        kind,
        shape: meta.shape ?? null,
        round: meta.round ?? null,
        ...done,
        seconds: (to - from) / 1000,
        byInvocation: totalsOf(lines),
        logLines: output.split("\n").filter(isLogLine).length,
        workerdCpuMs: cpuFrom === null || cpuTo === null ? null : cpuTo - cpuFrom,
      };
      windows.push({ phase: figures, from, to });
      console.log(`cost: ${name}: ${done.operations} operations, ${done.deliveries} deliveries, ${lines.length} meter lines, ${figures.seconds.toFixed(1)} s`);
      return figures;
    };

    let tenant: { notify_token: string } = { notify_token: "" };
    const register = async (subscriptions: { topic: string; endpoint: string; keys: { p256dh: string; auth: string } }[], concurrency: number) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < subscriptions.length) {
            const { topic, endpoint, keys } = subscriptions[next++];
            const r = await api(director, "/v1/subscriptions", tenant.notify_token, { json: { topic, push_services: { web_push: { endpoint, keys } } } });
            if (r.status !== 201) throw new Error(`registering answered ${r.status}: ${JSON.stringify(r.body)}`);
          }
        }),
      );
      return { operations: subscriptions.length, deliveries: 0 };
    };

    // the workload's subscribers first: the wait before the first round then overlaps the rest
    const subscribers = new Map<ShapeKey, { topic: string; subs: SubscriberInfo[] }[]>();
    for (const shape of SHAPES) {
      subscribers.set(
        shape.key,
        Array.from({ length: shape.topics }, (_, t) => ({
          topic: `${shape.key.toLowerCase()}-${t}`,
          subs: Array.from({ length: shape.perTopic }, () => service.addSubscriber()),
        })),
      );
    }
    const workload = [...subscribers.values()].flat().flatMap(({ topic, subs }) => subs.map((s) => ({ topic, endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } })));
    await phase("setup", "setup", {}, async () => {
      tenant = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "cost" } })).body;
      return register(workload, REGISTERING);
    });
    const lastContact = new Map<ShapeKey, number>(SHAPES.map((s) => [s.key, performance.now()]));

    const measured = Array.from({ length: REGISTRATIONS }, (_, i) => ({ topic: `size-${i}`, ...realisticSubscription() }));
    const [d1File] = databases(director, "d1/miniflare-D1DatabaseObject");
    const d1Before = sqliteSize(d1File);
    await phase("registration", "registration", {}, () => register(measured, 1));
    const d1After = sqliteSize(d1File);
    await phase("renewal", "renewal", {}, () => register(measured, 1));

    for (let round = 0; round <= ROUNDS; round++) {
      for (const shape of SHAPES) {
        const wait = lastContact.get(shape.key)! + SPARSE_GAP_MS - performance.now();
        if (wait > 0) await sleep(wait);
        const topics = subscribers.get(shape.key)!;
        // paced as the month sends this shape's notifies, so queue batches fill as they would
        const perSecond = ((SUBSCRIPTIONS / shape.perTopic) * CHANGES_PER_DAY) / 86_400;
        await phase(round === 0 ? `${shape.key} warm-up` : `${shape.key} round ${round}`, round === 0 ? "warm-up" : "notify", { shape: shape.key, round }, async () => {
          const start = performance.now();
          const sent = topics.map(async ({ topic }, i) => {
            await sleep(Math.max(0, start + (i * 1000) / perSecond - performance.now()));
            const r = await api(director, "/v1/notify", tenant.notify_token, { json: { topic, content_update: { sync_token: `r${round}` } } });
            if (r.status !== 202) throw new Error(`notify answered ${r.status}: ${JSON.stringify(r.body)}`);
          });
          await Promise.all(sent);
          const subs = topics.flatMap((t) => t.subs);
          await service.waitUntil(() => subs.every((s) => service.received(s.id).length > round), 120_000);
          return { operations: topics.length, deliveries: subs.length };
        });
        lastContact.set(shape.key, performance.now());
      }
    }

    const hubs = databases(director, "do/push-director-TopicHub").filter(flushedHub);
    const hubBytes = hubs.map((file) => {
      const size = sqliteSize(file);
      return size.pages * size.pageSize;
    });
    const unattributed: Record<string, number> = {};
    for (const line of director.meters()) {
      if (!windows.some((w) => line.at >= w.from && line.at <= w.to)) unattributed[line.invocation] = (unattributed[line.invocation] ?? 0) + 1;
    }
    const all = [...subscribers.values()].flat().flatMap((t) => t.subs);
    return {
      shapes: SHAPES.map((s) => ({ ...s })),
      rounds: ROUNDS,
      phases: windows.map((w) => (outputDropped ? { ...w.phase, logLines: Number.NaN } : w.phase)),
      unattributed,
      registrations: REGISTRATIONS,
      endpointLength: measured[0].endpoint.length,
      d1Before,
      d1After,
      topicHubs: { count: hubs.length, bytes: hubBytes.reduce((a, b) => a + b, 0) / Math.max(1, hubBytes.length) },
      errors: service.errors.slice(0, 5),
      duplicates: all.filter((s) => service.received(s.id).length > ROUNDS + 1).length,
    };
  } finally {
    await Promise.all([director.stop(), service.stop()]);
  }
}

// ---- COSTS.md ------------------------------------------------------------------------------

/** Phases taken together: their invocation totals summed, and the units of the sum. */
interface Group {
  units: Units;
  operations: number;
  deliveries: number;
  byInvocation: Record<string, InvocationTotals>;
  /** NaN when a phase's was not measured. */
  workerdCpuMs: number;
}

function merged(phases: PhaseFigures[]): Group {
  const byInvocation: Record<string, InvocationTotals> = {};
  for (const phase of phases) {
    for (const [invocation, totals] of Object.entries(phase.byInvocation)) {
      const into = (byInvocation[invocation] ??= Object.fromEntries(Object.keys(totals).map((k) => [k, 0])) as InvocationTotals);
      for (const [k, v] of Object.entries(totals)) into[k as keyof InvocationTotals] += v;
    }
  }
  const sum = (f: (p: PhaseFigures) => number | null) => phases.reduce((n, p) => n + (f(p) ?? Number.NaN), 0);
  return {
    units: unitsOf({ byInvocation, logLines: sum((p) => p.logLines) }),
    operations: sum((p) => p.operations),
    deliveries: sum((p) => p.deliveries),
    byInvocation,
    workerdCpuMs: sum((p) => p.workerdCpuMs),
  };
}

/**
 * The units priced: CPU ms is the smaller of two upper bounds, the Worker invocations' active ms
 * (their I/O waits included) and the local workerd processes' CPU time (the objects and the
 * simulated D1 and Queues included).
 */
const priced = (g: Group): Units => ({ ...g.units, cpuMs: Number.isFinite(g.workerdCpuMs) ? Math.min(g.units.cpuMs, g.workerdCpuMs) : g.units.cpuMs });

const scale = (units: Units, by: number): Units => Object.fromEntries(Object.entries(units).map(([k, v]) => [k, v * by])) as unknown as Units;
const add = (a: Units, b: Units): Units => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v + b[k as keyof Units]])) as unknown as Units;

const cost = (item: Item, usage: number) => (Math.max(0, usage - PRICES[item].included) / PRICES[item].per) * PRICES[item].price;

/** A count as a reader takes it in: 3 significant digits, thousands separated. */
function num(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  if (n === 0) return "0";
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toPrecision(3)} B`;
  if (abs >= 1e6) return `${(n / 1e6).toPrecision(3)} M`;
  if (abs >= 1000) return Math.round(n).toLocaleString("en");
  // fixed notation, 3 significant digits (toPrecision writes 4.27e-7)
  return Number(n.toFixed(Math.max(0, 2 - Math.floor(Math.log10(abs))))).toLocaleString("en", { maximumSignificantDigits: 3 });
}
const usd = (n: number) => `$${n.toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const pct = (n: number) => `${num(n * 100)} %`;

/** The month's line items, in the order of the price table, and the unit each is priced from. */
const MONTH_ITEMS: { item: Item; units?: keyof Units; short: string }[] = [
  { item: "workerRequests", units: "workerRequests", short: "requests" },
  { item: "cpuMs", units: "cpuMs", short: "CPU ms" },
  { item: "doRequests", units: "doRequests", short: "requests" },
  { item: "doGbS", units: "doGbS", short: "GB-s" },
  { item: "doRowsRead", units: "doRowsRead", short: "rows" },
  { item: "doRowsWritten", units: "doRowsWritten", short: "rows" },
  { item: "doStorageGbMonth", short: "GB-month" },
  { item: "d1RowsRead", units: "d1RowsRead", short: "rows" },
  { item: "d1RowsWritten", units: "d1RowsWritten", short: "rows" },
  { item: "d1StorageGbMonth", short: "GB-month" },
  { item: "queueOps", units: "queueOps", short: "operations" },
  { item: "logEvents", units: "logEvents", short: "events" },
];

/** How much of an item's unit each invocation's lines carry (what drives it). */
const DRIVERS: Partial<Record<Item, (t: InvocationTotals, invocation: string) => number>> = {
  workerRequests: (t) => t.worker_requests,
  cpuMs: (t, i) => (isWorkerLine(i) ? t.active_ms : 0),
  doRequests: (t, i) => t.do_requests - (isWorkerLine(i) ? 0 : t.lines) + (isAlarm(i) ? t.lines : 0),
  doGbS: (t, i) => (isWorkerLine(i) ? 0 : (t.active_ms / 1000) * DO_GB),
  doRowsRead: (t) => t.do_rows_read,
  doRowsWritten: (t) => t.do_rows_written,
  d1RowsRead: (t) => t.rows_read,
  d1RowsWritten: (t) => t.rows_written,
  queueOps: (t) => 2 * t.queue_write_chunks + t.queue_read_chunks,
};

interface MonthLine {
  item: Item;
  usage: number;
  cost: number;
}

/** One shape's month: usage and cost per line item. */
function month(figures: CostFigures, shape: ShapeKey, perTopic: number) {
  const measured = merged(figures.phases.filter((p) => p.kind === "notify" && p.shape === shape));
  const renewal = merged(figures.phases.filter((p) => p.kind === "renewal"));
  const topics = SUBSCRIPTIONS / perTopic;
  const notifies = topics * CHANGES_PER_DAY * MONTH_DAYS;
  const deliveries = SUBSCRIPTIONS * CHANGES_PER_DAY * MONTH_DAYS;
  const renewals = (SUBSCRIPTIONS * MONTH_DAYS) / RENEWAL_DAYS;
  const usage = add(scale(priced(measured), notifies / measured.operations), scale(priced(renewal), renewals / renewal.operations));
  const stored: Partial<Record<Item, number>> = {
    doStorageGbMonth: (figures.topicHubs.bytes * topics) / GB,
    d1StorageGbMonth: (bytesPerRegistration(figures) * SUBSCRIPTIONS) / GB,
  };
  const lines: MonthLine[] = MONTH_ITEMS.map(({ item, units }) => {
    const used = units === undefined ? stored[item]! : usage[units];
    return { item, usage: used, cost: cost(item, used) };
  });
  // the docs say DO rows are billed at D1's rates and inclusions, not whether the two share them
  const sharedExtra =
    cost("d1RowsRead", usage.d1RowsRead + usage.doRowsRead) - cost("d1RowsRead", usage.d1RowsRead) - cost("doRowsRead", usage.doRowsRead) +
    cost("d1RowsWritten", usage.d1RowsWritten + usage.doRowsWritten) - cost("d1RowsWritten", usage.d1RowsWritten) - cost("doRowsWritten", usage.doRowsWritten);
  const total = (withLogs: boolean) => BASE_PER_MONTH + lines.reduce((n, l) => n + (withLogs || l.item !== "logEvents" ? l.cost : 0), 0);
  return { topics, notifies, deliveries, renewals, measured, renewal, lines, sharedExtra, total };
}
type Month = ReturnType<typeof month>;

function bytesPerRegistration(figures: CostFigures): number {
  return ((figures.d1After.pages - figures.d1Before.pages) * figures.d1After.pageSize) / figures.registrations;
}

function tableBytesPerRegistration(figures: CostFigures, table: string): number {
  return ((figures.d1After.tables[table] ?? 0) - (figures.d1Before.tables[table] ?? 0)) / figures.registrations;
}

/** The rows of the units tables: what a group of phases measured, in all. */
const UNIT_ROWS: [string, (g: Group) => number][] = [
  ["Worker requests", (g) => g.units.workerRequests],
  ["Worker active ms (a bound on CPU ms)", (g) => g.units.cpuMs],
  ["workerd CPU ms (a bound on CPU ms)", (g) => g.workerdCpuMs],
  ["**CPU ms priced** (the smaller bound)", (g) => priced(g).cpuMs],
  ["Durable Object requests", (g) => g.units.doRequests],
  ["Durable Object GB-s (active ms × 128 MB)", (g) => g.units.doGbS],
  ["Durable Object SQLite rows read", (g) => g.units.doRowsRead],
  ["Durable Object SQLite rows written", (g) => g.units.doRowsWritten],
  ["D1 queries", (g) => g.units.d1Queries],
  ["D1 rows read", (g) => g.units.d1RowsRead],
  ["D1 rows written", (g) => g.units.d1RowsWritten],
  ["queue messages sent", (g) => g.units.queueMessagesSent],
  ["queue operations", (g) => g.units.queueOps],
  ["log events ⚠ (JSON lines + invocation logs)", (g) => g.units.logEvents],
];

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(" | ")} |`, `|${header.map(() => " --- |").join("")}`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

/** Per-notify units of each invocation of a shape: who drives what. */
function invocationTable(byInvocation: Record<string, InvocationTotals>, notifies: number): string {
  const cols: [keyof InvocationTotals, string][] = [
    ["lines", "lines"],
    ["worker_requests", "Worker req."],
    ["do_requests", "DO calls made (+1 own line)"],
    ["active_ms", "active ms"],
    ["d1_queries", "D1 queries"],
    ["rows_read", "D1 rows read"],
    ["rows_written", "D1 rows written"],
    ["do_rows_read", "DO rows read"],
    ["do_rows_written", "DO rows written"],
    ["queue_messages_sent", "queue msgs sent"],
    ["queue_messages_consumed", "queue msgs consumed"],
  ];
  const rows = Object.entries(byInvocation)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([invocation, t]) => [`\`${invocation}\``, ...cols.map(([k]) => num(t[k] / notifies))]);
  return table(["invocation (per notify)", ...cols.map(([, c]) => c)], rows);
}

/** The invocations carrying an item's unit, largest first, per notify. */
function drivers(item: Item, group: Group): string {
  const of = DRIVERS[item];
  if (of === undefined) return "";
  const parts = Object.entries(group.byInvocation)
    .map(([invocation, t]) => [invocation, of(t, invocation) / group.operations] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([invocation, n]) => `\`${invocation}\` ${num(n)}`);
  return parts.join(", ");
}

export function costsMarkdown(figures: CostFigures, measuredOn: string): string {
  const months = figures.shapes.map((shape) => ({ shape, m: month(figures, shape.key, shape.perTopic) }));
  const registration = merged(figures.phases.filter((p) => p.kind === "registration"));
  const renewal = merged(figures.phases.filter((p) => p.kind === "renewal"));
  const notifyPhases = figures.phases.filter((p) => p.kind === "notify");
  const perSecond = (perTopic: number) => (SUBSCRIPTIONS * CHANGES_PER_DAY) / perTopic / 86_400;

  const prices = table(
    ["unit", "included per month", "beyond", "source"],
    [
      ["Workers Paid subscription", "—", `$${BASE_PER_MONTH} per month (the minimum)`, SOURCES.workers],
      ...(Object.keys(PRICES) as Item[]).map((item) => {
        const p = PRICES[item];
        const price = p.price.toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 3 });
        return [p.name, `${num(p.included)} ${p.unit}`, `$${price} per ${p.per === MILLION ? "million" : p.unit}${p.unconfirmed === undefined ? "" : " ⚠ not confirmed"}`, p.source];
      }),
    ],
  );

  const unitsTable = table(
    ["unit", ...months.flatMap(({ shape }) => [`${shape.key}: per notify`, `${shape.key}: per delivery`])],
    UNIT_ROWS.map(([label, of]) => [label, ...months.flatMap(({ m }) => [num(of(m.measured) / m.measured.operations), num(of(m.measured) / m.measured.deliveries)])]),
  );

  const registrationTable = table(
    ["unit", "per registration", "per renewal"],
    UNIT_ROWS.map(([label, of]) => [label, num(of(registration) / registration.operations), num(of(renewal) / renewal.operations)]),
  );

  const monthTable = table(
    ["line item", ...months.flatMap(({ shape }) => [`${shape.key}: usage`, `${shape.key}: cost`])],
    [
      ["Workers Paid subscription", ...months.flatMap(() => ["—", usd(BASE_PER_MONTH)])],
      ...MONTH_ITEMS.map(({ item, short }) => [
        `${PRICES[item].name}${PRICES[item].unconfirmed === undefined ? "" : " ⚠"}`,
        ...months.flatMap(({ m }) => {
          const line = m.lines.find((l) => l.item === item)!;
          return [`${num(line.usage)} ${short}`, usd(line.cost)];
        }),
      ]),
      ["**total of METER's units**", ...months.flatMap(({ m }) => ["", `**${usd(m.total(false))}**`])],
      ["**total with Workers Logs ⚠**", ...months.flatMap(({ m }) => ["", `**${usd(m.total(true))}**`])],
    ],
  );

  const dominant = months.map(({ shape, m }) => {
    const billed = m.lines.filter((l) => l.item !== "logEvents").sort((a, b) => b.cost - a.cost);
    const usage = billed.reduce((n, l) => n + l.cost, 0);
    const [first, second, third] = billed;
    const driven = (l: MonthLine) => {
      const by = drivers(l.item, m.measured);
      return by === "" ? "" : ` (per notify: ${by})`;
    };
    return `- Shape ${shape.key}: **${PRICES[first.item].name}**, ${usd(first.cost)}: ${pct(first.cost / usage)} of the ${usd(usage)} charged for usage${driven(first)}. Next: ${PRICES[second.item].name}, ${usd(second.cost)}${driven(second)}; ${PRICES[third.item].name}, ${usd(third.cost)}${driven(third)}.`;
  });

  const invocationSections = months
    .map(
      ({ shape, m }) =>
        `Shape ${shape.key} (${shape.topics} topics × ${shape.perTopic}; ${m.measured.operations} notifies and ${m.measured.deliveries} deliveries over ${figures.rounds} rounds):\n\n${invocationTable(m.measured.byInvocation, m.measured.operations)}`,
    )
    .join("\n\n");

  const rounds = figures.phases
    .filter((p) => p.kind === "notify" || p.kind === "warm-up")
    .map((p) => `${p.name}${p.kind === "warm-up" ? " (not counted)" : ""} ${p.seconds.toFixed(1)} s`)
    .join(", ");
  const unattributed = Object.entries(figures.unattributed);
  const queueBatch = (g: Group, queue: string) => (g.byInvocation[queue]?.queue_messages_consumed ?? 0) / (g.byInvocation[queue]?.lines ?? Number.NaN);

  return `# Costs

What the director costs on Cloudflare's Workers Paid plan, from what it does. \`npm run bench\` with
\`BENCH_PARTS=cost\` (\`bench/cost.ts\`) ran a metered workload through \`npm start\` on ${measuredOn}. Every
invocation (Worker request, queue batch, cron, tracked Durable Object call or alarm) wrote one
\`meter\` line (METER=true, \`src/meter.ts\`) with the units Cloudflare bills; the lines, added up per
phase of the workload, are the units below, and the month is those units at Cloudflare's prices.

## Prices (Workers Paid, read ${PRICES_READ})

${prices}

Read on ${PRICES_READ} from Cloudflare's documentation (its source, \`cloudflare/cloudflare-docs\`; the
copy read may lag the live pages). Not confirmed:
- Workers Logs (⚠): ${PRICES.logEvents.unconfirmed}. The month shows it apart.
- Whether Durable Objects' SQLite rows share D1's included rows: the page says their rates and
  inclusions "match D1", not whether the allowance is one. The month counts them apart; shared, it
  would cost ${months.map(({ shape, m }) => `${usd(m.sharedExtra)} more for shape ${shape.key}`).join(" and ")}.

## How the units are counted

- **Worker requests**: one per \`fetch\`, queue batch and cron invocation.
- **CPU ms**: estimated from active ms, the wall time from an invocation's start to its end. A
  Worker's active ms includes every wait on D1, Durable Objects, the queues and the push service,
  so it is an upper bound on its CPU time; here, with one workerd running everything on a busy
  2-core machine, it also includes waiting for the CPU. A second upper bound is the CPU time of
  the local workerd processes in the phase (the objects and the simulated D1 and Queues included);
  the month prices the smaller of the two. Durable Objects are billed by duration, not CPU.
- **Durable Object requests**: each stub call is counted once, by its caller (the Worker or another
  object); an object's own line carries 1 for each tracked call, which is not counted again; alarms,
  which no caller makes, come from the objects' \`….alarm\` lines. So: Σ do_requests − object lines +
  alarm lines.
- **Durable Object GB-s**: the objects' lines' active ms × 128 MB. Calls overlapping on one object
  each count (the platform bills the overlap once): an upper bound. The hubs accept sockets with the
  Hibernation API and hold nothing open, so an idle hub is not billed.
- **Durable Object rows**: kv gets and list entries read; puts, deletes and \`setAlarm\` written; SQL
  rows as the cursor reports them.
- **D1 rows**: \`rows_read\` and \`rows_written\` of every statement's \`meta\`.
- **Queue operations**: each message is one write and one delete per 64 KB chunk (1 KB = 1,000
  bytes, ~100 bytes of metadata) and one read per chunk each time a batch carries it (a retry reads
  again). Every message here fit one chunk.
- **Log events** (⚠, not counted by METER): the director's JSON log lines in its output, plus one
  invocation log per Worker invocation; Durable Object invocations' own logs, if billed, are not in it.

## Units per notify and per delivery

One tenant, the shipped COALESCE_MS (a 1 s merge window), ${months.map(({ shape }) => `shape ${shape.key}: ${shape.topics} topics with ${shape.perTopic} Web Push subscription${shape.perTopic === 1 ? "" : "s"} each`).join(", ")}.
A round notified every topic once, paced at the rate the month below sends that shape's notifies
(${months.map(({ shape }) => `${num(perSecond(shape.perTopic))}/s for ${shape.key}`).join(", ")}, so queue batches fill as they would), and waited until every subscriber
had the message. A topic's rounds were ${SPARSE_GAP_MS / 1000} s apart, longer than a hub trusts what D1 said of its
registrations (60 s), and WS_REPLAY_SECONDS was ${REPLAY_SECONDS}: so, like a topic changing every 2.4 h, each flush asked
D1 again and pruned the previous message from the replay log. A warm-up round came first. Rounds:
${rounds}. Subscribers that got a message twice: ${figures.duplicates}; push-service check failures:
${figures.errors.length === 0 ? "none" : figures.errors.join("; ")}.

${unitsTable}

### Which invocation drives each unit

\`fetch\` is \`POST /v1/notify\` (\`src/routes/notify.ts\`: the tenant's token, its notify budget from the
isolate's lease or \`TenantLimiter.takeNotifies\`, then \`TopicHub.accept\`). \`TopicHub.accept\` merges the
change into the pending message and sets the alarm; \`TopicHub.alarm\` flushes it: asks D1 whether the
topic has registrations, numbers and logs it, queues one job on push-fanout (\`src/hub/topic-hub.ts\`).
\`queue:push-fanout\` reads the topic's recipients and queues chunks of up to 50 on push-deliveries
(\`src/queues/fanout.ts\`); \`queue:push-deliveries\` reads the subscriptions' keys, encrypts and sends
each push message, and writes each job's outcomes and hourly counts to D1 (\`src/queues/deliveries.ts\`).

${invocationSections}

### Registrations and storage

A registration here is \`POST /v1/subscriptions\` with a new Web Push subscription (an endpoint of
${figures.endpointLength} characters, as FCM's are) and one topic; a renewal is the same request again. ${figures.registrations} of
each, one at a time:

${registrationTable}

**D1 bytes per registration: ${num(bytesPerRegistration(figures))}**, measured: the local D1 database (SQLite) before and after the
${figures.registrations} registrations, each file copied with its WAL and opened with \`node:sqlite\`, (page_count −
freelist_count) × page_size (${figures.d1After.pageSize} B); by table with its indexes (dbstat): ${["subscriptions", "registrations"]
    .map((t) => `${t} ${num(tableBytesPerRegistration(figures, t))} B`)
    .join(", ")}. A notified topic's TopicHub storage, measured the same way over ${figures.topicHubs.count} hubs:
${num(figures.topicHubs.bytes)} B.

## A 30-day month for ${num(SUBSCRIPTIONS)} Web Push subscriptions

Each topic changes ${CHANGES_PER_DAY} times a day. ${months
    .map(({ shape, m }) => `Shape ${shape.key}: ${num(m.topics)} topics, ${num(m.notifies)} notifies and ${num(m.deliveries)} deliveries a month`)
    .join(". ")}.
Usage is the units per notify above × notifies, plus ${num(months[0].m.renewals)} renewals (each subscription renewed every
${RENEWAL_DAYS} days, the longest a registration lives) × the units per renewal. Storage: ${num(SUBSCRIPTIONS)} registrations
× the bytes per registration in D1, and one hub's storage × topics. Each shape is priced as an
account of its own, each line item beyond what the plan includes.

${monthTable}

Which unit dominates:

${dominant.join("\n")}
${unattributed.length === 0 ? "" : `\nMeter lines outside every phase (not in any figure): ${unattributed.map(([i, n]) => `${i} ${n}`).join(", ")}.\n`}
${planSection(figures, months, queueBatch)}`;
}

function planSection(figures: CostFigures, months: { shape: { key: ShapeKey; perTopic: number }; m: Month }[], queueBatch: (g: Group, queue: string) => number): string {
  const perDay = 86_400;
  const rate = (n: number) => `${num(n)}/s`;
  const plan = months.map(({ shape, m }) => {
    const g = m.measured;
    const per = (count: keyof InvocationTotals, invocation: string) => (g.byInvocation[invocation]?.[count] ?? 0) / g.operations;
    const notifiesPerSecond = ((PLAN_SUBSCRIPTIONS / shape.perTopic) * CHANGES_PER_DAY) / perDay;
    return {
      key: shape.key,
      notifiesPerSecond,
      limiter: per("lines", "TenantLimiter.takeNotifies"),
      fanoutPerSecond: notifiesPerSecond * per("queue_messages_consumed", "queue:push-fanout"),
      deliveriesPerSecond: notifiesPerSecond * per("queue_messages_consumed", "queue:push-deliveries"),
      fanoutBatch: queueBatch(g, "queue:push-fanout"),
      deliveryBatch: queueBatch(g, "queue:push-deliveries"),
      deliveryBatchMs: per("active_ms", "queue:push-deliveries") / per("lines", "queue:push-deliveries"),
      consumerShare: (per("worker_requests", "queue:push-fanout") + per("worker_requests", "queue:push-deliveries")) / (g.units.workerRequests / g.operations),
      d1Queries: g.units.d1Queries / g.operations,
      d1DeliveryQueries: per("d1_queries", "queue:push-deliveries"),
      d1Written: g.units.d1RowsWritten / g.operations,
      doPerNotify: g.units.doRequests / g.operations,
    };
  });
  const [a] = plan;
  const perRegistration = bytesPerRegistration(figures);
  const inFlight = LIMITS.queueConcurrency * Math.max(...plan.map((p) => p.deliveryBatch));
  return `## A plan for ${num(PLAN_SUBSCRIPTIONS)} subscriptions

Average rates at ${num(PLAN_SUBSCRIPTIONS)} subscriptions, each topic changing 10 times a day: ${plan.map((p) => `shape ${p.key} ${rate(p.notifiesPerSecond)} notifies`).join(", ")},
${rate((PLAN_SUBSCRIPTIONS * CHANGES_PER_DAY) / perDay)} deliveries in both. Changes cluster in working hours, so peaks are a few times these.
Limits read ${PRICES_READ}: ${SOURCES.doLimits}, ${SOURCES.doSockets}, ${SOURCES.queueLimits}, ${SOURCES.d1Limits}.

- **Topic hubs.** A Durable Object has a soft limit of ${num(LIMITS.doRequestsPerSecond)} requests/s and holds at most ${LIMITS.socketsPerObject.toLocaleString("en")}
  hibernatable WebSockets. With one hub per (tenant, topic) the load is spread already: a notify costs
  ${plan.map((p) => `${num(p.doPerNotify)} DO requests in shape ${p.key}`).join(" and ")}, and a topic changing 10 times a day sends its hub two
  requests (accept, alarm) per change. Sharding a hub matters only for a hot topic: the merge window
  allows one alarm a second, so its \`accept\` calls (one per notify request) reach the soft limit
  near ${num(LIMITS.doRequestsPerSecond)} notify requests/s; and for a topic with more than ${LIMITS.socketsPerObject.toLocaleString("en")} sockets, whose sockets must
  then spread over ⌈sockets / ${LIMITS.socketsPerObject.toLocaleString("en")}⌉ hubs named (tenant, topic, shard), the flush handing each frame to
  every shard (one request per shard per message). The one object all of a tenant's notifies can
  meet is its \`TenantLimiter\`: measured ${plan.map((p) => `${num(p.limiter)} \`takeNotifies\` per notify in shape ${p.key}`).join(", ")}; an
  isolate asks it at most once a second (its lease covers the rest), so a single tenant at shape A's
  ${rate(a.notifiesPerSecond)} calls it about once per isolate per second, far below the limit.
- **Queues.** ${num(LIMITS.queueMessagesPerSecond)} messages/s per queue, batches of at most ${LIMITS.queueMaxBatch}, ${LIMITS.queueConcurrency} concurrent consumer invocations.
  Average load: ${plan.map((p) => `shape ${p.key} ${rate(p.fanoutPerSecond)} on push-fanout and ${rate(p.deliveriesPerSecond)} on push-deliveries`).join("; ")}.
  Shape A's is ${pct(a.deliveriesPerSecond / LIMITS.queueMessagesPerSecond)} of a queue's limit, so a peak of ~${num(LIMITS.queueMessagesPerSecond / a.deliveriesPerSecond)}× the average reaches
  it; past that, each queue becomes two or more (the producer picks one by topic hash, each with its
  consumer). The batches measured held ${plan.map((p) => `${num(p.fanoutBatch)} fan-out and ${num(p.deliveryBatch)} delivery messages in shape ${p.key}`).join(", ")},
  of the 10 configured (\`max_batch_size\`); consumer invocations were ${plan.map((p) => `${pct(p.consumerShare)} (${p.key})`).join(" and ")} of the
  Worker requests. Raising \`max_batch_size\` towards ${LIMITS.queueMaxBatch} (\`max_batch_timeout\` kept at 1 s) cuts those
  requests and the per-batch D1 queries where traffic fills batches, as shape A's does. ${LIMITS.queueConcurrency} consumers
  with batches of ${num(Math.max(...plan.map((p) => p.deliveryBatch)))} hold ${num(inFlight)} messages at once, so push-deliveries keeps up with shape A's
  average while a batch takes under ${num(inFlight / a.deliveriesPerSecond)} s (here ${num(a.deliveryBatchMs)} ms, against a local push service; a
  batch's sends run concurrently, paced per origin).
- **D1 size.** ${num(perRegistration)} B per registration (measured above) × ${num(PLAN_SUBSCRIPTIONS)} = ${num((perRegistration * PLAN_SUBSCRIPTIONS) / GB)} GB, against ${num(LIMITS.d1DatabaseBytes / GB)} GB per
  database, a limit that cannot be raised: one database holds about ${num(LIMITS.d1DatabaseBytes / perRegistration)} registrations. Past that, D1
  splits by tenant (a tenant's subscriptions, registrations and counts in one of several databases,
  the tenant's row naming which): every query the director makes names one tenant.
- **D1 throughput.** A D1 database runs one query at a time: about ${num(LIMITS.d1QueriesPerSecondAt1Ms)} queries/s at 1 ms a query
  (documented; local D1 is not Cloudflare's, so not measured here). Measured per notify:
  ${plan.map((p) => `shape ${p.key} ${num(p.d1Queries)} queries (${num(p.d1DeliveryQueries)} of them by \`queue:push-deliveries\`) writing ${num(p.d1Written)} rows`).join("; ")}.
  At ${num(PLAN_SUBSCRIPTIONS)}: ${plan.map((p) => `shape ${p.key} ${rate(p.d1Queries * p.notifiesPerSecond)} queries, ${rate(p.d1Written * p.notifiesPerSecond)} rows written`).join("; ")}:
  shape A would need ${pct((a.d1Queries * a.notifiesPerSecond) / LIMITS.d1QueriesPerSecondAt1Ms)} of one database at 1 ms a query before peaks. Writing a
  delivery batch's outcomes and counts once per batch, as the fan-out consumer writes its counts,
  rather than once per job, and the split by tenant, bring it within reach.
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await costWorkload();
  const measuredOn = `${new Date().toISOString().slice(0, 10)} (${os.cpus().length} × ${os.cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version})`;
  writeFileSync(path.join(root, "COSTS.md"), costsMarkdown(figures, measuredOn));
  console.log("wrote COSTS.md");
}
