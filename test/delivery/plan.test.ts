import { describe, expect, it } from "vitest";
import { DEFERRAL_SECONDS, followUp } from "../../src/delivery/plan";

const at = { attempt: 2, now: 1000, deadline: 2000, random: 0.5 };

describe("what follows a send", () => {
  it("retries a temporary failure as the next attempt, after its Retry-After, recording it", () => {
    expect(followUp({ kind: "retry", status: 503, afterSeconds: 10, reason: "push service answered 503" }, at)).toEqual({
      kind: "retry",
      delaySeconds: 10,
      attempt: 3,
      failure: { status: 503, reason: "push service answered 503" },
    });
  });

  it("does not record the director's own faults", () => {
    expect(followUp({ kind: "retry", status: null, afterSeconds: null, reason: "SECRETS_KEY is not set", director: true }, at)).toMatchObject({ kind: "retry", failure: null });
    expect(followUp({ kind: "failed", status: null, reason: "FCM is not configured", director: true }, at)).toMatchObject({ kind: "refused", director: true });
  });

  it("refuses without retrying, and never makes a dead letter of a refusal", () => {
    expect(followUp({ kind: "failed", status: 403, reason: "r" }, at)).toEqual({ kind: "refused", status: 403, reason: "r", director: false });
    expect(followUp({ kind: "too_large", status: 413, reason: "r" }, at)).toMatchObject({ kind: "refused", status: 413 });
  });

  it("makes a dead letter when the next attempt would fall past the deadline, naming the failure", () => {
    expect(followUp({ kind: "retry", status: null, afterSeconds: null, reason: "network: no answer in 15 s", timeout: true }, { ...at, attempt: 5, deadline: 1010 })).toEqual({
      kind: "dead_letter",
      reason: "timeout; next attempt in 60 s is past the TTL (10 s left)",
      failure: { status: null, reason: "network: no answer in 15 s" },
    });
  });

  it("defers a target whose origin timed out by 30 s, keeping its attempt number", () => {
    expect(followUp("deferred", at)).toEqual({ kind: "retry", delaySeconds: DEFERRAL_SECONDS, attempt: 2, failure: null });
    expect(followUp("deferred", { ...at, deadline: 1020 })).toMatchObject({ kind: "dead_letter" });
  });
});
