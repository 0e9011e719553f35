// Scale (issue 15, item 8): one notify to N registrations of a topic for each N of BENCH_SCALE
// (default 10,000, 30,000 and 100,000), checked as the 10,000 fan-out of section 2 is: every
// request's VAPID JWT verified, every 100th message decrypted, no subscriber served twice.
//
// The registrations are seeded into the local D1 by SQL: one subscription and registration made
// through the API is the template, and the other N - 1 are copies of its rows with their own
// endpoint, p256dh, sealed auth and registration id, written by `wrangler d1 execute` while the
// director is stopped (the command opens the same SQLite files in a workerd of its own), then the
// director is started again on the same state folder. The auth secret is sealed here as
// src/crypto/sealed.ts seals it: its associated data names the tenant and the endpoint, so each
// copy needs its own envelope; the template's envelope is opened here to prove the format agrees.
//
// Per N: wall time from sending the notify to the last first delivery, deliveries/s, µs per
// delivery; peak RSS (VmHWM) of workerd, read before stopping it, and of the stand-in push service,
// which runs in a Node process of its own (its maxRSS) so the figure is not the harness's; the D1
// files' size after seeding; and the counts of METER=true (src/meter.ts) summed over every
// invocation from the notify until its queues are drained, per delivery. A warm-up notify to a
// topic of one registration runs first, so the first isolate, VAPID JWT and D1 connection are not
// in the figure.
// Sizes run in ascending order; after one fails (a stall, workerd gone, a check) the larger ones
// are not tried, and the section names the largest N that worked.
import { execFile, fork, type ChildProcess } from "node:child_process";
import { randomBytes, webcrypto } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { api, startDirector, type Director, type MeterEntry } from "../test/e2e/director.ts";
import { PushService, type SubscriberInfo } from "../test/support/push-service.ts";
import { METER_COUNTS, type MeterCount } from "../src/meter-counts.ts";
import { pragma, readCopy } from "./sqlite.ts";

const root = path.resolve(import.meta.dirname, "..");
const wrangler = path.join(root, "node_modules/wrangler/bin/wrangler.js");

export const DEFAULT_SIZES = [10_000, 30_000, 100_000];
/** The notify's topic, and the warm-up's. */
const TOPIC = "big";
const WARM_TOPIC = "warm";
/** As section 2: every 100th message is decrypted. */
const DECRYPT_EVERY = 100;
/**
 * Rows per INSERT: a statement stays under D1's 100,000-byte limit on SQL length (a row's values
 * are about 250 bytes), as a deployed D1 would require.
 */
const ROWS_PER_STATEMENT = 200;
/** Registrations per `wrangler d1 execute`: the command reads its file whole and runs it as one batch. */
const ROWS_PER_FILE = 20_000;
/** One `wrangler d1 execute` of ROWS_PER_FILE rows took seconds; past this it is taken as hung. */
const SEED_TIMEOUT_MS = 600_000;
/** A fan-out that delivers nothing new for this long has stalled (a size that does not fit fails here). */
const STALL_MS = 120_000;
/** How often the harness looks at the push service's progress and at workerd. */
const POLL_MS = 250;
/** The counts of item 9, as src/meter.ts names them. */
export const COUNTS = METER_COUNTS;
export type Count = MeterCount;
/** Within this share of the smallest N's figure (the issue's done-when). */
const TOLERANCE = 0.25;

export interface ScaleFigures {
  /** Notify sent → the last subscriber's first delivery. */
  seconds: number;
  perSecond: number;
  usPerDelivery: number;
  /**
   * Peak RSS (VmHWM) of `npm start`'s workerd processes, bytes, read after the fan-out: the runtime
   * (the director's code, D1, the Durable Objects and the Queues; started with an inspector) and
   * wrangler's dev proxy in front of it (the one on the public port).
   */
  workerdPeakRss: { role: "runtime" | "proxy"; bytes: number }[];
  /** Peak RSS of the stand-in push service's own Node process (maxRSS), bytes. */
  pushServicePeakRss: number;
  /**
   * The local D1 database after seeding, bytes (page_count × page_size), and before seeding
   * (migrations, the tenant and the API's two registrations); and its files on disk after
   * seeding, the WAL included.
   */
  d1Bytes: number;
  d1BytesBefore: number;
  d1DiskBytes: number;
  /** The counts summed over the invocations from the notify until its queues were drained, and divided by n. */
  totals: Record<Count, number>;
  perDelivery: Record<Count, number>;
  /** Meter lines per invocation kind ("fetch", "queue:push-deliveries", …). */
  invocations: Record<string, number>;
  /** The totals per invocation kind: where the counts come from. */
  byInvocation: Record<string, Record<Count, number>>;
  /** What the push service checked (Report), and the requests it answered during the notify (first tries, retries, refusals). */
  checks: Omit<Report, "maxRss"> & { requests: number };
  /** Wall time of the run's phases, seconds. */
  phases: { setup: number; seed: number; restart: number; fanout: number; total: number };
}

