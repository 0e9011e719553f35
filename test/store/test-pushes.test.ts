// test_pushes: one claim per registration per window, and rows past the window cleared by later claims.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { claimTestPush } from "../../src/store/test-pushes";

const ats = async () => (await env.DB.prepare("SELECT registration_id, at FROM test_pushes ORDER BY registration_id").all()).results;

describe("claimTestPush", () => {
  it("claims once per window and says how long to wait; two claims at once, one wins", async () => {
    expect(await claimTestPush(env.DB, "reg-a", 1000, 10)).toBeNull();
    expect(await claimTestPush(env.DB, "reg-a", 1000, 10)).toBe(10);
    expect(await claimTestPush(env.DB, "reg-a", 1009, 10)).toBe(1);
    expect(await claimTestPush(env.DB, "reg-a", 1010, 10)).toBeNull();
    const both = await Promise.all([claimTestPush(env.DB, "reg-b", 2000, 10), claimTestPush(env.DB, "reg-b", 2000, 10)]);
    expect(both.filter((wait) => wait === null)).toHaveLength(1);
  });

  it("deletes other registrations' rows past the window", async () => {
    await claimTestPush(env.DB, "reg-old", 3000, 10);
    await claimTestPush(env.DB, "reg-recent", 3005, 10);
    await claimTestPush(env.DB, "reg-new", 3012, 10);
    expect(await ats()).toEqual([
      { registration_id: "reg-new", at: 3012 },
      { registration_id: "reg-recent", at: 3005 },
    ]);
  });
});
