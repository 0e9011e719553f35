import { describe, expect, it } from "vitest";
import { change } from "../helpers";
import { sendBatches } from "../../src/queues/jobs";
import { mapWithConcurrency } from "../../src/queues/pool";
import { variantFor } from "../../src/queues/recipients";
import type { RecipientRow } from "../../src/store/registrations";

const row = (over: Partial<RecipientRow>): RecipientRow => ({
  id: "r1",
  subscription_id: 1,
  content_update_depth: 1,
  property_update_depth: null,
  property_update_props: null,
  transport: "web_push",
  identifier: "https://p.example/1",
  p256dh: "k",
  auth: "a",
  sealed_token: null,
  platform: null,
  ...over,
});


describe("variantFor", () => {
  const none = new Set<string>();
  it("matches content updates whose distance the registered depth covers", () => {
    const member = change({ contentUpdate: { syncToken: null, depth: 1 } });
    expect(variantFor(row({ content_update_depth: 1 }), member, none)).toEqual({ content: true, property: false });
    expect(variantFor(row({ content_update_depth: 2 }), member, none)).toEqual({ content: true, property: false });
    expect(variantFor(row({ content_update_depth: 0 }), member, none)).toBeNull();
    expect(variantFor(row({ content_update_depth: null }), member, none)).toBeNull();
    const deep = change({ contentUpdate: { syncToken: null, depth: 2 } });
    expect(variantFor(row({ content_update_depth: 1 }), deep, none)).toBeNull();
  });

  it("matches property updates by depth and by the properties asked for", () => {
    const displayname = change({ propertyUpdate: { props: ["{DAV:}displayname"], depth: 0 } });
    const wants = (props: string[] | null, depth: 0 | 1 | 2 | null = 0) =>
      variantFor(row({ content_update_depth: null, property_update_depth: depth, property_update_props: props && JSON.stringify(props) }), displayname, none);
    expect(wants(null)).toEqual({ content: false, property: true });
    expect(wants(["{DAV:}displayname", "{DAV:}owner"])).toEqual({ content: false, property: true });
    expect(wants(["{DAV:}owner"])).toBeNull();
    expect(wants([])).toEqual({ content: false, property: true });
    expect(wants(null, null)).toBeNull();
    const unnamed = change({ propertyUpdate: { props: null, depth: 1 } });
    expect(variantFor(row({ property_update_depth: 0, property_update_props: '["{DAV:}owner"]' }), unnamed, none)).toBeNull();
    expect(variantFor(row({ property_update_depth: 1, property_update_props: '["{DAV:}owner"]' }), unnamed, none)!.property).toBe(true);
  });

  it("spares the registrations named in Push-Dont-Notify", () => {
    const c = change({ contentUpdate: { syncToken: null, depth: 1 } });
    expect(variantFor(row({ id: "x" }), c, new Set(["x"]))).toBeNull();
    expect(variantFor(row({ id: "y" }), c, new Set(["x"]))).not.toBeNull();
  });
});

describe("helpers", () => {
  it("splits sendBatch calls by count and size", () => {
    const small = Array.from({ length: 250 }, (_, i) => ({ i }));
    expect(sendBatches(small).map((b) => b.length)).toEqual([100, 100, 50]);
    const big = Array.from({ length: 5 }, () => ({ pad: "x".repeat(90_000) }));
    expect(sendBatches(big).map((b) => b.length)).toEqual([2, 2, 1]);
  });

  it("runs at most `limit` tasks at once and keeps results in order", async () => {
    let running = 0;
    let peak = 0;
    const results = await mapWithConcurrency([5, 1, 4, 2, 3, 0, 6, 7], 3, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await scheduler.wait(n);
      running--;
      return n * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30, 0, 60, 70]);
    expect(peak).toBe(3);
  });
});
