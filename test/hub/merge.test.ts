import { describe, expect, it } from "vitest";
import { change } from "../helpers";
import { mergeChanges } from "../../src/hub/merge";


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
