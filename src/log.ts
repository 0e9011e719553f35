/**
 * Structured logs: one JSON line per event, written only here, below LOG_LEVEL left unwritten.
 *
 * What a line may hold is the caller's promise, and this module's whole point: never a token, a
 * grant, a key, a body, a query string, a registration id or more of a push URL than its host
 * (`hostOf`). Workers Logs (`[observability]`) indexes the JSON fields, so a line is one object.
 */

export type Level = "info" | "warn" | "error";

const RANK: Record<Level, number> = { info: 0, warn: 1, error: 2 };

/** LOG_LEVEL as set: `info` (the default, also for anything unknown), `warn` or `error`. */
export function levelOf(setting: string | undefined): Level {
  const value = (setting ?? "").trim().toLowerCase();
  return value === "warn" || value === "error" ? value : "info";
}

/** The line for an event at `level`, or null when LOG_LEVEL leaves it out (pure). */
export function logLine(threshold: Level, level: Level, event: string, fields: Record<string, unknown>): string | null {
  if (RANK[level] < RANK[threshold]) return null;
  return JSON.stringify({ level, event, ...fields });
}

/** Writes one line: `error` to console.error, the rest to console.log. */
export function log(env: { LOG_LEVEL?: string }, level: Level, event: string, fields: Record<string, unknown> = {}): void {
  const line = logLine(levelOf(env.LOG_LEVEL), level, event, fields);
  if (line === null) return;
  if (level === "error") console.error(line);
  else console.log(line);
}

/** A push URL as it may be logged: its host alone (the path is the subscription's secret). */
export function hostOf(url: string | null | undefined): string | null {
  if (url === null || url === undefined) return null;
  try {
    return new URL(url).host || null;
  } catch {
    return null;
  }
}

/** An error as it may be logged: its name and message, never its stack. */
export function errorFields(error: unknown): { error: string; message: string } {
  return error instanceof Error ? { error: error.name, message: error.message } : { error: typeof error, message: String(error) };
}
