// The fanout consumer's choices: which subscriptions it queues for delivery and how (targetFor, a
// pure function), and VAPID key-rotation messages reaching keyless subscriptions plain, through
// the real deliveries queue to the stand-in push service.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { consumeFanout, fanOut, rotateVapidKey, targetFor } from "../../src/queues/fanout";
import type { Deliverable } from "../../src/transports/transport";
import { change, createTenant, keylessSubscriber, pushService, registerSubscriber, subscribeWith, type PlainReceivedMessage } from "../helpers";

const row = (over: Partial<Parameters<typeof targetFor>[0]>): Parameters<typeof targetFor>[0] => ({
  subscription_id: 7,
  transport: "web_push",
  identifier: "https://push.example.net/7",
  p256dh: null,
  auth: null,
  sealed_token: null,
  platform: null,
  ...over,
});

const ALL: Deliverable = { fcm: true, plain: true };

describe("targetFor", () => {
  it("queues keyed Web Push encrypted, keyless plain, FCM by digest; never a WebSocket connection", () => {
    expect(targetFor(row({ p256dh: "BKey", auth: "v1.sealed" }), "t", ALL)).toEqual({
      subscriptionId: 7,
      tenantId: "t",
      endpoint: "https://push.example.net/7",
      p256dh: "BKey",
      sealedAuth: "v1.sealed",
    });
    expect(targetFor(row({}), "t", ALL)).toEqual({ subscriptionId: 7, tenantId: "t", endpoint: "https://push.example.net/7", plain: true });
    expect(targetFor(row({ transport: "fcm", identifier: "digest", sealed_token: "v1.token", platform: "android" }), "t", ALL)).toEqual({
      subscriptionId: 7,
      tenantId: "t",
      tokenDigest: "digest",
      sealedToken: "v1.token",
      platform: "android",
    });
    // the TopicHub sends a connection its frames itself, in the flush that queued the fan-out
    expect(targetFor(row({ transport: "websocket", identifier: "8b7c2f0e-connection" }), "t", ALL)).toBeNull();
  });

  it("queues an FCM token with its platform: ios as stored, android for the rows from before platforms (NULL)", () => {
    const fcm = (platform: string | null) => targetFor(row({ transport: "fcm", identifier: "digest", sealed_token: "v1.token", platform }), "t", ALL);
    expect(fcm("ios")).toMatchObject({ tokenDigest: "digest", platform: "ios" });
    expect(fcm(null)).toMatchObject({ tokenDigest: "digest", platform: "android" });
    // Web Push targets carry none
    expect(targetFor(row({ p256dh: "BKey", auth: "v1.sealed" }), "t", ALL)).not.toHaveProperty("platform");
  });

  it("skips what this director does not send: FCM unconfigured, keyless while REQUIRE_ENCRYPTION is on, half a key pair", () => {
    expect(targetFor(row({ transport: "fcm", identifier: "digest", sealed_token: "v1.token" }), "t", { fcm: false, plain: true })).toBeNull();
    expect(targetFor(row({}), "t", { fcm: true, plain: false })).toBeNull();
    // encrypted ones are sent whatever REQUIRE_ENCRYPTION says
    expect(targetFor(row({ p256dh: "BKey", auth: "v1.sealed" }), "t", { fcm: true, plain: false })).not.toBeNull();
    expect(targetFor(row({ p256dh: "BKey" }), "t", ALL)).toBeNull();
    expect(targetFor(row({ auth: "v1.sealed" }), "t", ALL)).toBeNull();
  });
});

