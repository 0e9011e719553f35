import { describe, expect, it } from "vitest";
import { DEFERRED, interleaveByOrigin, runPaced } from "../../src/delivery/pacing";

describe("pacing per origin", () => {
  it("interleaves targets by origin, each origin's order kept", () => {
    expect(interleaveByOrigin(["a", "a", "a", "b", "c", "b"])).toEqual([0, 3, 4, 1, 5, 2]);
  });

  it("holds at most 3 in flight per origin and 6 in all", async () => {
    // two origins would each take 4 of the 6 connections; three share them 2 by 2
    const items = [...Array.from({ length: 8 }, () => "a"), ...Array.from({ length: 8 }, () => "b"), ...Array.from({ length: 8 }, () => "c"), ...Array.from({ length: 8 }, () => "a")];
    const inFlight = new Map<string, number>();
    let total = 0;
    let maxTotal = 0;
    let maxPerOrigin = 0;
    await runPaced(
      items,
      (o) => o,
      async (o) => {
        inFlight.set(o, (inFlight.get(o) ?? 0) + 1);
        total++;
        maxTotal = Math.max(maxTotal, total);
        maxPerOrigin = Math.max(maxPerOrigin, inFlight.get(o)!);
        await new Promise((r) => setTimeout(r, 2));
        inFlight.set(o, inFlight.get(o)! - 1);
        total--;
        return o;
      },
      () => false,
    );
    expect(maxTotal).toBe(6);
    expect(maxPerOrigin).toBe(3);
    // one origin alone still gets only 3
    let alone = 0;
    let maxAlone = 0;
    await runPaced(Array.from({ length: 9 }, () => "x"), (o) => o, async () => {
      maxAlone = Math.max(maxAlone, ++alone);
      await new Promise((r) => setTimeout(r, 2));
      alone--;
    }, () => false);
    expect(maxAlone).toBe(3);
  });

  it("a hanging origin does not delay another; after its timeout its unsent targets are deferred", async () => {
    const items = [...Array.from({ length: 5 }, (_, i) => `slow/${i}`), ...Array.from({ length: 10 }, (_, i) => `fast/${i}`)];
    let release!: () => void;
    const hang = new Promise<void>((r) => (release = r));
    const done: string[] = [];
    const run = runPaced(
      items,
      (item) => item.split("/")[0],
      async (item) => {
        if (item.startsWith("slow")) {
          await hang;
          return "timeout";
        }
        await new Promise((r) => setTimeout(r, 1));
        done.push(item);
        return "ok";
      },
      (result) => result === "timeout",
    );
    // every fast target is sent while the slow origin still hangs
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toHaveLength(10);
    release();
    const results = await run;
    expect(results.slice(0, 3)).toEqual(["timeout", "timeout", "timeout"]);
    expect(results.slice(3, 5)).toEqual([DEFERRED, DEFERRED]);
    expect(results.slice(5)).toEqual(Array.from({ length: 10 }, () => "ok"));
  });
});
