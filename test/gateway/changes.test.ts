import { describe, expect, it } from "vitest";
import { concernedCollections, pollChange, proppatchNames, writeChange } from "../../src/gateway/changes";

describe("concernedCollections", () => {
  it("gives the resource itself 0, its parent 1 and every ancestor above infinity (2)", () => {
    expect([...concernedCollections(["/base/cal/a%20b.ics"])]).toEqual([
      ["/base/cal/a b.ics/", 0],
      ["/base/cal/", 1],
      ["/base/", 2],
      ["/", 2],
    ]);
    expect([...concernedCollections(["/base/cal/"])]).toEqual([
      ["/base/cal/", 0],
      ["/base/", 1],
      ["/", 2],
    ]);
  });

  it("takes the nearest depth where a MOVE's two ends meet", () => {
    const both = concernedCollections(["/base/a/x.ics", "/base/b/c/x.ics"]);
    expect(both.get("/base/a/")).toBe(1);
    expect(both.get("/base/b/c/")).toBe(1);
    expect(both.get("/base/b/")).toBe(2);
    expect(both.get("/base/")).toBe(2);
  });
});

describe("proppatchNames", () => {
  it("names what a PROPPATCH sets and removes, in Clark notation", () => {
    const body = `<D:propertyupdate xmlns:D="DAV:" xmlns:A="http://apple.com/ns/ical/"><D:set><D:prop><D:displayname>W</D:displayname><A:calendar-color>#f00</A:calendar-color></D:prop></D:set><D:remove><D:prop><D:displayname/></D:prop></D:remove></D:propertyupdate>`;
    expect(proppatchNames(body)).toEqual(["{DAV:}displayname", "{http://apple.com/ns/ical/}calendar-color"]);
    expect(proppatchNames("<D:propfind xmlns:D='DAV:'/>")).toBeNull();
    expect(proppatchNames("<D:propertyupdate")).toBeNull();
  });
});

describe("writeChange", () => {
  it("is a content update with the new sync-token, or after a PROPPATCH a property update with its names", () => {
    expect(writeChange("t", 1, { proppatch: undefined, syncToken: "s-2", dontNotify: ["r"] })).toEqual({
      topic: "t",
      contentUpdate: { syncToken: "s-2", depth: 1 },
      propertyUpdate: null,
      urgency: "normal",
      ttl: null,
      dontNotify: ["r"],
    });
    expect(writeChange("t", 0, { proppatch: ["{DAV:}displayname"], syncToken: "s-3", dontNotify: "*" })).toMatchObject({
      contentUpdate: null,
      propertyUpdate: { props: ["{DAV:}displayname"], depth: 0 },
      dontNotify: "*",
    });
    // a PROPPATCH body it could not read: every property may have changed
    expect(writeChange("t", 0, { proppatch: null, syncToken: null, dontNotify: [] }).propertyUpdate).toEqual({ props: null, depth: 0 });
  });
});

describe("pollChange", () => {
  const tokens = (sync_token: string | null, ctag: string | null, etag: string | null = ctag) => ({ sync_token, ctag, etag });
  const content = (syncToken: string | null) => ({ topic: "t", contentUpdate: { syncToken, depth: 1 }, propertyUpdate: null, urgency: "normal", ttl: null, dontNotify: [] });
  const property = { topic: "t", contentUpdate: null, propertyUpdate: { props: null, depth: 0 }, urgency: "normal", ttl: null, dontNotify: [] };

  it("is a content update at depth 1 with a new sync-token, whatever the ctag did", () => {
    expect(pollChange("t", tokens("s1", "c1"), tokens("s2", "c2"))).toEqual(content("s2"));
    expect(pollChange("t", tokens("s1", "c1"), tokens("s2", "c1"))).toEqual(content("s2"));
    // the first token seen after none (the origin began to answer it)
    expect(pollChange("t", tokens(null, "c1"), tokens("s1", "c1"))).toEqual(content("s1"));
  });

  it("is a property update at depth 0 when only the ctag or etag moved (Radicale's PROPPATCH)", () => {
    expect(pollChange("t", tokens("s1", "c1"), tokens("s1", "c2"))).toEqual(property);
    expect(pollChange("t", tokens("s1", null, "e1"), tokens("s1", null, "e2"))).toEqual(property);
  });

  it("is a content update without a token where the collection has no sync-token at all, only a ctag", () => {
    expect(pollChange("t", tokens(null, "c1"), tokens(null, "c2"))).toEqual(content(null));
  });

  it("is nothing when nothing moved, or only the sync-token went away", () => {
    expect(pollChange("t", tokens("s1", "c1"), tokens("s1", "c1"))).toBeNull();
    expect(pollChange("t", tokens(null, null), tokens(null, null))).toBeNull();
    expect(pollChange("t", tokens("s1", "c1"), tokens(null, "c1"))).toBeNull();
  });
});
