// The arithmetic of the rate limits (issue 12) as pure functions of explicit times: the notify
// budget's leaky bucket and a socket's frame allowance.
import { describe, expect, it } from "vitest";
import { EMPTY_BUCKET, giveBack, leaseSize, levelAt, spendFrame, take, type Bucket, type FrameAllowance, type Take } from "../../src/limits/bucket";

const T = 1_700_000_000_000;

/** Takes 1 at `now`, `count` times; every take must pass. */
function fill(bucket: Bucket, count: number, perMinute: number, now: number): Bucket {
  for (let i = 0; i < count; i++) {
    const taken = take(bucket, 1, perMinute, now);
    expect(taken.ok, `take ${i + 1} of ${count}`).toBe(true);
    bucket = taken.bucket;
  }
  return bucket;
}

const refused = (taken: Take) => {
  expect(taken.ok).toBe(false);
  return taken as Extract<Take, { ok: false }>;
};

describe("the notify bucket", () => {
  it("passes a burst up to the limit and refuses the next with the seconds until it fits", () => {
    const full = fill(EMPTY_BUCKET, 30, 30, T);
    expect(levelAt(full, 30, T)).toBe(30);
    // one over: 1 change at 30/60 = 0.5 per second drains in 2 s
    expect(refused(take(full, 1, 30, T)).retryAfter).toBe(2);
    // at 60 per minute, 1 per second
    expect(refused(take(fill(EMPTY_BUCKET, 60, 60, T), 1, 60, T)).retryAfter).toBe(1);
  });

  it("says when a batch fits: (level + n - limit) / (limit / 60) seconds, rounded up, at least 1", () => {
    const bucket: Bucket = { level: 25, at: T };
    // 35 - 30 = 5 over, at 0.5 per second
    expect(refused(take(bucket, 10, 30, T)).retryAfter).toBe(10);
    expect(take(bucket, 5, 30, T).ok).toBe(true);
    // 100 ms after a full bucket: 29.95 + 1 is 0.95 over, 1.9 s, so 2
    expect(refused(take({ level: 30, at: T }, 1, 30, T + 100)).retryAfter).toBe(2);
    // 6000 per minute drains 1 in 10 ms: still a whole second
    expect(refused(take({ level: 6000, at: T }, 1, 6000, T)).retryAfter).toBe(1);
  });

  it("drains at limit/60 per second, never below empty", () => {
    const full: Bucket = { level: 30, at: T };
    expect(levelAt(full, 30, T + 1_000)).toBe(29.5);
    expect(levelAt(full, 30, T + 2_000)).toBe(29);
    expect(levelAt(full, 30, T + 30_000)).toBe(15);
    expect(levelAt(full, 30, T + 60_000)).toBe(0);
    expect(levelAt(full, 30, T + 3_600_000)).toBe(0);
    // a higher limit drains faster: 6000 per minute is 100 per second
    expect(levelAt({ level: 6000, at: T }, 6000, T + 1_000)).toBe(5900);
    // a clock that went back drains nothing (and adds nothing)
    expect(levelAt(full, 30, T - 5_000)).toBe(30);
  });

  it("passes once the retryAfter has passed, and then the steady rate: limit/60 per second", () => {
    let bucket = fill(EMPTY_BUCKET, 30, 30, T);
    const { retryAfter } = refused(take(bucket, 1, 30, T));
    expect(take(bucket, 1, 30, T + retryAfter * 1000 - 1).ok).toBe(false);
    // 30 per minute: one every 2 s for a minute, a second one at the same instant refused
    for (let k = 1; k <= 30; k++) {
      const now = T + k * 2_000;
      const taken = take(bucket, 1, 30, now);
      expect(taken.ok, `steady take at ${k * 2} s`).toBe(true);
      bucket = taken.bucket;
      expect(levelAt(bucket, 30, now)).toBe(30);
      expect(refused(take(bucket, 1, 30, now)).retryAfter).toBe(2);
    }
  });

  it("leaves the level as it was when it refuses", () => {
    const before: Bucket = { level: 28, at: T };
    const taken = refused(take(before, 5, 30, T + 1_000));
    expect(levelAt(taken.bucket, 30, T + 1_000)).toBe(levelAt(before, 30, T + 1_000));
    expect(levelAt(taken.bucket, 30, T + 7_000)).toBe(levelAt(before, 30, T + 7_000));
    // many refusals count nothing either
    let bucket: Bucket = before;
    for (let i = 0; i < 10; i++) bucket = refused(take(bucket, 5, 30, T + 1_000)).bucket;
    expect(levelAt(bucket, 30, T + 1_000)).toBe(27.5);
    expect(take(bucket, 2, 30, T + 1_000).ok).toBe(true);
  });

  it("counts a batch of n as n", () => {
    const taken = take(EMPTY_BUCKET, 20, 30, T);
    expect(taken.ok).toBe(true);
    expect(levelAt(taken.bucket, 30, T)).toBe(20);
    expect(refused(take(taken.bucket, 11, 30, T)).retryAfter).toBe(2);
    expect(take(taken.bucket, 10, 30, T).ok).toBe(true);
    // a batch larger than the limit itself never fits, even in an empty bucket
    expect(take(EMPTY_BUCKET, 31, 30, T).ok).toBe(false);
  });

  it("lets a raised limit be used at once", () => {
    const full = fill(EMPTY_BUCKET, 30, 30, T);
    expect(take(full, 1, 30, T).ok).toBe(false);
    const raised = take(full, 1, 60, T);
    expect(raised.ok).toBe(true);
    expect(levelAt(raised.bucket, 60, T)).toBe(31);
  });

  it("gives back what a lease did not use, never below empty", () => {
    expect(giveBack({ level: 10, at: T }, 4, 30, T)).toEqual({ level: 6, at: T });
    expect(giveBack({ level: 3, at: T }, 5, 30, T)).toEqual({ level: 0, at: T });
    // drained first: 10 - 2 s × 0.5 = 9, less 4
    expect(giveBack({ level: 10, at: T }, 4, 30, T + 2_000)).toEqual({ level: 5, at: T + 2_000 });
    expect(giveBack(EMPTY_BUCKET, 1, 30, T).level).toBe(0);
  });

  it("leases a second's worth or a tenth of the limit, whichever is less, at least 1", () => {
    expect(leaseSize(1)).toBe(1);
    expect(leaseSize(30)).toBe(1);
    expect(leaseSize(60)).toBe(1);
    expect(leaseSize(6000)).toBe(100);
    expect(leaseSize(1e9)).toBe(Math.ceil(1e9 / 60));
  });
});

