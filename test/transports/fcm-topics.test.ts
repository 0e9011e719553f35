// FCM topic membership answers (issue 16 item 4): what the Instance ID API's batchAdd and
// batchRemove said of each token, read defensively, since a wrong answer must never add a token
// to a topic it is not in, or let a member that left hear a topic message.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { serviceAccountOf } from "../../src/transports/fcm";
import { changeMembership, MEMBERSHIP_BATCH, membershipResults } from "../../src/transports/fcm-topics";

describe("membershipResults", () => {
  it("reads a result per token: {} done, NOT_FOUND and INVALID_ARGUMENT gone, any other error not done", () => {
    expect(membershipResults(5, { results: [{}, { error: "NOT_FOUND" }, { error: "INVALID_ARGUMENT" }, { error: "TOO_MANY_TOPICS" }, { error: "INTERNAL" }] })).toEqual([
      "ok",
      "gone",
      "gone",
      "error",
      "error",
    ]);
  });

  it("takes an answer without one result per token as no answer at all, and an entry that is no object as an error", () => {
    for (const body of [null, {}, { results: "x" }, { results: [{}] }, { results: [{}, {}, {}] }, []]) expect(membershipResults(2, body), JSON.stringify(body)).toBeNull();
    expect(membershipResults(3, { results: [null, "ok", 7] })).toEqual(["error", "error", "error"]);
    // an error that is not a string is no known error: not gone
    expect(membershipResults(1, { results: [{ error: { code: "NOT_FOUND" } }] })).toEqual(["error"]);
  });
});

describe("changeMembership", () => {
  const account = serviceAccountOf(env)!;
  const answering = (status: number, body: string): typeof fetch =>
    (async (input: RequestInfo | URL, init?: RequestInit) => (String(input).includes("/iid/") ? new Response(body, { status }) : fetch(input, init))) as typeof fetch;

  it("says why a request failed as a whole: a status, a body that is not JSON, a count that does not match, a redirect", async () => {
    const call = (fetcher: typeof fetch) => changeMembership(env, account, "batchAdd", "pd-x", ["a", "b"], fetcher);
    expect(await call(answering(503, "{}"))).toBe("batchAdd answered 503");
    expect(await call(answering(200, "<html>"))).toBe("batchAdd answered 200 with a body that is not JSON");
    expect(await call(answering(200, JSON.stringify({ results: [{}] })))).toBe("batchAdd answered without one result per token");
    expect(await call(answering(302, ""))).toBe("batchAdd answered 302");
    expect(await call(answering(200, JSON.stringify({ results: [{}, { error: "NOT_FOUND" }] })))).toEqual(["ok", "gone"]);
  });

  it("sends nothing for no tokens, and refuses more than the API takes in one request", async () => {
    expect(await changeMembership(env, account, "batchRemove", "pd-x", [])).toEqual([]);
    await expect(changeMembership(env, account, "batchRemove", "pd-x", Array.from({ length: MEMBERSHIP_BATCH + 1 }, (_, i) => `t${i}`))).rejects.toThrow(/at most 1000/);
  });
});
