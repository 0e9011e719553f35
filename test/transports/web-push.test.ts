import { describe, expect, it } from "vitest";
import { retryAfterSeconds } from "../../src/transports/transport";
import { topicHeader, webPushOutcome } from "../../src/transports/web-push";

describe("web push outcomes (RFC 8030)", () => {
  it("maps push service answers to outcomes", () => {
    expect(webPushOutcome(201, null)).toEqual({ kind: "delivered" });
    expect(webPushOutcome(202, null)).toEqual({ kind: "delivered" });
    for (const status of [404, 410]) expect(webPushOutcome(status, null).kind).toBe("gone");
    for (const status of [400, 401, 403, 413]) expect(webPushOutcome(status, null)).toEqual({ kind: "failed", reason: `push service answered ${status}` });
    expect(webPushOutcome(429, "7")).toEqual({ kind: "retry", afterSeconds: 7, reason: "push service answered 429" });
    expect(webPushOutcome(503, null)).toEqual({ kind: "retry", afterSeconds: null, reason: "push service answered 503" });
  });

  it("reads Retry-After as seconds or an HTTP-date", () => {
    const now = Date.parse("Tue, 24 Nov 2026 10:00:00 GMT");
    expect(retryAfterSeconds("120", now)).toBe(120);
    expect(retryAfterSeconds("Tue, 24 Nov 2026 10:01:30 GMT", now)).toBe(90);
    expect(retryAfterSeconds("Tue, 24 Nov 2026 09:00:00 GMT", now)).toBe(0);
    expect(retryAfterSeconds("soon", now)).toBeNull();
    expect(retryAfterSeconds(null, now)).toBeNull();
  });
});

describe("Topic header (RFC 8030 §5.4)", () => {
  it("is 32 base64url characters, stable per topic, distinct across topics and tenants", async () => {
    const a = await topicHeader("tenant-1", "calendar");
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(a.length % 4).not.toBe(1);
    expect(await topicHeader("tenant-1", "calendar")).toBe(a);
    expect(await topicHeader("tenant-1", "contacts")).not.toBe(a);
    expect(await topicHeader("tenant-2", "calendar")).not.toBe(a);
    expect(a).not.toContain("calendar");
  });
});
