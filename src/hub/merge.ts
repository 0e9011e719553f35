/**
 * Merging a burst of changes to one topic into one message (the draft's Rate Limiting): the
 * merged message must mean everything the parts meant, so nothing a client needs is dropped, and
 * a property list that grows too long widens to "any property" rather than growing without bound.
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

/** Most property names one property update names; past it, the update names none (any property). */
export const MAX_MERGED_PROPS = 100;
/**
 * Most bytes of property names one property update names: the sum, over its names, of each name's
 * length in UTF-8 as it is kept (Clark notation, `{DAV:}displayname` is 17 bytes), with nothing
 * counted for separators or markup. A topic's pending change lives in the hub's storage and rides
 * in one fan-out queue message (≤ 128 KB), so a tenant must not be able to grow it at will.
 */
export const MAX_MERGED_PROPS_BYTES = 32 * 1024;

/**
 * `props` itself while it is within MAX_MERGED_PROPS names and MAX_MERGED_PROPS_BYTES bytes, else
 * null. Null (no `prop` list) means any property may have changed (the draft's property-update),
 * so a client told less precisely still refreshes what it needs: the message is still sent.
 */
export function boundProps(props: string[] | null): string[] | null {
  if (props === null || props.length > MAX_MERGED_PROPS) return null;
  const encoder = new TextEncoder();
  let bytes = 0;
  for (const name of props) {
    bytes += encoder.encode(name).byteLength;
    if (bytes > MAX_MERGED_PROPS_BYTES) return null;
  }
  return props;
}

function mergeProps(a: string[] | null, b: string[] | null): string[] | null {
  return a === null || b === null ? null : boundProps([...new Set([...a, ...b])]);
}

/** A lone property update, bounded as a merged one is (in case its producer did not bound it). */
const bounded = (update: Change["propertyUpdate"]): Change["propertyUpdate"] =>
  update === null || boundProps(update.props) === update.props ? update : { ...update, props: null };

/**
 * `later` happened after `earlier`: content and property flags are OR-ed, the later sync-token
 * wins, depths widen, property lists unite (bounded by `boundProps`), urgency and TTL take the
 * larger, and only registrations that every part spared stay spared (`dont_notify` intersected,
 * `*` standing for all).
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
    propertyUpdate: p && q ? { props: mergeProps(p.props, q.props), depth: p.depth > q.depth ? p.depth : q.depth } : bounded(q ?? p),
    urgency: URGENCY_RANK[earlier.urgency] > URGENCY_RANK[later.urgency] ? earlier.urgency : later.urgency,
    ttl: earlier.ttl === null && later.ttl === null ? null : Math.max(earlier.ttl ?? DEFAULT_TTL_SECONDS, later.ttl ?? DEFAULT_TTL_SECONDS),
    dontNotify: mergeDontNotify(earlier.dontNotify, later.dontNotify),
  };
}
