/**
 * The counts a `meter` line carries (src/meter.ts), in one list the benches read too (bench/scale.ts,
 * bench/cost.ts add the lines up): no runtime types here, so Node imports it as it is.
 */
export const METER_COUNTS = [
  "worker_requests",
  "do_requests",
  "active_ms",
  "d1_queries",
  "rows_read",
  "rows_written",
  "do_rows_read",
  "do_rows_written",
  "queue_messages_sent",
  "queue_bytes_sent",
  "queue_messages_consumed",
  "queue_bytes_consumed",
] as const;

export type MeterCount = (typeof METER_COUNTS)[number];
