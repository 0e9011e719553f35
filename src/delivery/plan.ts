/**
 * What follows one send (issue 11), decided without I/O: what to record on the subscription, when
 * to retry the target (alone: retries are per target, never per chunk), or why it is a dead
 * letter. The deliveries consumer writes what this returns.
 */
import type { Outcome } from "../transports/transport";
import { nextAttempt } from "./schedule";

/** After a timeout, an origin's targets not yet sent wait this long; it is not counted as an attempt. */
export const DEFERRAL_SECONDS = 30;

export type FollowUp =
  | { kind: "delivered" }
  | { kind: "gone" }
  /** Refused: recorded, not retried, not a dead letter. */
  | { kind: "refused"; status: number | null; reason: string; director: boolean }
  /** Another try in `delaySeconds` as attempt `attempt`; `failure` recorded unless the director is at fault. */
  | { kind: "retry"; delaySeconds: number; attempt: number; failure: { status: number | null; reason: string } | null }
  | { kind: "dead_letter"; reason: string; failure: { status: number | null; reason: string } | null };

/** A label of a temporary failure for reasons: its status, else "timeout" or "network". */
const labelOf = (outcome: Extract<Outcome, { kind: "retry" }>) =>
  outcome.status !== null ? String(outcome.status) : outcome.timeout ? "timeout" : outcome.director ? "director" : "network";

/**
 * The follow-up of `outcome` for a target on attempt `attempt` of a message living until
 * `deadline`; `deferred`: not sent, its origin timed out earlier in the invocation.
 */
export function followUp(
  outcome: Outcome | "deferred",
  options: { attempt: number; now: number; deadline: number; random?: number },
): FollowUp {
  const { attempt, now, deadline } = options;
  if (outcome === "deferred") {
    if (now + DEFERRAL_SECONDS > deadline) {
      return { kind: "dead_letter", reason: `origin timed out; next attempt in ${DEFERRAL_SECONDS} s is past the TTL (${Math.max(0, deadline - now)} s left)`, failure: null };
    }
    return { kind: "retry", delaySeconds: DEFERRAL_SECONDS, attempt, failure: null };
  }
  switch (outcome.kind) {
    case "delivered":
      return { kind: "delivered" };
    case "gone":
      return { kind: "gone" };
    case "too_large":
      return { kind: "refused", status: outcome.status, reason: outcome.reason, director: false };
    case "failed":
      return { kind: "refused", status: outcome.status, reason: outcome.reason, director: outcome.director === true };
    case "retry": {
      const failure = outcome.director ? null : { status: outcome.status, reason: outcome.reason };
      const next = nextAttempt({ attempt, retryAfter: outcome.afterSeconds, label: labelOf(outcome), now, deadline, random: options.random });
      if ("deadLetter" in next) return { kind: "dead_letter", reason: next.deadLetter, failure };
      return { kind: "retry", delaySeconds: next.retryInSeconds, attempt: attempt + 1, failure };
    }
  }
}
