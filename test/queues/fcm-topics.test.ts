// FCM topic messaging in the fan-out (issue 16 item 4), against the FCM stand-in's batchAdd,
// batchRemove and topic sends (test/support/fcm-service.ts) with the real D1 and queues: fanOut
// runs with FCM_TOPIC_THRESHOLD=3, and the deliveries it queues are consumed by the Worker.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { deliver, transportsFor } from "../../src/queues/deliveries";
import { reachedByTopic, resumedPlan } from "../../src/queues/fcm-topics";
import { fanOut } from "../../src/queues/fanout";
import { purge } from "../../src/scheduled";
import type { DeliveryJob } from "../../src/queues/jobs";
import { triggersKey } from "../../src/store/fcm-topics";
import { fcmTransport, serviceAccountOf } from "../../src/transports/fcm";
import { ADMIN, bearer, call, change, createTenant, fcmService, type FcmReceivedMessage, type TestTenant } from "../helpers";

const topicsEnv = (threshold = "3"): Env => ({ ...env, FCM_TOPIC_THRESHOLD: threshold });
const now = () => Math.floor(Date.now() / 1000);

/** Registers an FCM token on `topic`; the registration's id. */
async function registerFcm(tenant: TestTenant, topic: string, token: string, trigger: unknown = { content_update: { depth: 1 } }, platform = "android"): Promise<string> {
  const response = await call("/v1/subscriptions", {
    method: "POST",
    headers: bearer(tenant.notify_token),
    json: { topic, trigger, push_services: { fcm: { registration_token: token, platform } } },
  });
  expect(response.status).toBe(201);
  return (await response.json<{ id: string }>()).id;
}

let seq = 0;
/** One flushed change of `topic` fanned out as the fanout consumer would, with the threshold at 3. */
const notify = (tenant: TestTenant, topic: string, syncToken: string, over: Parameters<typeof change>[0] = {}, threshold = "3") =>
  fanOut({ tenantId: tenant.id, seq: ++seq, change: change({ topic, contentUpdate: { syncToken, depth: 1 }, ...over }), flushedAt: now() }, topicsEnv(threshold));

/** Waits until every token has received `count` messages; each token's messages. */
async function receivedBy(tokens: string[], count: number): Promise<Record<string, FcmReceivedMessage[]>> {
  return vi.waitFor(
    async () => {
      const { received } = await fcmService.state();
      for (const token of tokens) expect(received[token] ?? [], token).toHaveLength(count);
      return received;
    },
    { timeout: 15_000, interval: 50 },
  );
}

const tokens = (n: number, behaviour = "accept") => Promise.all(Array.from({ length: n }, () => fcmService.token(behaviour)));
const fcmTopicOfRegistration = async (id: string) => (await env.DB.prepare("SELECT fcm_topic FROM registrations WHERE id = ?").bind(id).first<{ fcm_topic: string | null }>())?.fcm_topic;

/**
 * A tenant whose topic has a group of `n` FCM registrations, already in its FCM topic: one change
 * was fanned out and every member heard it once.
 */
async function joinedGroup(topic: string, n: number): Promise<{ tenant: TestTenant; all: string[]; ids: string[]; name: string }> {
  const tenant = await createTenant();
  const all = await tokens(n);
  const ids = [];
  for (const token of all) ids.push(await registerFcm(tenant, topic, token));
  await notify(tenant, topic, `${topic}-0`);
  await receivedBy(all, 1);
  return { tenant, all, ids, name: (await fcmTopicOfRegistration(ids[0]))! };
}

