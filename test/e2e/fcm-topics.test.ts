// FCM topic messaging (issue 16 item 4) through `npm start`, seen from outside: with
// FCM_TOPIC_THRESHOLD=3, a group of 5 FCM registrations is added to one FCM topic and sent one
// message per change, a group of 2 on the same topic stays per token, a member that unregisters is
// removed before the next topic message, and a Push-Dont-Notify naming a member keeps that change
// per token.
import type { IncomingMessage, ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FcmService, type FcmReceived } from "../support/fcm-service";
import { api, startDirector, type Director } from "./director";

/** What FCM was asked, in the order it was asked: membership changes and topic sends. */
type Asked = { kind: "batchAdd" | "batchRemove"; tokens: string[] } | { kind: "topic"; topic: string };

/** FCM that also keeps the order of its membership requests and topic sends. */
class OrderedFcm extends FcmService {
  readonly asked: Asked[] = [];
  protected handle(req: IncomingMessage, raw: Buffer, res: ServerResponse) {
    const url = req.url ?? "";
    if (req.method === "POST" && /\/iid\/v1:batch(Add|Remove)$/.test(url)) {
      this.asked.push({ kind: url.endsWith("batchAdd") ? "batchAdd" : "batchRemove", tokens: JSON.parse(raw.toString()).registration_tokens });
    } else if (req.method === "POST" && url.endsWith("/messages:send")) {
      const topic = JSON.parse(raw.toString()).message?.topic;
      if (typeof topic === "string") this.asked.push({ kind: "topic", topic });
    }
    return super.handle(req, raw, res);
  }
}

let director: Director;
let fcm: OrderedFcm;

beforeAll(async () => {
  fcm = await new OrderedFcm().start();
  director = await startDirector({}, [], { vars: { ...fcm.vars(), FCM_TOPIC_THRESHOLD: "3" } });
});

afterAll(async () => {
  await Promise.all([director?.stop(), fcm?.stop()]);
});

