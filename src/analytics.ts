/**
 * Workers Analytics Engine, when the operator binds a dataset as `ANALYTICS` (README: Operating):
 * one data point per request and per delivery attempt, to chart and query with SQL. Optional: no
 * binding, no points, and a failing write never fails the request or the delivery.
 *
 * A point holds what the matching log line holds (src/log.ts), never more: no token, grant,
 * registration id, query string or push URL beyond its host. The tenant id is the index, so one
 * tenant's points sample together.
 */
import { errorFields, log } from "./log";

type WithAnalytics = { ANALYTICS?: AnalyticsEngineDataset; LOG_LEVEL?: string };

export interface RequestPoint {
  method: string;
  route: string;
  status: number;
  ms: number;
  tenant: string | null;
}

export interface DeliveryPoint {
  tenant: string | null;
  transport: string;
  host: string | null;
  outcome: string;
  status: number | null;
  /** sends this point counts (src/queues/deliveries.ts attemptLines) */
  count: number;
  /** the slowest of them */
  ms: number;
  attempt: number;
}

/** The data point of a request (pure): blobs are labels to group by, doubles the measures. */
export const requestPoint = (p: RequestPoint): AnalyticsEngineDataPoint => ({
  indexes: [p.tenant ?? ""],
  blobs: ["request", p.method, p.route, p.tenant ?? ""],
  doubles: [p.status, p.ms],
});

export const deliveryPoint = (p: DeliveryPoint): AnalyticsEngineDataPoint => ({
  indexes: [p.tenant ?? ""],
  blobs: ["delivery", p.transport, p.host ?? "", p.outcome, p.tenant ?? ""],
  doubles: [p.status ?? 0, p.ms, p.attempt, p.count],
});

/** Writes a point when a dataset is bound; the binding buffers it, so nothing is awaited. */
export function writePoint(env: WithAnalytics, point: AnalyticsEngineDataPoint): void {
  if (env.ANALYTICS === undefined) return;
  try {
    env.ANALYTICS.writeDataPoint(point);
  } catch (error) {
    log(env, "warn", "analytics_write_failed", errorFields(error));
  }
}
