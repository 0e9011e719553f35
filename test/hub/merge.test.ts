import { describe, expect, it } from "vitest";
import { change } from "../helpers";
import { boundProps, MAX_MERGED_PROPS, MAX_MERGED_PROPS_BYTES, mergeChanges } from "../../src/hub/merge";

const names = (count: number, prefix = "p") => Array.from({ length: count }, (_, i) => `{urn:x}${prefix}${i}`);
const utf8 = (list: string[]) => list.reduce((sum, name) => sum + new TextEncoder().encode(name).byteLength, 0);

describe("boundProps", () => {
  it("keeps up to 100 names and widens 101 to any property (null)", () => {
    expect(MAX_MERGED_PROPS).toBe(100);
    const hundred = names(100);
    expect(boundProps(hundred)).toEqual(hundred);
    expect(boundProps(names(101))).toBeNull();
    expect(boundProps(null)).toBeNull();
    expect(boundProps([])).toEqual([]);
  });

  it("widens names over 32 KiB of UTF-8 to null, and keeps exactly 32 KiB", () => {
    expect(MAX_MERGED_PROPS_BYTES).toBe(32_768);
    // 8 names of 4096 bytes each: exactly 32 KiB
    const exact = Array.from({ length: 8 }, (_, i) => `{urn:x}${String(i).padEnd(4096 - 7, "a")}`);
    expect(utf8(exact)).toBe(32_768);
    expect(boundProps(exact)).toEqual(exact);
    expect(boundProps([...exact, "{urn:x}b"])).toBeNull();
    // bytes, not UTF-16 units: "€" is 3 bytes
    const euros = Array.from({ length: 4 }, (_, i) => `{urn:x}${i}${"€".repeat(2800)}`);
    expect(euros.join("").length).toBeLessThan(32_768);
    expect(utf8(euros)).toBeGreaterThan(32_768);
    expect(boundProps(euros)).toBeNull();
  });
});

describe("mergeChanges", () => {
  it("keeps the latest sync-token and the widest depth of content updates", () => {
    const merged = mergeChanges(
      change({ contentUpdate: { syncToken: "s1", depth: 2 } }),
      change({ contentUpdate: { syncToken: "s2", depth: 1 } }),
    );
    expect(merged.contentUpdate).toEqual({ syncToken: "s2", depth: 2 });
    expect(mergeChanges(change({ contentUpdate: { syncToken: "s1", depth: 0 } }), change({ contentUpdate: { syncToken: null, depth: 1 } })).contentUpdate).toEqual({
      syncToken: "s1",
      depth: 1,
    });
  });

  it("never drops a property update, and ORs it with content updates", () => {
    const merged = mergeChanges(change({ propertyUpdate: { props: ["{DAV:}displayname"], depth: 0 } }), change({ contentUpdate: { syncToken: "s", depth: 1 } }));
    expect(merged.propertyUpdate).toEqual({ props: ["{DAV:}displayname"], depth: 0 });
    expect(merged.contentUpdate).toEqual({ syncToken: "s", depth: 1 });
    const props = mergeChanges(change({ propertyUpdate: { props: ["a"], depth: 0 } }), change({ propertyUpdate: { props: ["b", "a"], depth: 1 } }));
    expect(props.propertyUpdate).toEqual({ props: ["a", "b"], depth: 1 });
    expect(mergeChanges(change({ propertyUpdate: { props: ["a"], depth: 0 } }), change({ propertyUpdate: { props: null, depth: 0 } })).propertyUpdate!.props).toBeNull();
  });

  it("widens a union past 100 names to any property, still as a property update", () => {
    const merged = mergeChanges(change({ propertyUpdate: { props: names(60, "a"), depth: 0 } }), change({ propertyUpdate: { props: names(60, "b"), depth: 1 } }));
    expect(merged.propertyUpdate).toEqual({ props: null, depth: 1 });
    // overlapping lists count each name once
    const overlapping = mergeChanges(change({ propertyUpdate: { props: names(60), depth: 0 } }), change({ propertyUpdate: { props: names(100), depth: 0 } }));
    expect(overlapping.propertyUpdate!.props).toEqual(names(100));
  });

  it("widens a lone oversized property list, and stays null once widened", () => {
    const big = [`{urn:x}${"n".repeat(MAX_MERGED_PROPS_BYTES)}`];
    expect(mergeChanges(change({ contentUpdate: { syncToken: "s", depth: 0 } }), change({ propertyUpdate: { props: big, depth: 0 } })).propertyUpdate).toEqual({ props: null, depth: 0 });
    expect(mergeChanges(change({ propertyUpdate: { props: names(101), depth: 1 } }), change({})).propertyUpdate).toEqual({ props: null, depth: 1 });
    const widened = mergeChanges(change({ propertyUpdate: { props: names(101), depth: 0 } }), change({ propertyUpdate: { props: ["{DAV:}displayname"], depth: 0 } }));
    expect(widened.propertyUpdate!.props).toBeNull();
  });

  it("spares only the registrations every part spared", () => {
    expect(mergeChanges(change({ dontNotify: ["a", "b"] }), change({ dontNotify: ["b", "c"] })).dontNotify).toEqual(["b"]);
    expect(mergeChanges(change({ dontNotify: "*" }), change({ dontNotify: ["c"] })).dontNotify).toEqual(["c"]);
    expect(mergeChanges(change({ dontNotify: ["a"] }), change({ dontNotify: "*" })).dontNotify).toEqual(["a"]);
    expect(mergeChanges(change({ dontNotify: "*" }), change({ dontNotify: "*" })).dontNotify).toBe("*");
    expect(mergeChanges(change({ dontNotify: ["a"] }), change({ dontNotify: [] })).dontNotify).toEqual([]);
  });

  it("takes the higher urgency and the longer TTL", () => {
    expect(mergeChanges(change({ urgency: "high" }), change({ urgency: "low" })).urgency).toBe("high");
    expect(mergeChanges(change({ urgency: "very-low" }), change({ urgency: "normal" })).urgency).toBe("normal");
    expect(mergeChanges(change({ ttl: 60 }), change({ ttl: 600 })).ttl).toBe(600);
    expect(mergeChanges(change({ ttl: 60 }), change({ ttl: null })).ttl).toBe(86_400);
    expect(mergeChanges(change({ ttl: null }), change({ ttl: null })).ttl).toBeNull();
  });
});
