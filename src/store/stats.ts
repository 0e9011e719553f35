/**
 * D1 access to `delivery_stats`: delivery counts per tenant, hour and transport (issue 11), written
 * by one upsert per delivery job (never on the notify path), read summed over a window of hours.
 */
import { z } from "zod";

export const DELIVERY_STAT_TRANSPORTS = ["web_push", "fcm", "hms"] as const;
/** Always in `by_transport`, zeros included; another transport appears once it has counts. */
const ALWAYS_SHOWN: readonly DeliveryStatTransport[] = ["web_push", "fcm"];
export type DeliveryStatTransport = (typeof DELIVERY_STAT_TRANSPORTS)[number];

/**
 * The window the stats routes are asked for (`?hours=`): 1 to 720 (30 days), 24 by default. Beside
 * the query it sizes, so the tenant's route and the operator's parse it alike.
 */
export const statsQuery = z.object({ hours: z.coerce.number().int().min(1).max(720).default(24) });

/** Rows are kept this long (the cron purges older ones): longer than the widest window. */
export const STATS_KEEP_SECONDS = 31 * 86_400;

const COUNTS = ["messages", "delivered", "retried", "refused", "gone", "dead_lettered", "tests"] as const;
type Count = (typeof COUNTS)[number];

/** One job's counts for one tenant and transport; absent counts are 0. */
export type DeliveryStatsRow = { tenantId: string; transport: DeliveryStatTransport } & Partial<Record<Count, number>>;

/** Unix seconds of the start of the hour `at` falls in. */
export const hourOf = (at: number) => at - (((at % 3600) + 3600) % 3600);

/** Adds each row's counts to its tenant's current hour (one upsert per row, one batch); rows of zeros write nothing. */
export async function recordDeliveryStats(db: D1Database, rows: DeliveryStatsRow[], now: number): Promise<void> {
  const hour = hourOf(now);
  const statements = rows
    .filter((row) => COUNTS.some((count) => (row[count] ?? 0) !== 0))
    .map((row) =>
      db
        .prepare(
          `INSERT INTO delivery_stats (tenant_id, hour, transport, ${COUNTS.join(", ")}) VALUES (?, ?, ?, ${COUNTS.map(() => "?").join(", ")})
           ON CONFLICT (tenant_id, hour, transport) DO UPDATE SET ${COUNTS.map((count) => `${count} = ${count} + excluded.${count}`).join(", ")}`,
        )
        .bind(row.tenantId, hour, row.transport, ...COUNTS.map((count) => row[count] ?? 0)),
    );
  if (statements.length > 0) await db.batch(statements);
}

export type DeliveryCounts = Record<Exclude<Count, "messages">, number>;

/** A tenant's counts over a window, as the stats routes show them. */
export interface TenantStats {
  tenant_id: string;
  /** Start of the first hour counted (Unix seconds). */
  from: number;
  /** Now: the current hour counts so far. */
  to: number;
  messages: number;
  deliveries: DeliveryCounts;
  /** web_push and fcm always; hms once it has counts in the window. */
  by_transport: Record<"web_push" | "fcm", { messages: number } & DeliveryCounts> & Partial<Record<"hms", { messages: number } & DeliveryCounts>>;
  subscriptions: { total: number; failing: number };
}

/**
 * The tenant's counts over the last `hours` hours, the current one included (so `from` is the start
 * of an hour), and its subscriptions now: all it has to deliver to (Web Push and FCM), and those
 * failing (no success since a failure).
 */
export async function tenantStats(db: D1Database, tenantId: string, hours: number, now: number): Promise<TenantStats> {
  const from = hourOf(now) - (hours - 1) * 3600;
  const [sums, subscriptions] = await db.batch([
    db
      .prepare(
        `SELECT transport, ${COUNTS.map((count) => `SUM(${count}) AS ${count}`).join(", ")}
         FROM delivery_stats WHERE tenant_id = ? AND hour >= ? GROUP BY transport`,
      )
      .bind(tenantId, from),
    db
      .prepare(
        `SELECT COUNT(*) AS total, COUNT(failing_since) AS failing FROM subscriptions
         WHERE tenant_id = ? AND transport IN ('web_push', 'fcm', 'hms')`,
      )
      .bind(tenantId),
  ]);
  const zero = () => Object.fromEntries(COUNTS.map((count) => [count, 0])) as Record<Count, number>;
  const byTransport = Object.fromEntries(ALWAYS_SHOWN.map((t) => [t, zero()])) as Partial<Record<DeliveryStatTransport, Record<Count, number>>>;
  const total = zero();
  for (const row of sums.results as ({ transport: string } & Record<Count, number | null>)[]) {
    if (!(DELIVERY_STAT_TRANSPORTS as readonly string[]).includes(row.transport)) continue;
    const into = (byTransport[row.transport as DeliveryStatTransport] ??= zero());
    for (const count of COUNTS) {
      into[count] += row[count] ?? 0;
      total[count] += row[count] ?? 0;
    }
  }
  const { messages, ...deliveries } = total;
  const counted = subscriptions.results[0] as { total: number; failing: number } | undefined;
  return {
    tenant_id: tenantId,
    from,
    to: now,
    messages,
    deliveries,
    by_transport: byTransport as TenantStats["by_transport"],
    subscriptions: { total: counted?.total ?? 0, failing: counted?.failing ?? 0 },
  };
}

/** Deletes up to `limit` rows of hours before `before` (the cron: `now - STATS_KEEP_SECONDS`); returns how many. */
export async function purgeDeliveryStats(db: D1Database, before: number, limit: number): Promise<number> {
  const result = await db
    .prepare("DELETE FROM delivery_stats WHERE rowid IN (SELECT rowid FROM delivery_stats WHERE hour < ? LIMIT ?)")
    .bind(before, limit)
    .run();
  return result.meta.changes;
}
