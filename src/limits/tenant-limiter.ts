/**
 * One Durable Object per tenant that counts what crosses its topics and changes many times a
 * second: the notify budget (a leaky bucket) and open WebSockets (slots). A Durable Object runs
 * one event at a time and its synchronous storage (`ctx.storage.kv`, `ctx.storage.sql`) needs no
 * await, so check and take are one step: exact, with no D1 write. Both sit in storage, so an
 * eviction or a deploy forgets nothing.
 */
import { DurableObject } from "cloudflare:workers";
import { EMPTY_BUCKET, giveBack, levelAt, take, type Bucket } from "./bucket";
import { meteredObject, tracked } from "../meter";
import { slotRefusal, type SlotGrant, type SocketHome, type SocketLimits, type SocketSlot } from "./socket-slots";

/** The stub of a tenant's limiter. */
export const tenantLimiter = (env: Env, tenantId: string) => env.TENANT_LIMITER.get(env.TENANT_LIMITER.idFromName(tenantId));

export type NotifyGrant =
  /** `granted`: `n` plus the lease the isolate may admit from without asking again. */
  | { ok: true; granted: number }
  | { ok: false; retryAfter: number };

/**
 * A re-check of a scope's slots that found none to give back holds for this long: refusals meanwhile
 * stand without asking the hubs again, so a flood of upgrades at the limit costs at most one round
 * of hub calls per scope per second (a socket that ends gives its slot back itself at once).
 */
const RECHECK_HOLDS_MS = 1000;

interface SlotRow extends Record<string, SqlStorageValue> {
  id: string;
  home_kind: SocketHome["kind"];
  home_name: string;
}

