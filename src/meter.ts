/**
 * METER (issue 15, item 9): what each invocation costs in the units Cloudflare bills, counted where
 * the I/O happens and logged as one line `meter {json}` per invocation (a Worker request, a queue
 * batch, a cron event, a tracked Durable Object call or alarm). `npm run bench` part `cost` adds
 * the lines up into COSTS.md.
 *
 * With METER unset or not `true` nothing is wrapped: the env and the object state are the ones
 * the runtime gave, so metering costs nothing when off.
 *
 * When on, the bindings are wrapped:
 * - D1: every statement is a query; `rows_read`/`rows_written` come from the result's `meta`
 *   (so `first()` runs as `all()`, which reads the same rows; `raw()` and `exec()` give no meta
 *   and count as queries only);
 * - queue producers: messages and their JSON bytes sent;
 * - Durable Object namespaces: every call on a stub (an RPC method or `fetch`) is a DO request,
 *   counted by the caller;
 * - a Durable Object's own storage: kv gets and list entries read, puts, deletes and alarm
 *   changes written, SQL rows as the cursor reports them.
 * Inside an object, calls may interleave at an await: each line holds what was counted since the
 * object's previous line, so the lines add up exactly though a line may hold a neighbour's I/O.
 */
import { METER_COUNTS, type MeterCount } from "./meter-counts";

/** What one invocation cost, by count; `active_ms` is wall time from its start to its end (I/O waits included). */
export type Counts = Record<MeterCount, number>;

const ZERO = Object.fromEntries(METER_COUNTS.map((count) => [count, 0])) as Counts;

export const metering = (env: { METER?: string }) => env.METER === "true";

/** Bytes of a queue message body as sent (JSON, UTF-8). */
export const bodyBytes = (body: unknown) => new TextEncoder().encode(JSON.stringify(body) ?? "").byteLength;

/** The counts of one invocation (or of an object between two lines). */
export class Meter {
  counts: Counts = { ...ZERO };
  /** SQL cursors of an object's storage: their row counts grow as they are read. */
  private cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];

  add(field: keyof Counts, n = 1): void {
    this.counts[field] += n;
  }

  d1(meta: { rows_read?: number; rows_written?: number } | undefined): void {
    this.counts.d1_queries += 1;
    this.counts.rows_read += meta?.rows_read ?? 0;
    this.counts.rows_written += meta?.rows_written ?? 0;
  }

  cursor(cursor: SqlStorageCursor<Record<string, SqlStorageValue>>): void {
    this.cursors.push(cursor);
  }

  /** What was counted since the last drain, and a fresh start. */
  drain(): Counts {
    for (const cursor of this.cursors) {
      this.counts.do_rows_read += cursor.rowsRead;
      this.counts.do_rows_written += cursor.rowsWritten;
    }
    const counts = this.counts;
    this.counts = { ...ZERO };
    this.cursors = [];
    return counts;
  }
}

/** The `meter` line of one invocation (pure). */
export const meterLine = (invocation: string, counts: Counts) => `meter ${JSON.stringify({ invocation, ...counts })}`;

function write(invocation: string, meter: Meter, started: number, base: Partial<Counts>): void {
  const counts = meter.drain();
  for (const [field, n] of Object.entries(base)) counts[field as keyof Counts] += n ?? 0;
  counts.active_ms = Date.now() - started;
  console.log(meterLine(invocation, counts));
}

/**
 * Runs a Worker invocation with an env that counts into a fresh meter, then writes its line;
 * `base` is what the invocation itself is (a request, the messages it consumed).
 */
export async function metered<T>(env: Env, invocation: string, base: Partial<Counts>, work: (env: Env) => Promise<T>): Promise<T> {
  if (!metering(env)) return work(env);
  const meter = new Meter();
  const started = Date.now();
  try {
    return await work(meteredEnv(env, meter));
  } finally {
    write(invocation, meter, started, base);
  }
}

// ---- Durable Objects ------------------------------------------------------------------------

const objectMeters = new WeakMap<DurableObjectState<{}>, Meter>();

/**
 * The state and env a Durable Object works with: counting into one meter for the object when
 * METER is on, as given when not. The base class takes only the runtime's own state, so the
 * constructor swaps them after `super`: `[this.ctx, this.env] = meteredObject(ctx, env)`.
 */
export function meteredObject(ctx: DurableObjectState<{}>, env: Env): [DurableObjectState<{}>, Env] {
  if (!metering(env)) return [ctx, env];
  const meter = new Meter();
  const state = meteredState(ctx, meter);
  objectMeters.set(state, meter);
  return [state, meteredEnv(env, meter)];
}

/** Runs one call or alarm of an object and writes its line (`ctx` as the object holds it). */
export function tracked<T>(ctx: DurableObjectState<{}>, invocation: string, work: () => T): T {
  const meter = objectMeters.get(ctx);
  if (meter === undefined) return work();
  const started = Date.now();
  const done = () => write(invocation, meter, started, { do_requests: 1 });
  let result: T;
  try {
    result = work();
  } catch (error) {
    done();
    throw error;
  }
  if (result instanceof Promise) return result.finally(done) as T;
  done();
  return result;
}

// ---- wrappers -------------------------------------------------------------------------------

/** Calls a native method with its own object as `this` (a proxy is not the object). */
function own<T extends object>(target: T, prop: string | symbol): unknown {
  const value = Reflect.get(target, prop) as unknown;
  return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
}

