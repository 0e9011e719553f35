// The fanout consumer's choices: which subscriptions it queues for delivery and how (targetFor, a
// pure function), and VAPID key-rotation messages reaching keyless subscriptions plain, through
// the real deliveries queue to the stand-in push service.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { fanOut, rotateVapidKey, targetFor, type Deliverable } from "../../src/queues/fanout";
import { change, createTenant, keylessSubscriber, pushService, registerSubscriber, subscribeWith, type PlainReceivedMessage } from "../helpers";

const row = (over: Partial<Parameters<typeof targetFor>[0]>): Parameters<typeof targetFor>[0] => ({
  subscription_id: 7,
  transport: "web_push",
  identifier: "https://push.example.net/7",
  p256dh: null,
  auth: null,
  sealed_token: null,
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
    expect(targetFor(row({ transport: "fcm", identifier: "digest", sealed_token: "v1.token" }), "t", ALL)).toEqual({
      subscriptionId: 7,
      tenantId: "t",
      tokenDigest: "digest",
      sealedToken: "v1.token",
    });
    // the TopicHub sends a connection its frames itself, in the flush that queued the fan-out
    expect(targetFor(row({ transport: "websocket", identifier: "8b7c2f0e-connection" }), "t", ALL)).toBeNull();
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
