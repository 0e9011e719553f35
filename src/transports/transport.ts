/** What every transport shares: a message to send and the outcome of sending it. */
import type { Urgency } from "../hub/change";

/** A push message as the transports send it: the draft's XML plus RFC 8030 delivery hints. */
export interface PushMessage {
  xml: string;
  /** RFC 8030 §5.2, seconds (> 0). */
  ttl: number;
  /** RFC 8030 §5.3. */
  urgency: Urgency;
  /** RFC 8030 §5.4 `Topic`: ≤ 32 base64url characters; null for none. */
  topic: string | null;
  /** The message as string fields, for transports that carry data rather than the XML alone (FCM). */
  data?: { topic?: string; sync_token?: string };
}

export type Outcome =
  | { kind: "delivered" }
  /** The subscription no longer exists (404/410): remove it. */
  | { kind: "gone"; reason: string }
  /** Worth another try: after `afterSeconds` when the service said so, else with backoff. */
  | { kind: "retry"; afterSeconds: number | null; reason: string }
  /** The service refused this message; trying again unchanged would not help. */
  | { kind: "failed"; reason: string };

export interface Transport<Target> {
  send(target: Target, message: PushMessage): Promise<Outcome>;
}

/** RFC 9110 §10.2.3 Retry-After: delay-seconds or an HTTP-date; null when absent or unreadable. */
export function retryAfterSeconds(value: string | null, nowMs = Date.now()): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - nowMs) / 1000));
}