export interface ScaleRun {
  n: number;
  /** Why this size did not complete (a stall, workerd gone, a failed check, not tried); null when it did. */
  failure: string | null;
  /** Null when it failed before the fan-out was measured. */
  figures: ScaleFigures | null;
}

/** BENCH_SCALE: a comma-separated list of sizes, or the default. */
export function scaleSizes(text = process.env.BENCH_SCALE): number[] {
  if (text === undefined || text.trim() === "") return DEFAULT_SIZES;
  return text.split(",").map((part) => {
    const n = Number(part.trim().replaceAll("_", ""));
    if (!Number.isInteger(n) || n < 2) throw new Error(`BENCH_SCALE: sizes are integers ≥ 2, not ${JSON.stringify(part)}`);
    return n;
  });
}

export async function scaleRuns(sizes: number[] = scaleSizes()): Promise<ScaleRun[]> {
  const runs: ScaleRun[] = [];
  let failed: number | null = null;
  for (const n of [...sizes].sort((a, b) => a - b)) {
    if (failed !== null) {
      runs.push({ n, failure: `not tried: ${failed.toLocaleString("en")} failed`, figures: null });
      continue;
    }
    const run = await scaleRun(n);
    console.log(
      run.figures === null
        ? `scale ${n}: failed: ${run.failure}`
        : `scale ${n}: ${run.figures.seconds.toFixed(2)} s, ${Math.round(run.figures.perSecond)}/s, ${run.figures.usPerDelivery.toFixed(0)} µs per delivery` +
            `${run.failure === null ? "" : ` (failed: ${run.failure})`}; run ${run.figures.phases.total.toFixed(0)} s (seeding ${run.figures.phases.seed.toFixed(0)} s)`,
    );
    runs.push(run);
    if (run.failure !== null) failed = n;
  }
  return runs;
}

// ---- one size -------------------------------------------------------------------------------

const now = () => performance.timeOrigin + performance.now();

