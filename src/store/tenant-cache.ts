/**
 * Tenant rows kept in the isolate (issue 15): every notify authenticates its tenant, and reading
 * the row from D1 each time cost more than everything else the request did. A row is kept for
 * TENANT_CACHE_SECONDS (0 = not at all), with the notify token's stored hash and the sealed grant
 * secret as D1 has them: never a token, and every request still hashes what it presents and
 * compares in constant time. At most TENANT_CACHE_MAX rows, the least recently used leave first;
 * an id D1 does not know is not kept, so a spray of made-up ids cannot fill it.
 *
 * Whatever changes a tenant's row here (rotation, grant keys, disable, enable, limits, reseal)
 * forgets it in this isolate (`forgetTenant`), so there the change holds at once; other isolates
 * read it again within TENANT_CACHE_SECONDS.
 */
import { readConfig } from "../config";
import { getTenant, type TenantRow } from "./tenants";

export const TENANT_CACHE_MAX = 10_000;

/** id → the row and until when (ms) it may be used; a Map iterates in insertion order, oldest use first. */
const kept = new Map<string, { row: TenantRow; until: number }>();

/** The tenant's row (with its limits), from this isolate when it is fresh enough, else from D1. */
export async function cachedTenant(env: Env, id: string): Promise<TenantRow | null> {
  const seconds = readConfig(env).tenantCacheSeconds;
  if (seconds === 0) return getTenant(env.DB, id);
  const now = Date.now();
  const hit = kept.get(id);
  if (hit !== undefined) {
    kept.delete(id);
    if (hit.until > now) {
      kept.set(id, hit);
      return hit.row;
    }
  }
  const row = await getTenant(env.DB, id);
  if (row === null) return null;
  kept.set(id, { row, until: now + seconds * 1000 });
  if (kept.size > TENANT_CACHE_MAX) kept.delete(kept.keys().next().value!);
  return row;
}

/** Forgets a tenant's row here: its next request reads D1. */
export function forgetTenant(id: string): void {
  kept.delete(id);
}

/** Forgets every row (a reseal of the grant secrets changes them all). */
export function forgetAllTenants(): void {
  kept.clear();
}

/** How many rows are kept (tests). */
export const keptTenants = () => kept.size;