describe("FCM topics through wrangler dev", () => {
  it("sends a group above the threshold one topic message per change, removes a member that left first, and keeps a Push-Dont-Notify change per token", async () => {
    const tenant = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "fcm-topics" } })).body;
    /** Registers a token on "shared"; answers its registration URL (the Location header). */
    const register = async (token: string, platform: "android" | "ios", trigger?: unknown): Promise<string> => {
      const r = await api(director, "/v1/subscriptions", tenant.notify_token, {
        json: { topic: "shared", ...(trigger === undefined ? {} : { trigger }), push_services: { fcm: { registration_token: token, platform } } },
      });
      expect(r.status).toBe(201);
      return r.headers.get("Location")!;
    };
    const notify = async (syncToken: string, extra: Record<string, unknown> = {}) => {
      const r = await api(director, "/v1/notify", tenant.notify_token, { json: { topic: "shared", content_update: { sync_token: syncToken }, ...extra } });
      expect(r.status).toBe(202);
    };
    const got = (token: string): FcmReceived[] => fcm.received.get(token) ?? [];
    const counts = (tokens: string[]) => tokens.map((t) => got(t).length);
    /** Waits until each token has received as many messages as `expected` says. */
    const receivedAll = (expected: [string[], number][]) => fcm.waitUntil(() => expected.every(([tokens, n]) => tokens.every((t) => got(t).length === n)));

    // the group above the threshold: the default trigger, Android and iOS apps mixed
    const platforms = ["android", "ios", "android", "ios", "android"] as const;
    const members = platforms.map(() => fcm.addToken());
    const urls: string[] = [];
    for (const [i, token] of members.entries()) urls.push(await register(token, platforms[i]));
    // the group at or below it: other triggers, on the same topic
    const others = [fcm.addToken(), fcm.addToken()];
    const otherPlatforms = ["android", "ios"] as const;
    for (const [i, token] of others.entries()) await register(token, otherPlatforms[i], { content_update: { depth: 1 }, property_update: { depth: 0 } });
    const registrationIds = urls.map((url) => /\/v1\/registrations\/([^/]+)$/.exec(url)![1]);
    expect(new Set(registrationIds).size).toBe(5);

    // (a) the first change: one batchAdd of the 5, one topic message reaching each once, 2 own messages
    await notify("s1");
    await receivedAll([
      [members, 1],
      [others, 1],
    ]);
    expect(fcm.membershipRequests).toHaveLength(1);
    expect(fcm.membershipRequests[0].action).toBe("batchAdd");
    expect([...fcm.membershipRequests[0].tokens].sort()).toEqual([...members].sort());
    const name = fcm.membershipRequests[0].topic;
    expect(name).toMatch(/^pd-[A-Za-z0-9_-]{22}$/);
    expect([...fcm.topicMessages]).toEqual([[name, 1]]);
    expect(fcm.asked.map((a) => a.kind)).toEqual(["batchAdd", "topic"]);
    for (const token of members) {
      const [message] = got(token);
      expect(message.platform).toBe("topic");
      if (message.platform !== "topic") continue;
      expect(message.topic).toBe(name);
      expect(message.data.sync_token).toBe("s1");
      expect(message.data.topic).toBe("shared");
      // both blocks, as a topic's members may be Android or iOS apps
      expect(message.android.priority).toBe("NORMAL");
      expect(message.apns.payload).toEqual({ aps: { "content-available": 1 } });
    }
    expect(got(others[0]).map((m) => [m.platform, m.data.sync_token])).toEqual([["android", "s1"]]);
    expect(got(others[1]).map((m) => [m.platform, m.data.sync_token])).toEqual([["ios", "s1"]]);
    // what the change cost: 1 topic send and 2 own messages
    expect(fcm.sendRequests).toBe(1 + 2);

    // (b) a second change: the members are in the topic already, so no membership request
    await notify("s2");
    await receivedAll([
      [members, 2],
      [others, 2],
    ]);
    expect(fcm.membershipRequests).toHaveLength(1);
    expect(fcm.topicMessages.get(name)).toBe(2);
    for (const token of members) expect(got(token).map((m) => [m.platform, m.data.sync_token])).toEqual([["topic", "s1"], ["topic", "s2"]]);
    expect(fcm.sendRequests).toBe(2 * (1 + 2));

    // (c) a member unregisters by its registration URL (a capability: no credentials needed); it is
    // removed from the FCM topic before the next topic message, and hears nothing more
    const [leaver, ...stayers] = members;
    const deleted = await fetch(urls[0], { method: "DELETE" });
    expect(deleted.status).toBe(204);
    const askedBefore = fcm.asked.length;
    await notify("s3");
    await receivedAll([
      [stayers, 3],
      [others, 3],
    ]);
    expect(fcm.membershipRequests.slice(1)).toEqual([{ action: "batchRemove", topic: name, tokens: [leaver] }]);
    expect(fcm.asked.slice(askedBefore)).toEqual([
      { kind: "batchRemove", tokens: [leaver] },
      { kind: "topic", topic: name },
    ]);
    expect(fcm.membersOf(name).sort()).toEqual([...stayers].sort());
    expect(fcm.topicMessages.get(name)).toBe(3);
    for (const token of stayers) expect(got(token)[2]).toMatchObject({ platform: "topic", topic: name, data: { sync_token: "s3" } });
    expect(got(leaver).map((m) => m.data.sync_token)).toEqual(["s1", "s2"]);
    expect(fcm.sendRequests).toBe(3 * (1 + 2));

    // (d) a change whose Push-Dont-Notify names a member: a topic message would reach it, so the
    // change goes per token to the group's 3 others (and the 2 of the other group), none to it
    const [spared, ...notified] = stayers;
    const sparedUrl = urls[1];
    const membershipBefore = fcm.membershipRequests.length;
    await notify("s4", { dont_notify_header: `"${sparedUrl}"` });
    await receivedAll([
      [notified, 4],
      [others, 4],
    ]);
    expect(fcm.topicMessages.get(name)).toBe(3);
    expect(fcm.membershipRequests).toHaveLength(membershipBefore);
    for (const token of notified) {
      const platform = platforms[members.indexOf(token)];
      expect(got(token)[3]).toMatchObject({ platform, data: { sync_token: "s4" } });
    }
    expect(got(spared).map((m) => m.data.sync_token)).toEqual(["s1", "s2", "s3"]);
    expect(got(others[0])[3]).toMatchObject({ platform: "android", data: { sync_token: "s4" } });
    expect(got(others[1])[3]).toMatchObject({ platform: "ios", data: { sync_token: "s4" } });
    expect(fcm.sendRequests).toBe(3 * (1 + 2) + 3 + 2);

    // nothing reached the ex-member or the spared member afterwards
    expect(counts([leaver, spared, ...notified, ...others])).toEqual([2, 3, 4, 4, 4, 4, 4]);
    expect(fcm.errors).toEqual([]);
  });
});
