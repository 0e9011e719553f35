/**
 * Merging a burst of changes to one topic into one message (the draft's Rate Limiting): the
 * merged message must mean everything the parts meant, so nothing a client needs is dropped.
 */
import type { Change, Urgency } from "./change";

const URGENCY_RANK: Record<Urgency, number> = { "very-low": 0, low: 1, normal: 2, high: 3 };
/** TTL used when a change names none (RFC 8030 §5.2 requires one; 0 is refused by some services). */
export const DEFAULT_TTL_SECONDS = 86_400;

function mergeDontNotify(a: string[] | "*", b: string[] | "*"): string[] | "*" {
  if (a === "*") return b;
  if (b === "*") return a;
  const inB = new Set(b);
  return a.filter((id) => inB.has(id));
}

function mergeProps(a: string[] | null, b: string[] | null): string[] | null {
  return a === null || b === null ? null : [...new Set([...a, ...b])];
}

/**
 * `later` happened after `earlier`: content and property flags are OR-ed, the later sync-token
 * wins, depths widen, urgency and TTL take the larger, and only registrations that every part
 * spared stay spared (`dont_notify` intersected, `*` standing for all).
 */
export function mergeChanges(earlier: Change, later: Change): Change {
  const a = earlier.contentUpdate;
  const b = later.contentUpdate;
  const p = earlier.propertyUpdate;
  const q = later.propertyUpdate;
  return {
    topic: later.topic,
    contentUpdate:
      a && b ? { syncToken: b.syncToken ?? a.syncToken, depth: a.depth > b.depth ? a.depth : b.depth } : (b ?? a),
    propertyUpdate: p && q ? { props: mergeProps(p.props, q.props), depth: p.depth > q.depth ? p.depth : q.depth } : (q ?? p),
    urgency: URGENCY_RANK[earlier.urgency] > URGENCY_RANK[later.urgency] ? earlier.urgency : later.urgency,
    ttl: earlier.ttl === null && later.ttl === null ? null : Math.max(earlier.ttl ?? DEFAULT_TTL_SECONDS, later.ttl ?? DEFAULT_TTL_SECONDS),
    dontNotify: mergeDontNotify(earlier.dontNotify, later.dontNotify),
  };
}
