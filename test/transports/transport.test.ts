// Issue 11's outcome table, once for every transport (like hono's common router cases): each
// maps a push service's HTTP answer onto the same outcome.
import { describe, expect, it } from "vitest";
import { fcmOutcome } from "../../src/transports/fcm";
import { hmsOutcomes } from "../../src/transports/hms";
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

/**
 * Every push service of src/transports/index.ts against one table: an answer of each kind, as
 * that service words it, comes to the same outcome (HMS speaks in result codes, not statuses).
 */
const services: [string, Record<"delivered" | "gone" | "retry" | "failed", () => Outcome>][] = [
  [
    "web_push",
    { delivered: () => webPushOutcome(201, null), gone: () => webPushOutcome(410, null), retry: () => webPushOutcome(503, "5"), failed: () => webPushOutcome(400, null) },
  ],
  [
    "fcm",
    {
      delivered: () => fcmOutcome(200, null, null),
      gone: () => fcmOutcome(404, { error: { status: "NOT_FOUND", details: [{ errorCode: "UNREGISTERED" }] } }, null),
      retry: () => fcmOutcome(503, { error: { status: "UNAVAILABLE" } }, "5"),
      failed: () => fcmOutcome(403, { error: { status: "PERMISSION_DENIED", details: [{ errorCode: "SENDER_ID_MISMATCH" }] } }, null),
    },
  ],
  [
    "hms",
    {
      delivered: () => hmsOutcomes(["t"], { status: 200, code: "80000000", msg: "Success", retryAfter: null, text: null })[0],
      gone: () => hmsOutcomes(["t"], { status: 400, code: "80300007", msg: "All the tokens are invalid", retryAfter: null, text: null })[0],
      retry: () => hmsOutcomes(["t"], { status: 503, code: null, msg: null, retryAfter: "5", text: null })[0],
      failed: () => hmsOutcomes(["t"], { status: 400, code: "80100003", msg: "Incorrect message structure", retryAfter: null, text: null })[0],
    },
  ],
];

describe.each(services)("one outcome table: %s", (_, answers) => {
  it.each(["delivered", "gone", "retry", "failed"] as const)("%s", (kind) => {
    expect(answers[kind]().kind).toBe(kind);
  });

  it("honours Retry-After on a temporary failure", () => {
    expect(answers.retry()).toMatchObject({ kind: "retry", afterSeconds: 5 });
  });
});

describe("HMS result codes", () => {
  const outcome = (status: number, code: string) => hmsOutcomes(["t"], { status, code, msg: null, retryAfter: null, text: null })[0].kind;
  it("retry on 429, 5xx and 81000001; refuse redirects and codes it does not know", () => {
    expect(outcome(429, "80300008")).toBe("retry");
    expect(outcome(200, "81000001")).toBe("retry");
    expect(outcome(502, "")).toBe("retry");
    expect(outcome(307, "80000000")).toBe("failed");
    expect(outcome(200, "80100001")).toBe("failed");
    // an access token refused even after a new one: failed, never gone
    expect(outcome(401, "80200003")).toBe("failed");
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