export function meteredEnv(env: Env, meter: Meter): Env {
  const wrapped = new Map<string | symbol, unknown>();
  return new Proxy(env, {
    get(target, prop) {
      if (wrapped.has(prop)) return wrapped.get(prop);
      const value = Reflect.get(target, prop) as unknown;
      let result = value;
      if (isD1(value)) result = meteredD1(value, meter);
      else if (isQueue(value)) result = meteredQueue(value, meter);
      else if (isNamespace(value)) result = meteredNamespace(value, meter);
      wrapped.set(prop, result);
      return result;
    },
  });
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;
const isD1 = (value: unknown): value is D1Database => isObject(value) && typeof value.prepare === "function" && typeof value.batch === "function";
const isQueue = (value: unknown): value is Queue => isObject(value) && typeof value.send === "function" && typeof value.sendBatch === "function";
const isNamespace = (value: unknown): value is DurableObjectNamespace =>
  isObject(value) && typeof value.idFromName === "function" && typeof value.get === "function";

const statements = new WeakMap<object, D1PreparedStatement>();

function meteredStatement(inner: D1PreparedStatement, meter: Meter): D1PreparedStatement {
  const statement = {
    bind: (...values: unknown[]) => meteredStatement(inner.bind(...values), meter),
    async first(column?: string) {
      const result = await inner.all<Record<string, unknown>>();
      meter.d1(result.meta);
      const row = result.results[0];
      if (row === undefined) return null;
      return column === undefined ? row : (row[column] ?? null);
    },
    async all() {
      const result = await inner.all();
      meter.d1(result.meta);
      return result;
    },
    async run() {
      const result = await inner.run();
      meter.d1(result.meta);
      return result;
    },
    async raw(options?: { columnNames?: boolean }) {
      meter.d1(undefined);
      return options?.columnNames === true ? inner.raw({ columnNames: true }) : inner.raw();
    },
  } as unknown as D1PreparedStatement;
  statements.set(statement, inner);
  return statement;
}

function meteredD1(db: D1Database, meter: Meter): D1Database {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => meteredStatement(target.prepare(sql), meter);
      if (prop === "batch") {
        return async (list: D1PreparedStatement[]) => {
          const results = await target.batch(list.map((s) => statements.get(s) ?? s));
          for (const result of results) meter.d1(result.meta);
          return results;
        };
      }
      if (prop === "exec") {
        return async (sql: string) => {
          const result = await target.exec(sql);
          for (let i = 0; i < result.count; i++) meter.d1(undefined);
          return result;
        };
      }
      return own(target, prop);
    },
  });
}

function meteredQueue(queue: Queue, meter: Meter): Queue {
  return new Proxy(queue, {
    get(target, prop) {
      if (prop === "send") {
        return (body: unknown, options?: QueueSendOptions) => {
          meter.add("queue_messages_sent");
          meter.add("queue_bytes_sent", bodyBytes(body));
          return target.send(body, options);
        };
      }
      if (prop === "sendBatch") {
        return (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => {
          const list = [...messages];
          meter.add("queue_messages_sent", list.length);
          for (const message of list) meter.add("queue_bytes_sent", bodyBytes(message.body));
          return target.sendBatch(list, options);
        };
      }
      return own(target, prop);
    },
  });
}

function meteredStub<T extends object>(stub: T, meter: Meter): T {
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== "function" || prop === "then" || typeof prop === "symbol") return value;
      return (...args: unknown[]) => {
        meter.add("do_requests");
        return Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
      };
    },
  });
}

function meteredNamespace(namespace: DurableObjectNamespace, meter: Meter): DurableObjectNamespace {
  return new Proxy(namespace, {
    get(target, prop) {
      if (prop === "get" || prop === "getByName") {
        return (...args: unknown[]) => meteredStub(Reflect.apply(Reflect.get(target, prop) as (...a: unknown[]) => object, target, args), meter);
      }
      return own(target, prop);
    },
  });
}

function meteredKv(kv: SyncKvStorage, meter: Meter): SyncKvStorage {
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === "get") {
        return (key: string) => {
          meter.add("do_rows_read");
          return target.get(key);
        };
      }
      if (prop === "put" || prop === "delete") {
        return (...args: [string, unknown]) => {
          meter.add("do_rows_written");
          return Reflect.apply(Reflect.get(target, prop) as (...a: unknown[]) => unknown, target, args);
        };
      }
      if (prop === "list") {
        return function* (options?: SyncKvListOptions) {
          for (const entry of target.list(options)) {
            meter.add("do_rows_read");
            yield entry;
          }
        };
      }
      return own(target, prop);
    },
  });
}

function meteredSql(sql: SqlStorage, meter: Meter): SqlStorage {
  return new Proxy(sql, {
    get(target, prop) {
      if (prop === "exec") {
        return (query: string, ...bindings: unknown[]) => {
          const cursor = target.exec(query, ...bindings);
          meter.cursor(cursor);
          return cursor;
        };
      }
      return own(target, prop);
    },
  });
}

function meteredStorage(storage: DurableObjectStorage, meter: Meter): DurableObjectStorage {
  const kv = meteredKv(storage.kv, meter);
  const sql = meteredSql(storage.sql, meter);
  return new Proxy(storage, {
    get(target, prop) {
      if (prop === "kv") return kv;
      if (prop === "sql") return sql;
      if (prop === "setAlarm" || prop === "deleteAlarm" || prop === "deleteAll") {
        return (...args: unknown[]) => {
          meter.add("do_rows_written");
          return Reflect.apply(Reflect.get(target, prop) as (...a: unknown[]) => unknown, target, args);
        };
      }
      return own(target, prop);
    },
  });
}

function meteredState(ctx: DurableObjectState<{}>, meter: Meter): DurableObjectState<{}> {
  const storage = meteredStorage(ctx.storage, meter);
  return new Proxy(ctx, {
    get(target, prop) {
      if (prop === "storage") return storage;
      return own(target, prop);
    },
  });
}
