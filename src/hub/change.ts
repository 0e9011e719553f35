/** A change to a topic's resource, as the tenant reports it, normalised for the TopicHub. */
import type { Depth } from "../depth";

export type Urgency = "very-low" | "low" | "normal" | "high";

export interface Change {
  topic: string;
  /** How far the changed resource is from the topic's resource (0, 1, 2 = infinity). */
  contentUpdate: { syncToken: string | null; depth: Depth } | null;
  propertyUpdate: { props: string[] | null; depth: Depth } | null;
  urgency: Urgency;
  /** Seconds a push service keeps the message (RFC 8030 §5.2); null = the director's default. */
  ttl: number | null;
  /** Registration ids not to notify, or "*" for none at all (draft: Push-Dont-Notify). */
  dontNotify: string[] | "*";
}

export function toDepth(value: 0 | 1 | "0" | "1" | "infinity" | undefined, fallback: Depth): Depth {
  if (value === undefined) return fallback;
  return value === "infinity" ? 2 : (Number(value) as Depth);
}