export class TenantLimiter extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    [this.ctx, this.env] = meteredObject(this.ctx, this.env);
    // one row per open socket: `owner` NULL for the notify token's, `home_*` the hub that holds it
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS slots (id TEXT PRIMARY KEY, owner TEXT, home_kind TEXT NOT NULL, home_name TEXT NOT NULL, at INTEGER NOT NULL)",
    );
    ctx.storage.sql.exec("CREATE INDEX IF NOT EXISTS slots_owner ON slots (owner)");
  }

  private bucket(): Bucket {
    return this.ctx.storage.kv.get<Bucket>("notify") ?? EMPTY_BUCKET;
  }

  /**
   * Takes `n` notifications and, when they fit too, up to `lease` more for the asking isolate;
   * first gives back `unused` (what a previous lease of that isolate did not admit). `perMinute`
   * is the limit in force, read by the request that asks: a PUT applies to the next request.
   */
  takeNotifies(n: number, lease: number, unused: number, perMinute: number): NotifyGrant {
    return tracked(this.ctx, "TenantLimiter.takeNotifies", () => this.takeNow(n, lease, unused, perMinute));
  }

  private takeNow(n: number, lease: number, unused: number, perMinute: number): NotifyGrant {
    const now = Date.now();
    let bucket = unused > 0 ? giveBack(this.bucket(), unused, perMinute, now) : this.bucket();
    const level = levelAt(bucket, perMinute, now);
    // the lease only from what is left after `n`, never more than the bucket holds
    const granted = Math.max(n, Math.min(n + lease, Math.floor(perMinute - level)));
    const taken = take(bucket, granted, perMinute, now);
    bucket = taken.bucket;
    this.ctx.storage.kv.put("notify", bucket);
    return taken.ok ? { ok: true, granted } : { ok: false, retryAfter: taken.retryAfter };
  }

  /** The bucket's level now (GET …/limits `usage.notify_per_minute`). */
  notifyLevel(perMinute: number): number {
    return levelAt(this.bucket(), perMinute, Date.now());
  }

  /**
   * Takes a slot for a socket about to be accepted, or names the limit it would pass; `limits`
   * are those in force, read by the request that asks (a raised limit applies at once, a lowered
   * one closes nothing). The same id again is granted (a retried call). `replaces`: a slot given
   * back in the same step when this one is granted (a connection taken over by a new socket).
   *
   * Before refusing, the slots counted against the limit are re-checked with their hubs: deploys
   * and hub restarts drop sockets without `webSocketClose`, and a slot left behind must never
   * lock a user out. Awaiting the hubs lets other calls in, so the decision is taken again, in
   * one synchronous step, afterwards.
   */
  async acquireSocket(slot: SocketSlot, limits: SocketLimits, replaces: string | null = null): Promise<SlotGrant> {
    const rechecked = new Set<string>();
    for (;;) {
      const grant = this.takeSlot(slot, limits, replaces);
      if (grant.ok) return grant;
      const owner = grant.limit === "sockets_per_user" ? slot.owner : null;
      const scope = scopeKey(owner);
      if (rechecked.has(scope)) return grant;
      rechecked.add(scope);
      if (!(await this.recheck(owner))) return grant;
    }
  }

  /** Gives back the slots of sockets that ended; an unknown id (given back already) is ignored. */
  releaseSockets(ids: string[]): void {
    for (const id of ids) this.ctx.storage.sql.exec("DELETE FROM slots WHERE id = ?", id);
  }

  /** The slots taken now (GET …/limits `usage.sockets`). */
  openSockets(): number {
    return this.count(null, null);
  }

  /** One synchronous step: check and take, so the last slot cannot go twice. */
  private takeSlot(slot: SocketSlot, limits: SocketLimits, replaces: string | null): SlotGrant {
    const sql = this.ctx.storage.sql;
    if (sql.exec("SELECT 1 FROM slots WHERE id = ?", slot.id).toArray().length > 0) return { ok: true };
    const open = { tenant: this.count(null, replaces), user: slot.owner === null ? null : this.count(slot.owner, replaces) };
    const refusal = slotRefusal(open, limits);
    if (refusal !== null) return { ok: false, ...refusal };
    if (replaces !== null) this.releaseSockets([replaces]);
    sql.exec("INSERT INTO slots (id, owner, home_kind, home_name, at) VALUES (?, ?, ?, ?, ?)", slot.id, slot.owner, slot.home.kind, slot.home.hub, Date.now());
    return { ok: true };
  }

  /** The tenant's slots (`owner` null) or one user's, leaving out `except`. */
  private count(owner: string | null, except: string | null): number {
    const sql = this.ctx.storage.sql;
    const row =
      owner === null
        ? sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM slots WHERE id IS NOT ?", except).one()
        : sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM slots WHERE owner = ? AND id IS NOT ?", owner, except).one();
    return row.n;
  }

  /** Re-checks running (shared by the refusals that wait for them), and when each scope was last found full. */
  private readonly rechecks = new Map<string, Promise<boolean>>();
  private readonly heldUntil = new Map<string, number>();

  /**
   * Asks each hub holding one of the scope's slots (the user's; all the tenant's for `owner` null)
   * which of them are still open, and gives back the others. Answers whether any was given back.
   * One re-check per scope at a time; a hub that does not answer keeps its slots.
   */
  private recheck(owner: string | null): Promise<boolean> {
    const scope = scopeKey(owner);
    const running = this.rechecks.get(scope);
    if (running !== undefined) return running;
    if ((this.heldUntil.get(scope) ?? 0) > Date.now()) return Promise.resolve(false);
    const recheck = this.askHubs(owner).finally(() => this.rechecks.delete(scope));
    this.rechecks.set(scope, recheck);
    return recheck;
  }

  private async askHubs(owner: string | null): Promise<boolean> {
    const sql = this.ctx.storage.sql;
    const rows =
      owner === null
        ? sql.exec<SlotRow>("SELECT id, home_kind, home_name FROM slots").toArray()
        : sql.exec<SlotRow>("SELECT id, home_kind, home_name FROM slots WHERE owner = ?", owner).toArray();
    const byHub = Map.groupBy(rows, (row) => `${row.home_kind}\n${row.home_name}`);
    const answers = await Promise.all(
      [...byHub.values()].map(async (slots) => {
        const ids = slots.map((slot) => slot.id);
        try {
          const open = new Set(await this.hub(slots[0].home_kind, slots[0].home_name).openSocketIds(ids));
          return ids.filter((id) => !open.has(id));
        } catch {
          return [];
        }
      }),
    );
    const gone = answers.flat();
    // Sockets are never reused, and a hub counts a socket from before it asks for a slot until
    // it is accepted: what a hub did not name open is gone for good, whatever ran meanwhile.
    this.releaseSockets(gone);
    if (gone.length === 0) this.heldUntil.set(scopeKey(owner), Date.now() + RECHECK_HOLDS_MS);
    return gone.length > 0;
  }

  private hub(kind: SocketHome["kind"], id: string) {
    const namespace = kind === "topic" ? this.env.TOPIC_HUB : this.env.CONNECTION_HUB;
    return namespace.get(namespace.idFromString(id));
  }
}

/** A re-check's scope: the tenant's slots, or one user's. */
const scopeKey = (owner: string | null) => (owner === null ? "tenant" : `user:${owner}`);