describe("VAPID key rotation", () => {
  it("tells keyless subscriptions plain and keyed ones encrypted, signed with the old key, without failing", async () => {
    const tenant = await createTenant();
    const plain = await keylessSubscriber();
    const keyed = await pushService.subscriber();
    const insecure = { ALLOW_INSECURE_PUSH_RESOURCES: "true" };
    const first = await subscribeWith(insecure, tenant.notify_token, { topic: "cal", push_services: { unified_push: { endpoint: plain.endpoint } } });
    expect(first.status).toBe(201);
    await subscribeWith(insecure, tenant.notify_token, { topic: "cal", push_services: { web_push: { endpoint: keyed.endpoint, keys: { p256dh: keyed.p256dh, auth: keyed.auth } } } });
    const { id } = (await env.DB.prepare("SELECT MIN(id) AS id FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first<{ id: number }>())!;

    // this file's storage holds no pending key: only the messages matter here, not the switch
    const rest = await rotateVapidKey({ kind: "vapid-rotation", keyId: 0, oldPublicKey: env.VAPID_PUBLIC_KEY, after: id - 1 }, env);
    expect(rest).toBeNull();

    const rotationXml =
      '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:">' +
      "<property-update><D:prop><transports/></D:prop></property-update></push-message>";
    const [message] = (await pushService.wait(plain.id, 1)).received as PlainReceivedMessage[];
    expect(message).toMatchObject({ xml: rotationXml, topic: null, ttl: 7 * 86_400, schemaError: null });
    expect((await pushService.wait(keyed.id, 1)).received.map((m) => m.xml)).toEqual([rotationXml]);
    expect(await pushService.errors()).toEqual([]);
  });
});

describe("fanOut: a message's lifetime and its smallest form (issue 11)", () => {
  it("resends a 413 at once as the topic and an empty <content-update/>, valid per the draft's schema", async () => {
    const tenant = await createTenant();
    const subscriber = await keylessSubscriber({ kind: "status", status: 413, times: 1 });
    await subscribeWith({ ALLOW_INSECURE_PUSH_RESOURCES: "true" }, tenant.notify_token, { topic: "small", push_services: { unified_push: { endpoint: subscriber.endpoint } } });
    await fanOut({ tenantId: tenant.id, seq: 1, change: change({ topic: "small", contentUpdate: { syncToken: "http://dav.example/sync/99", depth: 1 } }), flushedAt: Math.floor(Date.now() / 1000) }, env);
    const { received, attempts } = await pushService.wait(subscriber.id, 1);
    expect(attempts).toBe(2);
    const [message] = received as PlainReceivedMessage[];
    expect(message.xml).toBe(
      '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:"><topic>small</topic><content-update/></push-message>',
    );
    expect(message.schemaError).toBeNull();
  });

  it("lets a message live from the hub's flush for its TTL: retries stop there", async () => {
    const tenant = await createTenant();
    const subscriber = await pushService.subscriber({ kind: "unavailable", times: 5, retryAfter: 2 });
    await registerSubscriber(tenant, "old", subscriber);
    const now = Math.floor(Date.now() / 1000);
    await fanOut({ tenantId: tenant.id, seq: 1, change: change({ topic: "old", ttl: 60, contentUpdate: { syncToken: null, depth: 1 } }), flushedAt: now - 59 }, env);
    const letter = await vi.waitFor(
      async () => {
        const row = await env.DB.prepare("SELECT reason FROM dead_letters WHERE tenant_id = ?").bind(tenant.id).first<{ reason: string }>();
        if (row === null) throw new Error("no dead letter yet");
        return row;
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(letter.reason).toMatch(/^503; Retry-After 2 s is past the TTL \([01] s left\)$/);
  });
});

describe("consumeFanout: a queue batch (issue 15)", () => {
  /** A queue batch of these bodies whose messages note ack and retry. */
  function batchOf<T>(bodies: T[]) {
    const outcomes: string[] = bodies.map(() => "none");
    const messages = bodies.map((body, i) => ({
      id: String(i),
      timestamp: new Date(),
      attempts: 1,
      body,
      ack: () => void (outcomes[i] = "ack"),
      retry: () => void (outcomes[i] = "retry"),
    }));
    return { batch: { queue: "push-fanout", messages, ackAll: () => {}, retryAll: () => {} } as unknown as MessageBatch<T>, outcomes };
  }

  /** The env with its D1 round trips counted and the deliveries queue caught instead of sent. */
  function watched() {
    const trips: string[] = [];
    const counted = (statement: D1PreparedStatement): D1PreparedStatement =>
      new Proxy(statement, {
        get(s, key) {
          if (key === "bind") return (...args: unknown[]) => counted(s.bind(...args));
          if (key === "all" || key === "first" || key === "run") return (...args: unknown[]) => (trips.push(String(key)), (s[key] as (...a: unknown[]) => unknown).apply(s, args));
          const value = s[key as keyof D1PreparedStatement];
          return typeof value === "function" ? value.bind(s) : value;
        },
      });
    const queued: { tenantId: string; targets: { subscriptionId: number }[]; message: { xml: string } }[] = [];
    const db = new Proxy(env.DB, {
      get(target, name) {
        if (name === "batch") return (statements: D1PreparedStatement[]) => (trips.push(`batch of ${statements.length}`), target.batch(statements));
        if (name === "prepare") return (sql: string) => counted(target.prepare(sql));
        const value = target[name as keyof D1Database];
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const deliveries = { sendBatch: async (messages: { body: (typeof queued)[number] }[]) => void queued.push(...messages.map((m) => m.body)) };
    return { env: { ...env, DB: db, DELIVERIES: deliveries, ALLOW_INSECURE_PUSH_RESOURCES: "true" } as unknown as Env, trips, queued };
  }

  it("reads every job's first page in one D1 round trip, picks the recipients fanOut picks, and counts the messages once", async () => {
    const tenant = await createTenant();
    const insecure = { ALLOW_INSECURE_PUSH_RESOURCES: "true" };
    for (const topic of ["a", "a", "b"]) {
      const subscriber = await pushService.subscriber();
      const body = { topic, push_services: { web_push: { endpoint: subscriber.endpoint, keys: { p256dh: subscriber.p256dh, auth: subscriber.auth } } } };
      expect((await subscribeWith(insecure, tenant.notify_token, body)).status).toBe(201);
    }
    const now = Math.floor(Date.now() / 1000);
    const job = (topic: string, seq: number) => ({ tenantId: tenant.id, seq, change: change({ topic, contentUpdate: { syncToken: `${topic}-${seq}`, depth: 1 } }), flushedAt: now });
    const jobs = [job("a", 1), job("b", 1), job("nobody", 1), job("nobody-either", 1)];

    // one job at a time, as before
    const single = watched();
    for (const j of jobs) await fanOut(j, single.env);
    // the batch
    const batched = watched();
    const { batch, outcomes } = batchOf(jobs);
    const before = (await env.DB.prepare("SELECT COALESCE(SUM(messages), 0) AS n FROM delivery_stats WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>())!.n;
    await consumeFanout(batch, batched.env);
    expect(outcomes).toEqual(["ack", "ack", "ack", "ack"]);

    const recipients = (queued: typeof single.queued) => queued.flatMap((d) => d.targets.map((t) => `${d.message.xml.match(/<D:sync-token>([^<]+)/)![1]} → ${t.subscriptionId}`)).sort();
    expect(recipients(batched.queued)).toEqual(recipients(single.queued));
    expect(recipients(batched.queued)).toHaveLength(3);
    // four jobs, two of them for topics nobody registered to: one read, and one write of the counts
    expect(batched.trips).toEqual(["batch of 4", "batch of 1"]);
    expect(single.trips.filter((t) => t === "all")).toHaveLength(4);
    // a message for each of a and b, in that one write
    const after = (await env.DB.prepare("SELECT COALESCE(SUM(messages), 0) AS n FROM delivery_stats WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>())!.n;
    expect(after - before).toBe(2);
  });
});
