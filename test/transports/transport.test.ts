// Issue 11's outcome table, once for every transport (like hono's common router cases): each
// maps a push service's HTTP answer onto the same outcome.
import { describe, expect, it } from "vitest";
import { fcmOutcome } from "../../src/transports/fcm";
import { unansweredOutcome, withBody, type Outcome } from "../../src/transports/transport";
import { webPushOutcome } from "../../src/transports/web-push";

const transports: [string, (status: number, retryAfter: string | null) => Outcome][] = [
  ["web_push", (status, retryAfter) => webPushOutcome(status, retryAfter)],
  ["fcm", (status, retryAfter) => fcmOutcome(status, null, retryAfter)],
];

const table: [number[], Outcome["kind"]][] = [
  [[200, 201, 202, 204], "delivered"],
  [[404, 410], "gone"],
  [[408, 429, 500, 502, 503, 504, 507], "retry"],
  [[413], "too_large"],
  [[400, 401, 403, 405, 411, 415, 422], "failed"],
  [[300, 301, 302, 303, 304, 307, 308], "failed"],
];

describe.each(transports)("outcome table: %s", (_, outcomeOf) => {
  it.each(table)("%j → %s", (statuses, kind) => {
    for (const status of statuses) {
      const outcome = outcomeOf(status, null);
      expect(outcome.kind).toBe(kind);
      expect(outcome.status).toBe(status);
    }
  });

  it("holds a temporary failure back for its Retry-After, seconds or HTTP-date", () => {
    expect(outcomeOf(503, "120")).toMatchObject({ kind: "retry", afterSeconds: 120 });
    const date = new Date(Date.now() + 60_000).toUTCString();
    const after = (outcomeOf(429, date) as { afterSeconds: number }).afterSeconds;
    expect(after).toBeGreaterThanOrEqual(59);
    expect(after).toBeLessThanOrEqual(61);
    expect(outcomeOf(503, null)).toMatchObject({ kind: "retry", afterSeconds: null });
  });
});

describe("answers that never came", () => {
  it("are temporary, with no status; a timeout says so", () => {
    const timeout = new DOMException("The operation timed out.", "TimeoutError");
    expect(unansweredOutcome(timeout, "network")).toEqual({ kind: "retry", status: null, afterSeconds: null, reason: "network: no answer in 15 s", timeout: true });
    expect(unansweredOutcome(new TypeError("connection refused"), "FCM")).toEqual({ kind: "retry", status: null, afterSeconds: null, reason: "FCM: connection refused" });
  });

  it("quote at most 200 characters of a push service's body", () => {
    expect(withBody("push service answered 400", "x".repeat(500))).toBe(`push service answered 400: ${"x".repeat(200)}`);
    expect(withBody("push service answered 400", "  ")).toBe("push service answered 400");
  });
});