describe("FCM topics: a group above FCM_TOPIC_THRESHOLD", () => {
  it("adds its members, then sends it one topic message with both platform blocks; a group at the threshold stays per token", async () => {
    const tenant = await createTenant();
    const [android, ios, small] = [await tokens(2), await tokens(2), await tokens(3)];
    const members = [...android, ...ios];
    const ids = [];
    for (const token of android) ids.push(await registerFcm(tenant, "cal", token));
    for (const token of ios) ids.push(await registerFcm(tenant, "cal", token, undefined, "ios"));
    // another group of the topic (property updates too), three of them: not above 3
    for (const token of small) await registerFcm(tenant, "cal", token, { content_update: { depth: 1 }, property_update: { depth: 0 } });
    const before = await fcmService.state();

    await notify(tenant, "cal", "s-1");
    const received = await receivedBy([...members, ...small], 1);
    const after = await fcmService.state();
    expect(after.errors).toEqual([]);

    const name = (await env.DB.prepare("SELECT name FROM fcm_topics WHERE tenant_id = ? AND topic = 'cal'").bind(tenant.id).first<{ name: string }>())!.name;
    expect(name).toMatch(/^pd-[A-Za-z0-9_-]{22}$/);
    expect(name).not.toContain(tenant.id);
    // one batchAdd of the four, one topic message, three messages of their own: 4 requests instead of 7
    const requests = after.membershipRequests.slice(before.membershipRequests.length);
    expect(requests).toEqual([{ action: "batchAdd", topic: name, tokens: expect.arrayContaining(members) }]);
    expect(requests[0].tokens).toHaveLength(4);
    expect(after.topics[name].sort()).toEqual([...members].sort());
    expect(after.topicMessages[name]).toBe(1);
    expect(after.sendRequests - before.sendRequests).toBe(4);
    for (const token of members) {
      expect(received[token]).toEqual([
        {
          platform: "topic",
          topic: name,
          data: { topic: "cal", sync_token: "s-1", push_message: expect.stringContaining("<topic>cal</topic>") },
          android: { priority: "NORMAL", ttl: expect.stringMatching(/^\d+s$/), collapse_key: expect.any(String) },
          apns: { headers: { "apns-push-type": "background", "apns-priority": "5", "apns-expiration": expect.any(String) }, payload: { aps: { "content-available": 1 } } },
        },
      ]);
    }
    for (const token of small) expect(received[token]).toMatchObject([{ platform: "android", data: { sync_token: "s-1" } }]);
    for (const id of ids) expect(await fcmTopicOfRegistration(id)).toBe(name);

    // the next change: no membership request, one more topic message
    await notify(tenant, "cal", "s-2");
    const again = await receivedBy(members, 2);
    expect(again[members[0]][1]).toMatchObject({ platform: "topic", data: { sync_token: "s-2" } });
    const last = await fcmService.state();
    expect(last.membershipRequests.length).toBe(after.membershipRequests.length);
    expect(last.topicMessages[name]).toBe(2);
  });

  it("removes the members that left before its next topic message: unregistered, triggers changed, expired, unsubscribed", async () => {
    const { tenant, all, ids, name } = await joinedGroup("book", 8);

    // 0: unregistered by its URL; 1: registered again with another trigger (another group now);
    // 2: expired; 3: unsubscribed the early draft's way
    expect((await call(`/v1/registrations/${ids[0]}`, { method: "DELETE" })).status).toBe(204);
    await registerFcm(tenant, "book", all[1], { content_update: { depth: 0 } });
    expect(await fcmTopicOfRegistration(ids[1])).toBeNull();
    await env.DB.prepare("UPDATE registrations SET expires_at = ? WHERE id = ?").bind(now() - 1, ids[2]).run();
    const unsubscribed = await call("/v1/unsubscribe", { method: "POST", headers: bearer(tenant.notify_token), json: { topic: "book", push_services: { fcm: { registration_token: all[3] } } } });
    expect(unsubscribed.status).toBeLessThan(300);
    const leaving = (await env.DB.prepare("SELECT COUNT(*) AS n FROM fcm_topic_leaving WHERE name = ?").bind(name).first<{ n: number }>())!.n;
    expect(leaving).toBe(3);

    const before = await fcmService.state();
    await notify(tenant, "book", "b-2");
    await receivedBy(all.slice(4), 2);
    const after = await fcmService.state();
    expect(after.errors).toEqual([]);
    const requests = after.membershipRequests.slice(before.membershipRequests.length);
    expect(requests).toEqual([{ action: "batchRemove", topic: name, tokens: expect.arrayContaining(all.slice(0, 4)) }]);
    expect(requests[0].tokens).toHaveLength(4);
    expect(after.topics[name].sort()).toEqual(all.slice(4).sort());
    // those that left heard nothing more (the depth-0 one is not concerned by a depth-1 change)
    for (const token of all.slice(0, 4)) expect(after.received[token]).toHaveLength(1);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM fcm_topic_leaving WHERE name = ?").bind(name).first<{ n: number }>())!.n).toBe(0);
    expect(await fcmTopicOfRegistration(ids[2])).toBeNull();
  });

  it("deletes a member FCM does not know and sends it nothing; a token whose add failed (TOO_MANY_TOPICS) gets its own message this time", async () => {
    const tenant = await createTenant();
    const [accepting, [unknown], [failing]] = [await tokens(4), await tokens(1, "unregistered"), await tokens(1, "too-many-topics")];
    const unknownId = await registerFcm(tenant, "addr", unknown);
    const failingId = await registerFcm(tenant, "addr", failing);
    for (const token of accepting) await registerFcm(tenant, "addr", token);
    await notify(tenant, "addr", "a-1");
    const received = await receivedBy([...accepting, failing], 1);
    expect(received[failing]).toMatchObject([{ platform: "android", data: { sync_token: "a-1" } }]);
    for (const token of accepting) expect(received[token]).toMatchObject([{ platform: "topic" }]);
    expect(received[unknown]).toBeUndefined();
    expect(await env.DB.prepare("SELECT id FROM registrations WHERE id = ?").bind(unknownId).first()).toBeNull();
    expect(await fcmTopicOfRegistration(failingId)).toBeNull();
  });

  it("sends a change whose Push-Dont-Notify names a member per token to the others, and no topic message", async () => {
    const { tenant, all, ids, name } = await joinedGroup("todo", 4);
    const before = await fcmService.state();

    await notify(tenant, "todo", "t-2", { dontNotify: [ids[0]] });
    const received = await receivedBy(all.slice(1), 2);
    for (const token of all.slice(1)) expect(received[token][1]).toMatchObject({ platform: "android", data: { sync_token: "t-2" } });
    const after = await fcmService.state();
    expect(after.received[all[0]]).toHaveLength(1);
    expect(after.topicMessages[name]).toBe(before.topicMessages[name]);
  });

  it("never touches topics at or below the threshold, nor with FCM_TOPIC_THRESHOLD=0", async () => {
    const tenant = await createTenant();
    const all = await tokens(4);
    for (const token of all) await registerFcm(tenant, "plain", token);
    const before = await fcmService.state();
    await notify(tenant, "plain", "p-1", {}, "0");
    await notify(tenant, "plain", "p-2", {}, "4");
    const received = await receivedBy(all, 2);
    for (const token of all) expect(received[token].map((m) => m.platform)).toEqual(["android", "android"]);
    const after = await fcmService.state();
    expect(after.membershipRequests.length).toBe(before.membershipRequests.length);
    expect(await env.DB.prepare("SELECT name FROM fcm_topics WHERE tenant_id = ?").bind(tenant.id).first()).toBeNull();
  });
});

