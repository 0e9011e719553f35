/**
 * The notify path's admission (issue 12): a tenant's notifications count against its leaky
 * bucket in the TenantLimiter. An isolate takes budget in leases (bucket.ts `leaseSize`) and
 * admits from its lease locally, asking the limiter again only when the lease runs out, so most
 * notifies pay no extra round trip; it never admits more than it holds, so the bucket is never
 * overdrawn. One ask per tenant at a time: requests arriving meanwhile wait for it and admit
 * from the lease it brings, so concurrent requests do not each take a lease. A lease lives a
 * second; what it did not admit is given back with the next ask.
 */
import { leaseSize } from "./bucket";
import { tenantLimiter } from "./tenant-limiter";

const LEASE_MS = 1000;
/** Tenants whose lease an isolate keeps at most (the oldest goes first). */
const MAX_LEASES = 10_000;

interface Lease {
  remaining: number;
  /** The limit it was taken under: another limit (a PUT) ends it. */
  perMinute: number;
  until: number;
}

const leases = new Map<string, Lease>();
/** The ask in flight per tenant, if any. */
const asking = new Map<string, Promise<unknown>>();

export type Admission = { ok: true } | { ok: false; retryAfter: number };

/** Admits `n` notifications of the tenant under `perMinute`, from the lease or the limiter. */
export async function admitNotifies(env: Env, tenantId: string, n: number, perMinute: number): Promise<Admission> {
  for (;;) {
    const lease = leases.get(tenantId);
    if (lease !== undefined && lease.perMinute === perMinute && lease.until > Date.now() && lease.remaining >= n) {
      lease.remaining -= n;
      return { ok: true };
    }
    const inFlight = asking.get(tenantId);
    if (inFlight === undefined) break;
    await inFlight;
  }
  const ask = askLimiter(env, tenantId, n, perMinute);
  const settled = ask.catch(() => undefined).finally(() => asking.delete(tenantId));
  asking.set(tenantId, settled);
  return ask;
}

/** Gives back what the old lease did not admit, takes `n` and a new lease. */
async function askLimiter(env: Env, tenantId: string, n: number, perMinute: number): Promise<Admission> {
  const unused = leases.get(tenantId)?.remaining ?? 0;
  leases.delete(tenantId);
  const grant = await tenantLimiter(env, tenantId).takeNotifies(n, leaseSize(perMinute), unused, perMinute);
  if (!grant.ok) return grant;
  if (grant.granted > n) {
    leases.set(tenantId, { remaining: grant.granted - n, perMinute, until: Date.now() + LEASE_MS });
    if (leases.size > MAX_LEASES) leases.delete(leases.keys().next().value!);
  }
  return { ok: true };
}