describe("the frame allowance", () => {
  /** Spends `count` frames at `now`; every one must pass. */
  function spend(allowance: FrameAllowance | undefined, count: number, burst: number, perSecond: number, now: number): FrameAllowance {
    let current = allowance;
    for (let i = 0; i < count; i++) {
      const spent = spendFrame(current, burst, perSecond, now);
      expect(spent.ok, `frame ${i + 1} of ${count}`).toBe(true);
      current = spent.allowance;
    }
    return current!;
  }

  it("passes a burst, then one frame per second", () => {
    let allowance = spend(undefined, 5, 5, 1, T);
    expect(allowance.tokens).toBe(0);
    expect(spendFrame(allowance, 5, 1, T).ok).toBe(false);
    for (let k = 1; k <= 10; k++) {
      allowance = spend(allowance, 1, 5, 1, T + k * 1_000);
      expect(spendFrame(allowance, 5, 1, T + k * 1_000).ok).toBe(false);
    }
  });

  it("refills up to the burst, never beyond", () => {
    const empty = spend(undefined, 5, 5, 1, T);
    expect(spendFrame(empty, 5, 1, T + 2_000).allowance.tokens).toBe(1);
    // an hour idle still holds only the burst
    const rested = spend(empty, 5, 5, 1, T + 3_600_000);
    expect(spendFrame(rested, 5, 1, T + 3_600_000).ok).toBe(false);
  });

  it("refuses while less than one frame is left, and keeps the fraction toward the next", () => {
    const empty = spend(undefined, 5, 5, 1, T);
    const half = spendFrame(empty, 5, 1, T + 500);
    expect(half.ok).toBe(false);
    expect(half.allowance.tokens).toBeLessThan(1);
    expect(half.allowance.tokens).toBe(0.5);
    // the refusal spent nothing: the other half arrives by T + 1 s
    expect(spendFrame(half.allowance, 5, 1, T + 1_000).ok).toBe(true);
  });
});