describe("FCM topics: the hourly cron", () => {
  it("removes the members that left, those of a deleted tenant's topic too, and settles their rows", async () => {
    const tenant = await createTenant();
    const all = await tokens(4);
    for (const token of all) await registerFcm(tenant, "gone", token);
    await notify(tenant, "gone", "g-1");
    await receivedBy(all, 1);
    const name = (await env.DB.prepare("SELECT name FROM fcm_topics WHERE tenant_id = ?").bind(tenant.id).first<{ name: string }>())!.name;
    expect((await fcmService.state()).topics[name]).toHaveLength(4);

    await env.DB.prepare("DELETE FROM tenants WHERE id = ?").bind(tenant.id).run();
    const result = await purge(env);
    expect(result.fcmTopicLeaves).toBeGreaterThanOrEqual(4);
    expect((await fcmService.state()).topics[name]).toEqual([]);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM fcm_topic_leaving WHERE name = ?").bind(name).first<{ n: number }>())!.n).toBe(0);
  });
});

describe("FCM topics: continuations and the topic job", () => {
  it("a continuation skips the rows its first job reached by topic, and only those", () => {
    const group = { content_update_depth: 1 as const, property_update_depth: null, property_update_props: null };
    const plan = resumedPlan({ tenantId: "t", seq: 1, change: change({}), after: "m", fcmTopics: { [triggersKey(group)]: "pd-x" } });
    const row = (over: object) => ({ id: "r", transport: "fcm" as const, fcm_topic: "pd-x", ...group, ...over });
    expect(reachedByTopic(plan, row({}))).toBe(true);
    // not a member (its add failed), another group, another transport
    expect(reachedByTopic(plan, row({ fcm_topic: null }))).toBe(false);
    expect(reachedByTopic(plan, row({ content_update_depth: 2 }))).toBe(false);
    expect(reachedByTopic(plan, row({ transport: "hms" }))).toBe(false);
  });

  it("acks a topic job FCM answered 503 and queues its retry, which reaches the members; a 404 is a refusal, not a deletion", async () => {
    const { tenant, all, name } = await joinedGroup("retry", 4);

    const account = serviceAccountOf(env)!;
    let calls = 0;
    const flaky: typeof fetch = async (input, init) => {
      if (++calls === 1) return new Response(JSON.stringify({ error: { code: 503, status: "UNAVAILABLE" } }), { status: 503 });
      return fetch(input, init);
    };
    const job: DeliveryJob = {
      tenantId: tenant.id,
      message: { xml: "<push-message/>", ttl: 600, urgency: "normal", topic: null, data: { topic: "retry", sync_token: "r-2" } },
      transport: "fcm",
      targets: [{ subscriptionId: 0, tenantId: tenant.id, fcmTopic: name }],
      attempt: 1,
      deadline: now() + 600,
    };
    expect(await deliver([job], env, async () => fcmTransport(env, account, flaky), { random: () => 0 })).toEqual([null]);
    // the retry went on the real queue; the Worker's consumer sends it to the topic
    const received = await receivedBy(all, 2);
    expect(received[all[0]][1]).toMatchObject({ platform: "topic", topic: name, data: { sync_token: "r-2" } });

    // a topic FCM does not know: refused, recorded nowhere, nothing deleted
    const missing: typeof fetch = async () =>
      new Response(JSON.stringify({ error: { code: 404, status: "NOT_FOUND", details: [{ errorCode: "UNREGISTERED" }] } }), { status: 404 });
    const subscriptions = (await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>())!.n;
    expect(await deliver([{ ...job, targets: [{ subscriptionId: 0, tenantId: tenant.id, fcmTopic: "pd-nobody" }] }], env, async () => fcmTransport(env, account, missing))).toEqual([null]);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>())!.n).toBe(subscriptions);
  });

  it("removes the members that left before a later send to the topic: a retry, or a retried dead letter; a letter whose topic is gone is nothing to retry", async () => {
    const { tenant, all, ids, name } = await joinedGroup("later", 5);
    const topicJob = (attempt: number): DeliveryJob => ({
      tenantId: tenant.id,
      message: { xml: "<push-message/>", ttl: 600, urgency: "normal", topic: null, data: { topic: "later", sync_token: `l-${attempt}` } },
      transport: "fcm",
      targets: [{ subscriptionId: 0, tenantId: tenant.id, fcmTopic: name }],
      attempt,
      deadline: now() + 600,
    });

    // a member leaves after the fan-out queued its topic job, before the job's retry is sent
    expect((await call(`/v1/registrations/${ids[0]}`, { method: "DELETE" })).status).toBe(204);
    const before = await fcmService.state();
    expect(await deliver([topicJob(2)], env, transportsFor(env))).toEqual([null]);
    const after = await fcmService.state();
    expect(after.membershipRequests.slice(before.membershipRequests.length)).toEqual([{ action: "batchRemove", topic: name, tokens: [all[0]] }]);
    expect(after.received[all[0]]).toHaveLength(1);
    for (const token of all.slice(1)) expect(after.received[token]).toHaveLength(2);

    // a dead letter of the topic's message: retried to the topic, after another member left
    expect((await call(`/v1/registrations/${ids[1]}`, { method: "DELETE" })).status).toBe(204);
    const letter = async (topicName: string) => {
      const body = { ...topicJob(5), targets: [{ subscriptionId: 0, tenantId: tenant.id, fcmTopic: topicName }], reasons: { 0: "FCM answered 503 UNAVAILABLE" }, reason: "past the TTL" };
      return (await env.DB.prepare("INSERT INTO dead_letters (tenant_id, queue, body, created_at, reason) VALUES (?, 'push-dead-letters', ?, ?, 'past the TTL') RETURNING id")
        .bind(tenant.id, JSON.stringify(body), now())
        .first<{ id: number }>())!.id;
    };
    const retried = await call(`/v1/admin/dead-letters/${await letter(name)}/retry`, { method: "POST", headers: ADMIN });
    expect(await retried.json()).toMatchObject({ queued: 1 });
    const received = await receivedBy(all.slice(2), 3);
    expect(received[all[2]][2]).toMatchObject({ platform: "topic", topic: name, data: { sync_token: "l-5" } });
    expect(received[all[1]]).toHaveLength(2);
    expect((await fcmService.state()).topics[name].sort()).toEqual(all.slice(2).sort());

    const gone = await call(`/v1/admin/dead-letters/${await letter("pd-no-such-topic-000000")}/retry`, { method: "POST", headers: ADMIN });
    expect(gone.status).toBe(409);
  });
});