async function scaleRun(n: number): Promise<ScaleRun> {
  const started = now();
  const dir = mkdtempSync(path.join(os.tmpdir(), "push-director-scale-"));
  const args = [
    "--var", "COALESCE_MS:0",
    "--var", "METER:true",
    // the seeded rows are ones the API could have made: within the tenant's registration limit
    "--var", `TENANT_MAX_REGISTRATIONS:${Math.max(100_000, n + 1)}`,
  ];
  const service = await startPushService();
  let director: Director | null = null;
  let figures: ScaleFigures | null = null;
  try {
    // 1. the director makes its secrets, schema and tenant, and the template registration
    director = await startDirector({}, args, { dir });
    await service.call("vapid", { key: director.vars.VAPID_PUBLIC_KEY });
    const tenant = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "scale" } })).body as { id: string; notify_token: string };
    const subscribers: SubscriberInfo[] = [];
    while (subscribers.length < n) subscribers.push(...((await service.call("add", { count: Math.min(10_000, n - subscribers.length) })) as SubscriberInfo[]));
    const [warm] = (await service.call("add", { count: 1 })) as SubscriberInfo[];
    const subscribe = async (topic: string, s: SubscriberInfo) => {
      const r = await api(director!, "/v1/subscriptions", tenant.notify_token, {
        json: { topic, push_services: { web_push: { endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } } } },
      });
      if (r.status !== 201) throw new Error(`subscribing answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body.id as string;
    };
    const template = { registration: await subscribe(TOPIC, subscribers[0]), subscriber: subscribers[0] };
    await subscribe(WARM_TOPIC, warm);
    const vars = director.vars;
    const stateDir = director.stateDir;
    const leader = director.pid;
    await director.stop();
    director = null;
    // wrangler d1 execute opens the same files: nothing of the director may hold them still
    await until(() => groupMembers(leader).length === 0, 30_000, "npm start's processes to end");
    const setupDone = now();

    // 2. the other n - 1 registrations, by SQL
    const d1BytesBefore = d1DatabaseBytes(stateDir);
    await seed(stateDir, dir, vars.SECRETS_KEY, tenant.id, template, subscribers.slice(1));
    const d1Bytes = d1DatabaseBytes(stateDir);
    const d1Disk = d1DiskBytes(stateDir);
    const seedDone = now();

    // 3. the director again, on the same state; a warm-up notify, then the measured one
    director = await startDirector({}, args, { dir });
    const restartDone = now();
    const workerd = () => groupMembers(director!.pid).filter((p) => p.comm === "workerd");
    if (workerd().length === 0) throw new Error("no workerd process found in npm start's process group");
    const notify = async (topic: string, token: string) => {
      const r = await api(director!, "/v1/notify", tenant.notify_token, { json: { topic, content_update: { sync_token: token } } });
      if (r.status !== 202) throw new Error(`notify answered ${r.status}: ${JSON.stringify(r.body)}`);
    };
    await notify(WARM_TOPIC, "w1");
    await progress(service, workerd, 1);
    await until(() => drained(director!.meters()), 60_000, "the warm-up's queues to drain");

    const mark = director.meters().length;
    const requestsBefore = ((await service.call("status")) as Status).requests;
    const t0 = now();
    await notify(TOPIC, "s1");
    const status = await progress(service, workerd, 1 + n);
    const seconds = (status.lastAt - t0) / 1000;
    await until(() => drained(director!.meters().slice(mark)), 60_000, "the notify's queues to drain");
    const lines = director.meters().slice(mark);
    const fanoutDone = now();
    const workerdPeakRss = workerd().map((p) => ({
      role: readFileSync(`/proc/${p.pid}/cmdline`, "utf8").includes("--inspector-addr") ? ("runtime" as const) : ("proxy" as const),
      bytes: statusField(p.pid, "VmHWM"),
    }));

    const report = (await service.call("report", {
      exclude: [warm.id],
      pattern: `<topic>${TOPIC}</topic><content-update><D:sync-token>s1</D:sync-token>`,
    })) as Report;
    const totals = Object.fromEntries(COUNTS.map((c) => [c, lines.reduce((sum, line) => sum + Number(line[c] ?? 0), 0)])) as Record<Count, number>;
    const invocations: Record<string, number> = {};
    const byInvocation: Record<string, Record<Count, number>> = {};
    for (const line of lines) {
      invocations[line.invocation] = (invocations[line.invocation] ?? 0) + 1;
      const sums = (byInvocation[line.invocation] ??= Object.fromEntries(COUNTS.map((c) => [c, 0])) as Record<Count, number>);
      for (const c of COUNTS) sums[c] += Number(line[c] ?? 0);
    }
    figures = {
      seconds,
      perSecond: n / seconds,
      usPerDelivery: (seconds * 1e6) / n,
      workerdPeakRss,
      pushServicePeakRss: report.maxRss,
      d1Bytes,
      d1BytesBefore,
      d1DiskBytes: d1Disk,
      totals,
      perDelivery: Object.fromEntries(COUNTS.map((c) => [c, totals[c] / n])) as Record<Count, number>,
      invocations,
      byInvocation,
      checks: {
        requests: status.requests - requestsBefore,
        delivered: report.delivered,
        duplicates: report.duplicates,
        errors: report.errors,
        vapidErrors: report.vapidErrors,
        firstErrors: report.firstErrors,
        decrypted: report.decrypted,
        decryptedOk: report.decryptedOk,
      },
      phases: {
        setup: (setupDone - started) / 1000,
        seed: (seedDone - setupDone) / 1000,
        restart: (restartDone - seedDone) / 1000,
        fanout: (fanoutDone - restartDone) / 1000,
        total: (now() - started) / 1000,
      },
    };
    const wrong = [
      report.delivered !== n && `${n - report.delivered} subscribers got nothing`,
      report.duplicates > 0 && `${report.duplicates} subscribers got it more than once`,
      report.errors > 0 && `the push service refused ${report.errors} requests (${report.vapidErrors} for VAPID): ${report.firstErrors.join("; ")}`,
      report.decrypted === 0 && "no message was decrypted",
      report.decryptedOk !== report.decrypted && `${report.decrypted - report.decryptedOk} decrypted messages were not the expected XML`,
    ].filter((text) => text !== false);
    return { n, failure: wrong.length === 0 ? null : `checks: ${wrong.join("; ")}`, figures };
  } catch (error) {
    const tail = director === null ? "" : `\n--- npm start's last output:\n${director.output().slice(-3000)}`;
    return { n, failure: `${(error as Error).message}${tail}`, figures };
  } finally {
    await director?.stop();
    await service.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Polls `done` until it holds; a wait on a condition another process fulfils. */
async function until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = now() + timeoutMs;
  while (!done()) {
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Every queue message the lines say was sent has been consumed: the notify's work is over (a
 * consumer's line is written when its batch ends, so a batch still running leaves them unequal).
 */
function drained(lines: MeterEntry[]): boolean {
  let sent = 0;
  let consumed = 0;
  for (const line of lines) {
    sent += Number(line.queue_messages_sent ?? 0);
    consumed += Number(line.queue_messages_consumed ?? 0);
  }
  return sent > 0 && sent === consumed;
}

/**
 * Waits until `delivered` subscribers got their message; fails when none is added for STALL_MS
 * or workerd is gone (killed for its memory, or crashed).
 */
async function progress(service: PushServiceProcess, workerd: () => { pid: number }[], delivered: number): Promise<Status> {
  let last = -1;
  let since = now();
  for (;;) {
    const status = (await service.call("status")) as Status;
    if (status.delivered >= delivered) return status;
    if (status.delivered !== last) [last, since] = [status.delivered, now()];
    if (workerd().length === 0) throw new Error(`workerd is gone at ${status.delivered} of ${delivered} subscribers, the warm-up's included (out of memory? see dmesg)`);
    if (now() - since > STALL_MS) {
      throw new Error(`stalled: no delivery for ${STALL_MS / 1000} s at ${status.delivered} of ${delivered} subscribers, the warm-up's included (${service.errorsHint(status)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// ---- processes ------------------------------------------------------------------------------

/** The processes of a process group (npm start's: node, wrangler, workerd), from /proc. */
function groupMembers(pgid: number): { pid: number; comm: string }[] {
  const members: { pid: number; comm: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // ended meanwhile
    }
    // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses
    const close = stat.lastIndexOf(")");
    const [state, , pgrp] = stat.slice(close + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") members.push({ pid: Number(entry), comm: stat.slice(stat.indexOf("(") + 1, close) });
  }
  return members;
}

/** A `kB` field of /proc/<pid>/status (VmHWM: peak RSS), in bytes. */
function statusField(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]) * 1024;
}

/** The local D1's files (database, WAL, shared memory), bytes on disk. */
function d1DiskBytes(stateDir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(path.join(stateDir, "v3", "d1"), { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) bytes += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return bytes;
}

/**
 * The local D1's size as SQLite counts it (page_count × page_size): what its file holds once the
 * WAL is checkpointed. workerd leaves every write in the WAL (the .sqlite file stays one page), and
 * a WAL holds each version of a page written, so the files on disk overstate the database. Read
 * from a copy, which SQLite recovers from the WAL, so the state itself is never touched.
 */
function d1DatabaseBytes(stateDir: string): number {
  const objects = path.join(stateDir, "v3", "d1", "miniflare-D1DatabaseObject");
  const databases = readdirSync(objects).filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite");
  if (databases.length !== 1) throw new Error(`expected one D1 database in ${objects}, found ${databases.join(", ") || "none"}`);
  return readCopy(path.join(objects, databases[0]), (db) => pragma(db, "page_count") * pragma(db, "page_size"));
}

// ---- seeding --------------------------------------------------------------------------------

/** `subscriptions.auth` sealed as src/crypto/sealed.ts does: v1.<key id>.<iv>.<AES-256-GCM>, the column and row key as associated data. */
async function authSealer(secretsKey: string, tenantId: string) {
  const raw = Buffer.from(secretsKey.trim(), "base64url");
  if (raw.byteLength !== 32) throw new Error("SECRETS_KEY in dev.vars is not 32 bytes of base64url");
  const keyId = Buffer.from(await webcrypto.subtle.digest("SHA-256", raw)).toString("base64url").slice(0, 8);
  const key = await webcrypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  // AUTH_COLUMN and subscriptionRowKey of src/store/subscriptions.ts
  const aad = (endpoint: string) => new TextEncoder().encode(`subscriptions.auth\n${tenantId}\nweb_push\n${endpoint}`);
  return {
    async seal(endpoint: string, auth: string): Promise<string> {
      const iv = randomBytes(12);
      const data = await webcrypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad(endpoint) }, key, new TextEncoder().encode(auth));
      return `v1.${keyId}.${iv.toString("base64url")}.${Buffer.from(data).toString("base64url")}`;
    },
    async open(endpoint: string, sealed: string): Promise<string> {
      const [version, id, iv, data] = sealed.split(".");
      if (version !== "v1" || id !== keyId) throw new Error(`the template's auth is not sealed as expected (${version}.${id})`);
      const plain = await webcrypto.subtle.decrypt({ name: "AES-GCM", iv: Buffer.from(iv, "base64url"), additionalData: aad(endpoint) }, key, Buffer.from(data, "base64url"));
      return new TextDecoder().decode(plain);
    },
  };
}

const sql = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * Writes `copies` as registrations of the template's topic: each a copy of the template's
 * subscription row (tenant, service, encoding, times, VAPID key as the API wrote them) with its
 * own endpoint, p256dh and sealed auth, and of its registration row (trigger, owner, expiry) with
 * its own random id. Then checks that the topic has them all and that the template's auth opens
 * with the sealing used here.
 */
async function seed(
  stateDir: string,
  dir: string,
  secretsKey: string,
  tenantId: string,
  template: { registration: string; subscriber: SubscriberInfo },
  copies: SubscriberInfo[],
): Promise<void> {
  const sealer = await authSealer(secretsKey, tenantId);
  const templateSubscription = `t.tenant_id = ${sql(tenantId)} AND t.transport = 'web_push' AND t.identifier = ${sql(template.subscriber.endpoint)}`;
  for (let from = 0; from < copies.length; from += ROWS_PER_FILE) {
    const statements: string[] = [];
    const file = copies.slice(from, from + ROWS_PER_FILE);
    for (let i = 0; i < file.length; i += ROWS_PER_STATEMENT) {
      const rows = file.slice(i, i + ROWS_PER_STATEMENT);
      const sealed = await Promise.all(rows.map((s) => sealer.seal(s.endpoint, s.auth)));
      statements.push(
        `INSERT INTO subscriptions (tenant_id, transport, service, identifier, p256dh, auth, content_encoding, sealed_token, created_at, updated_at, vapid_public_key)
SELECT t.tenant_id, t.transport, t.service, v.column1, v.column2, v.column3, t.content_encoding, t.sealed_token, t.created_at, t.updated_at, t.vapid_public_key
FROM (VALUES ${rows.map((s, j) => `(${sql(s.endpoint)}, ${sql(s.p256dh)}, ${sql(sealed[j])})`).join(",")}) v, subscriptions t WHERE ${templateSubscription};`,
        `INSERT INTO registrations (id, tenant_id, topic, subscription_id, owner, client_id, content_update_depth, property_update_depth, property_update_props, expires_at, created_at, updated_at)
SELECT v.column1, r.tenant_id, r.topic, s.id, r.owner, r.client_id, r.content_update_depth, r.property_update_depth, r.property_update_props, r.expires_at, r.created_at, r.updated_at
FROM (VALUES ${rows.map((s) => `(${sql(randomBytes(16).toString("base64url"))}, ${sql(s.endpoint)})`).join(",")}) v
JOIN subscriptions s ON s.tenant_id = ${sql(tenantId)} AND s.transport = 'web_push' AND s.identifier = v.column2,
registrations r WHERE r.id = ${sql(template.registration)};`,
      );
    }
    const last = from + ROWS_PER_FILE >= copies.length;
    if (last) {
      statements.push(
        `SELECT (SELECT COUNT(*) FROM registrations WHERE tenant_id = ${sql(tenantId)} AND topic = ${sql(TOPIC)}) AS registrations,
(SELECT auth FROM subscriptions t WHERE ${templateSubscription}) AS auth;`,
      );
    }
    const sqlFile = path.join(dir, `seed-${from}.sql`);
    writeFileSync(sqlFile, statements.join("\n"));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [wrangler, "d1", "execute", "DB", "--local", "--persist-to", stateDir, "--file", sqlFile, "--json"],
      { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" }, maxBuffer: 64 * 1024 * 1024, timeout: SEED_TIMEOUT_MS },
    );
    rmSync(sqlFile);
    if (!last) continue;
    const results = JSON.parse(stdout) as { results: { registrations: number; auth: string }[] }[];
    const { registrations, auth } = results.at(-1)!.results[0];
    if (registrations !== copies.length + 1) throw new Error(`seeding left ${registrations} registrations of ${TOPIC}, not ${copies.length + 1}`);
    if ((await sealer.open(template.subscriber.endpoint, auth)) !== template.subscriber.auth) throw new Error("the template's auth opened to another value");
  }
}

// ---- the push service, in a process of its own ---------------------------------------------

interface Status {
  requests: number;
  /** Subscribers with at least one message, and when the last became one (epoch ms). */
  delivered: number;
  lastAt: number;
  errors: number;
  firstError: string | null;
}

/** What the stand-in push service saw of the run. */
interface Report {
  /** Subscribers of the topic that received the message (n when all did). */
  delivered: number;
  /** Subscribers that received it more than once. */
  duplicates: number;
  /** Requests the push service refused a check of (VAPID, TTL, Topic, encoding, decryption), and how many of them were VAPID. */
  errors: number;
  vapidErrors: number;
  firstErrors: string[];
  /** Messages decrypted (every DECRYPT_EVERY-th), and how many gave the expected push message. */
  decrypted: number;
  decryptedOk: number;
  /** Its process's peak RSS, bytes. */
  maxRss: number;
}

interface PushServiceProcess {
  call: (op: string, args?: Record<string, unknown>) => Promise<unknown>;
  errorsHint: (status: Status) => string;
  stop: () => Promise<void>;
}

const CHILD_ARG = "scale-push-service";

/** Starts the push service in a child Node process (this file, CHILD_ARG), spoken to over IPC. */
async function startPushService(): Promise<PushServiceProcess> {
  const child: ChildProcess = fork(import.meta.filename, [CHILD_ARG], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let next = 0;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.on("message", (message: { id: number; result?: unknown; error?: string }) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) waiter?.reject(new Error(`push service: ${message.error}`));
    else waiter?.resolve(message.result);
  });
  child.once("exit", (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`the push service's process exited (${code})`));
    pending.clear();
  });
  const call = (op: string, args: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      child.send({ id, op, ...args });
    });
  await call("start");
  return {
    call,
    errorsHint: (status) => (status.errors === 0 ? "the push service refused nothing" : `the push service refused ${status.errors}, first: ${status.firstError}`),
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** The stand-in push service, counting first deliveries and duplicates as requests are answered. */
class CountingPushService extends PushService {
  delivered = 0;
  duplicates = 0;
  lastAt = 0;
  readonly ids: string[] = [];

  protected override async handle(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const id = /^\/push\/([\w-]+)$/.exec(req.url ?? "")?.[1] ?? "";
    const before = this.received(id).length;
    await super.handle(req, body, res);
    const after = this.received(id).length;
    if (after > before && before === 0) [this.delivered, this.lastAt] = [this.delivered + 1, now()];
    else if (after > before && before === 1) this.duplicates++;
  }
}

async function servePushService(): Promise<void> {
  const service = new CountingPushService();
  service.decryptEvery = DECRYPT_EVERY;
  process.on("message", async (message: { id: number; op: string; [arg: string]: unknown }) => {
    try {
      let result: unknown = null;
      if (message.op === "start") await service.start();
      else if (message.op === "vapid") service.vapidPublicKey = message.key as string;
      else if (message.op === "add") {
        result = Array.from({ length: message.count as number }, () => service.addSubscriber());
        service.ids.push(...(result as SubscriberInfo[]).map((s) => s.id));
      } else if (message.op === "status") {
        result = { requests: service.requests, delivered: service.delivered, lastAt: service.lastAt, errors: service.errors.length, firstError: service.errors[0] ?? null } satisfies Status;
      } else if (message.op === "report") {
        const exclude = new Set(message.exclude as string[]);
        const pattern = new RegExp(message.pattern as string);
        let [delivered, decrypted, decryptedOk] = [0, 0, 0];
        for (const id of service.ids) {
          if (exclude.has(id)) continue;
          const received = service.received(id);
          if (received.length > 0) delivered++;
          for (const m of received.filter((m) => m.xml !== "")) [decrypted, decryptedOk] = [decrypted + 1, decryptedOk + (pattern.test(m.xml) ? 1 : 0)];
        }
        result = {
          delivered,
          duplicates: service.duplicates,
          errors: service.errors.length,
          vapidErrors: service.errors.filter((e) => /VAPID/.test(e)).length,
          firstErrors: service.errors.slice(0, 3),
          decrypted,
          decryptedOk,
          maxRss: process.resourceUsage().maxRSS * 1024,
        } satisfies Report;
      } else throw new Error(`no operation ${message.op}`);
      process.send!({ id: message.id, result });
    } catch (error) {
      process.send!({ id: message.id, error: (error as Error).message });
    }
  });
  process.on("SIGTERM", () => service.stop().then(() => process.exit(0)));
  process.on("disconnect", () => process.exit(0));
}

if (process.argv[1] === import.meta.filename && process.argv[2] === CHILD_ARG) await servePushService();

// ---- BENCHMARKS.md --------------------------------------------------------------------------

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const thousands = (n: number) => n.toLocaleString("en");
/** Enough digits to compare per-delivery counts of 0.0001 and of 3. */
const figure = (x: number) => (x === 0 ? "0" : x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const ratioText = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : "–");

export function scaleSection(runs: ScaleRun[], measuredOn: string): string {
  const done = runs.filter((run): run is ScaleRun & { figures: ScaleFigures } => run.failure === null && run.figures !== null);
  const largest = done.at(-1);
  const smallest = done[0];
  const asked = runs.map((run) => thousands(run.n)).join(", ");
  const why = (run: ScaleRun) => (run.failure ?? "").split("\n")[0].replaceAll("|", "\\|");
  const rows = runs.map((run) => {
    const f = run.figures;
    if (f === null) return `| ${thousands(run.n)} | ${run.failure?.startsWith("not tried") ? "" : "failed: "}${why(run)} | | | | | | |`;
    const rss = f.workerdPeakRss.map((p) => `${p.role} ${mb(p.bytes)}`).join(", ");
    const checks = `${f.checks.errors} / ${f.checks.decryptedOk} of ${f.checks.decrypted} / ${f.checks.duplicates}${run.failure === null ? "" : `; failed: ${why(run)}`}`;
    return `| ${thousands(run.n)} | ${f.seconds.toFixed(2)} s | ${Math.round(f.perSecond)} | ${f.usPerDelivery.toFixed(0)} | ${rss} | ${mb(f.pushServicePeakRss)} | ${mb(f.d1Bytes)} (${((f.d1Bytes - f.d1BytesBefore) / (run.n - 1)).toFixed(0)} B per registration; ${mb(f.d1DiskBytes)} on disk) | ${checks} |`;
  });
  const countRows = COUNTS.map((c) => {
    const ratio = largest && smallest && largest !== smallest ? ratioText(largest.figures.perDelivery[c] / smallest.figures.perDelivery[c]) : "–";
    return `| ${c} | ${done.map((run) => figure(run.figures.perDelivery[c])).join(" | ")} | ${ratio} |`;
  });

  // the done-when: µs and every count per delivery at the largest N within 25 % of the smallest's
  let verdict = "";
  if (largest === undefined || smallest === undefined || largest === smallest) {
    verdict = "Fewer than two sizes completed: nothing to compare.";
  } else {
    const compared = [
      { name: "µs per delivery", ratio: largest.figures.usPerDelivery / smallest.figures.usPerDelivery },
      ...COUNTS.map((c) => ({ name: c, ratio: largest.figures.perDelivery[c] / smallest.figures.perDelivery[c] })).filter((x) => !Number.isNaN(x.ratio)),
    ];
    const outside = compared.filter((x) => !(Math.abs(x.ratio - 1) <= TOLERANCE));
    const grew = outside.filter((x) => x.ratio > 1 + TOLERANCE);
    const list = (xs: typeof compared) => xs.map((x) => `${x.name} ${ratioText(x.ratio)}`).join(", ");
    verdict =
      `Done-when (issue 15, item 8): at ${thousands(largest.n)}, µs and counts per delivery within 25 % of those at ${thousands(smallest.n)}: ` +
      (outside.length === 0 ? "**met**." : `**not met**: ${list(outside)}.`) +
      (outside.length > 0 && grew.length === 0 ? " None grew by more than 25 %: those outside fell, as costs paid once per notify are spread over more deliveries." : "") +
      (grew.length > 0 ? ` Grew by more than 25 %: ${list(grew)}.` : "");
  }
  const failures = runs.filter((run) => run.failure !== null);
  const failureText =
    failures.length === 0
      ? `Every size asked for (${asked}) completed.`
      : `Asked for ${asked}; the largest that completed: ${largest === undefined ? "none" : thousands(largest.n)}. ` +
        failures.map((run) => `${thousands(run.n)}: ${why(run)}`).join("; ") + ".";
  const phases = done.map((run) => `${thousands(run.n)}: ${run.figures.phases.total.toFixed(0)} s (seeding ${run.figures.phases.seed.toFixed(0)} s)`).join(", ");
  const vapidErrors = done.map((run) => `${thousands(run.n)}: ${run.figures.checks.vapidErrors}`).join(", ") || "–";
  const requests = done.map((run) => `${thousands(run.n)}: ${thousands(run.figures.checks.requests)}`).join(", ") || "–";
  const invocations = largest === undefined ? "" : Object.entries(largest.figures.invocations).map(([k, v]) => `${k} ${v}`).join(", ");

  return `## 7. Scale: one notify to ${runs.map((run) => thousands(run.n)).join(", ")} registrations

| registrations | wall time, notify → last delivery | deliveries per second | µs per delivery | workerd peak RSS | push service peak RSS | D1 database after seeding | checks: refused / decrypted OK / duplicates |
| --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}

Counts per delivery (METER=true, src/meter.ts: every invocation from the notify until its queues were drained, summed and divided by the registrations):

| count | ${done.map((run) => thousands(run.n)).join(" | ")} | ${largest && smallest && largest !== smallest ? `${thousands(largest.n)} ÷ ${thousands(smallest.n)}` : "ratio"} |
| --- | ${done.map(() => "---").join(" | ")} | --- |
${countRows.join("\n")}

${verdict}

${failureText}

Measured on ${measuredOn} through \`npm start\` (wrangler dev, local D1, Durable Object, Queues),
COALESCE_MS=0: one notify per size, after a warm-up notify to a topic of one registration.

Seeding: one registration was made through the API (\`POST /v1/subscriptions\`); the other N − 1 are
copies of its two rows with their own endpoint, p256dh, registration id and \`auth\` sealed under
SECRETS_KEY as the director seals it (its associated data names the endpoint), written by
\`wrangler d1 execute --local\` with the director stopped, which was then started again on the same
state. The D1 size is SQLite's page_count × page_size (read from a copy of its files), the bytes per
registration its growth over the N − 1 copies; on disk the files are larger, as workerd leaves every
write in the WAL, which holds each version of a page written.

Checks: the stand-in push service (test/support/push-service.ts) checked TTL, Topic, Content-Encoding
and the VAPID JWT (jose) of every request and decrypted every ${DECRYPT_EVERY}th message with http_ece; "refused"
counts the requests that failed a check (for VAPID: ${vapidErrors}). Requests it answered for the notify:
${requests}.

Memory: the push service ran in a Node process of its own, so its peak RSS (maxRSS) is its own. workerd's
is each process's VmHWM after the fan-out: the runtime (the director's code, D1, the Durable Objects
and the Queues) and wrangler's dev proxy in front of it, both started by the second \`npm start\`, so
the seeding is not in them.

At ${largest === undefined ? "–" : thousands(largest.n)} the meter lines were: ${invocations}. A whole run, start to stop: ${phases}.
`;
}
