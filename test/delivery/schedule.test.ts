import { describe, expect, it } from "vitest";
import { backoffSeconds, MAX_QUEUE_DELAY_SECONDS, nextAttempt, queueDelay, seededRandom, ttlLeft } from "../../src/delivery/schedule";
import { retryAfterSeconds } from "../../src/transports/transport";

describe("retry schedule", () => {
  it("backs off 1, 5, 15, 30 s, then doubles to at most 300 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffSeconds(n, 0.5))).toEqual([1, 5, 15, 30, 60, 120, 240, 300, 300]);
  });

  it("jitters by ±20 %", () => {
    expect(backoffSeconds(4, 0)).toBe(24);
    expect(backoffSeconds(4, 0.999)).toBe(36);
    expect(backoffSeconds(8, 0)).toBe(240);
    expect(backoffSeconds(1, 0)).toBe(1);
  });

  it("repeats exactly with a seed", () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });

  it("takes Retry-After in seconds or as an HTTP-date, at least 1 s", () => {
    const now = Date.UTC(2026, 10, 30, 12, 0, 0);
    expect(retryAfterSeconds("120", now)).toBe(120);
    expect(retryAfterSeconds(new Date(now + 90_000).toUTCString(), now)).toBe(90);
    expect(retryAfterSeconds("soon", now)).toBeNull();
    const at = (retryAfter: number | null) => nextAttempt({ attempt: 3, retryAfter, label: "503", now: 1000, deadline: 5000, random: 0.5 });
    expect(at(120)).toEqual({ retryInSeconds: 120 });
    expect(at(retryAfterSeconds(new Date(now + 90_000).toUTCString(), now))).toEqual({ retryInSeconds: 90 });
    expect(at(0)).toEqual({ retryInSeconds: 1 });
    expect(at(null)).toEqual({ retryInSeconds: 15 });
  });

  it("makes a dead letter at once when the next attempt falls past the deadline", () => {
    expect(nextAttempt({ attempt: 1, retryAfter: 3600, label: "503", now: 1000, deadline: 1058 })).toEqual({
      deadLetter: "503; Retry-After 3600 s is past the TTL (58 s left)",
    });
    expect(nextAttempt({ attempt: 4, retryAfter: null, label: "network", now: 1000, deadline: 1010, random: 0.5 })).toEqual({
      deadLetter: "network; next attempt in 30 s is past the TTL (10 s left)",
    });
  });

  it("sends the time left as TTL and splits waits longer than a queue delay", () => {
    expect(ttlLeft(86_400, 1000 + 58, 1000)).toBe(58);
    expect(ttlLeft(60, 5000, 1000)).toBe(60);
    expect(ttlLeft(60, 999, 1000)).toBe(1);
    expect(queueDelay(1000 + 100_000, 1000)).toBe(MAX_QUEUE_DELAY_SECONDS);
    expect(queueDelay(1030, 1000)).toBe(30);
  });
});
