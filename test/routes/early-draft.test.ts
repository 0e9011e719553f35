// The early draft's API as written (seed 002): its paths (POST /notify, /subscribe, /unsubscribe),
// several push services in one body (the first usable in PUSH_SERVICE_PREFERENCE wins), keyless
// UnifiedPush delivered plain through the real queues to the stand-in push service, and
// REQUIRE_ENCRYPTION. Every refusal is checked to write nothing.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { topicHeader } from "../../src/transports/web-push";
import { upgrade } from "../socket-client";
import {
  bearer,
  call,
  createTenant,
  grant,
  keylessSubscriber,
  pushService,
  subscribeWith,
  userAgentKeys,
  type PlainReceivedMessage,
  type TestTenant,
} from "../helpers";

type Json = Record<string, any>;

const post = (path: string, token: string | null, json: unknown) => call(path, { method: "POST", headers: token === null ? {} : bearer(token), json });
const errorOf = async (response: Response) => (await response.json<{ error: { code: string; message: string } }>()).error;

/** What a tenant has written: subscriptions and registrations, as rows (a refusal must leave them as they were). */
async function written(tenant: TestTenant) {
  const rows = async (table: string) => (await env.DB.prepare(`SELECT * FROM ${table} WHERE tenant_id = ? ORDER BY 1`).bind(tenant.id).all()).results;
  return { subscriptions: await rows("subscriptions"), registrations: await rows("registrations") };
}

const topicsOf = async (tenant: TestTenant) =>
  (await env.DB.prepare("SELECT topic FROM registrations WHERE tenant_id = ? ORDER BY topic").bind(tenant.id).all<{ topic: string }>()).results.map(
    (row) => row.topic,
  );

const endpoint = (name = crypto.randomUUID()) => `https://up.example.net/${name}`;

describe("the early draft's paths", () => {
  it("POST /notify and POST /subscribe are /v1/notify and /v1/subscriptions: same auth, bodies and answers", async () => {
    const tenant = await createTenant();
    const notified = await post("/notify", tenant.notify_token, { topic: "f0ec984b-4b19-4652-91f2-92c6d81c3c09" });
    expect(notified.status).toBe(202);
    expect(await notified.json()).toEqual({ accepted: 1, topics: 1 });
    expect((await post("/notify", null, { topic: "t" })).status).toBe(401);
    expect((await post("/notify", await grant(tenant), { topic: "topic-1" })).status).toBe(403);

    const keys = await userAgentKeys();
    const subscribed = await post("/subscribe", await grant(tenant), { client_id: "phone", topic: "topic-1", push_services: { web_push: { endpoint: endpoint(), keys } } });
    expect(subscribed.status).toBe(201);
    const created = await subscribed.json<Json>();
    expect(subscribed.headers.get("Location")).toBe(`https://director.test/v1/registrations/${created.id}`);
    expect(created).toMatchObject({ topic: "topic-1", transport: "web_push", owner: "alice", client_id: "phone", created: true, encrypted: true });
    expect((await call(`/v1/registrations/${created.id}`, { headers: bearer(tenant.notify_token) })).status).toBe(200);
    expect((await post("/subscribe", null, { topic: "t", push_services: { web_push: { endpoint: endpoint(), keys } } })).status).toBe(401);
    const other = await post("/subscribe", await grant(tenant), { topic: "topic-9", push_services: { web_push: { endpoint: endpoint(), keys } } });
    expect(other.status).toBe(403);
    expect((await errorOf(other)).code).toBe("topic_not_granted");
  });
});

describe("POST /unsubscribe", () => {
  it("deletes the caller's registrations of the topic for each service named (keys ignored): 204, then 404", async () => {
    const tenant = await createTenant();
    const keys = await userAgentKeys();
    const web = endpoint();
    const keyless = endpoint();
    const token = `fcm-${crypto.randomUUID()}`;
    for (const [topic, services] of [
      ["a", { web_push: { endpoint: web, keys } }],
      ["b", { web_push: { endpoint: web, keys } }],
      ["a", { fcm: { registration_token: token } }],
      ["a", { unified_push: { endpoint: keyless } }],
    ] as const) {
      expect((await post("/subscribe", tenant.notify_token, { topic, push_services: services })).status).toBe(201);
    }

    const gone = await post("/unsubscribe", tenant.notify_token, {
      topic: "a",
      push_services: { web_push: { endpoint: web, keys: { p256dh: "ignored", auth: "ignored" } }, fcm: { registration_token: token } },
    });
    expect(gone.status).toBe(204);
    expect(await gone.text()).toBe("");
    // only topic a's, only those named; the FCM subscription went with its last registration
    const left = await written(tenant);
    expect(left.registrations.map((r) => r.topic).sort()).toEqual(["a", "b"]);
    expect(left.subscriptions.map((s) => s.service).sort()).toEqual(["unified_push", "web_push"]);

    const again = await post("/unsubscribe", tenant.notify_token, { topic: "a", push_services: { web_push: { endpoint: web } } });
    expect(again.status).toBe(404);
    expect(await errorOf(again)).toEqual({ code: "not_found", message: "registration not found" });

    // the /v1 path, the keyless one by its endpoint (under either Web Push name: one push resource, one subscription)
    expect((await post("/v1/unsubscribe", tenant.notify_token, { topic: "a", push_services: { web_push: { endpoint: keyless } } })).status).toBe(204);
    expect(await topicsOf(tenant)).toEqual(["b"]);
  });

  it("deletes only the caller's own: another user's, an unknown one and a malformed body change nothing", async () => {
    const tenant = await createTenant();
    const alice = await grant(tenant, { topics: ["a"] }, { sub: "alice" });
    const bob = await grant(tenant, { topics: ["a"] }, { sub: "bob" });
    const resource = endpoint();
    expect((await post("/subscribe", alice, { topic: "a", push_services: { web_push: { endpoint: resource, keys: await userAgentKeys() } } })).status).toBe(201);
    const before = await written(tenant);
    const refusals: [string, unknown, number][] = [
      [bob, { topic: "a", push_services: { web_push: { endpoint: resource } } }, 404],
      [alice, { topic: "b", push_services: { web_push: { endpoint: resource } } }, 404],
      [alice, { topic: "a", push_services: { unified_push: { endpoint: endpoint() } } }, 404],
      [alice, { topic: "a", push_services: { websocket: { connection_id: crypto.randomUUID() } } }, 404],
      [alice, { topic: "a", push_services: { fcm: { registration_token: "never-registered" } } }, 404],
      [alice, { topic: "a", push_services: { web_push: { endpoint: "not a url" } } }, 404],
      [alice, { topic: "a", push_services: {} }, 400],
      [alice, { topic: "a" }, 400],
      [alice, { push_services: { web_push: { endpoint: resource } } }, 400],
    ];
    for (const [token, body, status] of refusals) {
      expect((await post("/unsubscribe", token, body)).status, JSON.stringify(body)).toBe(status);
    }
    expect((await post("/unsubscribe", null, { topic: "a", push_services: { web_push: { endpoint: resource } } })).status).toBe(401);
    expect(await written(tenant)).toEqual(before);
    expect((await post("/unsubscribe", alice, { topic: "a", push_services: { web_push: { endpoint: resource } } })).status).toBe(204);
    expect(await written(tenant)).toEqual({ subscriptions: [], registrations: [] });
  });
});

describe("several push services in one body", () => {
  it("registers the first usable one in PUSH_SERVICE_PREFERENCE (unlisted ones rank after), only it", async () => {
    const tenant = await createTenant();
    const keys = await userAgentKeys();
    const services = {
      web_push: { endpoint: endpoint("web"), keys },
      unified_push: { endpoint: endpoint("keyless") },
      fcm: { registration_token: "fcm-token-prefs" },
    };
    const cases: [Partial<Env>, string, string, boolean][] = [
      [{}, "default", "web_push", true],
      [{ PUSH_SERVICE_PREFERENCE: "fcm,unified_push" }, "fcm-first", "fcm", false],
      [{ PUSH_SERVICE_PREFERENCE: "unified_push" }, "unified-first", "unified_push", false],
      // keyless is not usable while encryption is required: the turn passes to web_push, unlisted but next by default
      [{ PUSH_SERVICE_PREFERENCE: "unified_push", REQUIRE_ENCRYPTION: "true" }, "unified-first-strict", "web_push", true],
      [{ PUSH_SERVICE_PREFERENCE: "unified_push, fcm", REQUIRE_ENCRYPTION: "true" }, "unified-fcm-strict", "fcm", false],
      // fcm unconfigured is not usable either
      [{ PUSH_SERVICE_PREFERENCE: "fcm,unified_push", FCM_SERVICE_ACCOUNT: "" }, "fcm-unconfigured", "unified_push", false],
    ];
    for (const [over, topic, transport, encrypted] of cases) {
      const response = await subscribeWith(over, tenant.notify_token, { topic, push_services: services }, "/subscribe");
      const body = await response.json<Json>();
      expect(response.status, JSON.stringify(body)).toBe(201);
      expect(body, topic).toMatchObject({ topic, transport, encrypted });
    }
    // one registration each: only the chosen service was registered
    expect(await topicsOf(tenant)).toEqual(cases.map(([, topic]) => topic).sort());
  });

  it("fails on bad details of the chosen one rather than passing the turn on", async () => {
    const tenant = await createTenant();
    const before = await written(tenant);
    const cases: [Partial<Env>, unknown, number, string][] = [
      [{}, { web_push: { endpoint: "http://up.example.net/plain", keys: await userAgentKeys() }, unified_push: { endpoint: endpoint() } }, 400, "invalid_push_resource"],
      [{}, { unified_push: { endpoint: endpoint(), keys: { p256dh: "AAAA", auth: "AAAA" } }, fcm: { registration_token: "t" } }, 400, "invalid_subscription_key"],
      // a connection id we do not know is a 404, even with a usable web_push after it
      [{ PUSH_SERVICE_PREFERENCE: "websocket" }, { websocket: { connection_id: crypto.randomUUID() }, web_push: { endpoint: endpoint(), keys: await userAgentKeys() } }, 404, "not_found"],
    ];
    for (const [over, services, status, code] of cases) {
      const response = await subscribeWith(over, tenant.notify_token, { topic: "t", push_services: services });
      expect(response.status, JSON.stringify(services)).toBe(status);
      expect((await errorOf(response)).code).toBe(code);
    }
    expect(await written(tenant)).toEqual(before);
  });

  it("answers 400 transport_unavailable naming the usable services when none named is usable (fcm alone, FCM unconfigured)", async () => {
    const tenant = await createTenant();
    const noFcm = { FCM_SERVICE_ACCOUNT: "" };
    const alone = await subscribeWith(noFcm, tenant.notify_token, { topic: "t", push_services: { fcm: { registration_token: "tok" } } }, "/subscribe");
    expect(alone.status).toBe(400);
    expect(await errorOf(alone)).toEqual({
      code: "transport_unavailable",
      message: "none of the push services named (fcm) is usable on this director; usable: web_push, unified_push, websocket",
    });
    const strict = await subscribeWith({ ...noFcm, REQUIRE_ENCRYPTION: "true" }, tenant.notify_token, {
      topic: "t",
      push_services: { fcm: { registration_token: "tok" }, unified_push: { endpoint: endpoint() } },
    });
    expect(strict.status).toBe(400);
    expect(await errorOf(strict)).toMatchObject({ code: "transport_unavailable", message: expect.stringMatching(/usable: web_push, unified_push \(with keys\), websocket$/) });
    expect(await written(tenant)).toEqual({ subscriptions: [], registrations: [] });
  });
});

describe("REQUIRE_ENCRYPTION", () => {
  it("refuses keyless unified_push alone (400 encryption_required), writing nothing; keys make it fine", async () => {
    const tenant = await createTenant();
    const strict = { REQUIRE_ENCRYPTION: "true" };
    const refused = await subscribeWith(strict, tenant.notify_token, { topic: "t", push_services: { unified_push: { endpoint: endpoint() } } }, "/subscribe");
    expect(refused.status).toBe(400);
    expect((await errorOf(refused)).code).toBe("encryption_required");
    expect(await written(tenant)).toEqual({ subscriptions: [], registrations: [] });
    const keyed = await subscribeWith(strict, tenant.notify_token, { topic: "t", push_services: { unified_push: { endpoint: endpoint(), keys: await userAgentKeys() } } });
    expect(keyed.status).toBe(201);
    expect(await keyed.json()).toMatchObject({ transport: "unified_push", encrypted: true });
    // off (the default): keyless is taken
    const keyless = await subscribeWith({}, tenant.notify_token, { topic: "u", push_services: { unified_push: { endpoint: endpoint() } } });
    expect(await keyless.json()).toMatchObject({ transport: "unified_push", encrypted: false });
  });
});

describe("push_services.websocket", () => {
  it("answers 404 for a connection id it does not know, whatever its form, never 400, and writes nothing", async () => {
    const tenant = await createTenant();
    const alice = await grant(tenant, { topics: ["t"] });
    for (const id of [crypto.randomUUID(), "", "x".repeat(300), "../../etc", "8b7c2f0e\n", "👀"]) {
      for (const token of [tenant.notify_token, alice]) {
        const response = await post("/subscribe", token, { topic: "t", push_services: { websocket: { connection_id: id } } });
        expect(response.status, JSON.stringify(id)).toBe(404);
        expect((await errorOf(response)).code).toBe("not_found");
      }
    }
    expect(await written(tenant)).toEqual({ subscriptions: [], registrations: [] });
  });
});

describe("push_services.websocket on a live connection", () => {
  /** A change to `topic` through the early draft's /notify, flushed by the topic's hub. */
  async function notifyFlushed(tenant: TestTenant, topic: string, syncToken: string) {
    expect((await post("/notify", tenant.notify_token, { topic, content_update: { sync_token: syncToken } })).status).toBe(202);
    await runDurableObjectAlarm(topicHub(env, tenant.id, topic));
  }

  it("attaches by /subscribe (201, Location); /unsubscribe and a DELETE without credentials detach at once", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, { topics: ["w1", "w2"] }, { sub: "early" });
    const client = await upgrade("/v1/ws", bearer(token));
    const id = (await client.next(1))[0].connection_id as string;
    const attach = (topic: string) => post("/subscribe", token, { client_id: "browser", topic, push_services: { websocket: { connection_id: id } } });
    const first = await attach("w1");
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({ topic: "w1", transport: "websocket", connection_id: id, encrypted: false, owner: "early" });
    const second = await attach("w2");
    expect(second.headers.get("Location")).toMatch(/^https:\/\/director\.test\/v1\/registrations\/[A-Za-z0-9_-]{22}$/);

    expect((await post("/unsubscribe", token, { topic: "w1", push_services: { websocket: { connection_id: id } } })).status).toBe(204);
    await notifyFlushed(tenant, "w1", "detached");
    await notifyFlushed(tenant, "w2", "marker-1");
    expect((await client.next(2))[1]).toMatchObject({ type: "push", topic: "w2", content_update: { sync_token: "marker-1" } });

    expect((await call(new URL(second.headers.get("Location")!).pathname, { method: "DELETE" })).status).toBe(204);
    expect((await attach("w1")).status).toBe(201);
    await notifyFlushed(tenant, "w2", "detached");
    await notifyFlushed(tenant, "w1", "marker-2");
    expect((await client.next(3))[2]).toMatchObject({ type: "push", topic: "w1", content_update: { sync_token: "marker-2" } });
    expect(await topicsOf(tenant)).toEqual(["w1"]);

    // another user's grant may not attach it, and writes nothing
    const before = await written(tenant);
    const intruder = await post("/subscribe", await grant(tenant, { topics: ["w2"] }, { sub: "intruder" }), { topic: "w2", push_services: { websocket: { connection_id: id } } });
    expect(intruder.status).toBe(403);
    expect((await errorOf(intruder)).code).toBe("connection_not_yours");
    expect(await written(tenant)).toEqual(before);
    await client.close();
  });
});

describe("keyless UnifiedPush", () => {
  it("is delivered plain through the real queues: the push-message XML, TTL, Urgency, Topic and VAPID; shown unencrypted", async () => {
    const tenant = await createTenant();
    const plain = await keylessSubscriber();
    const keyed = await pushService.subscriber();
    const insecure = { ALLOW_INSECURE_PUSH_RESOURCES: "true" };
    const registered = await subscribeWith(insecure, tenant.notify_token, { topic: "cal", push_services: { unified_push: { endpoint: plain.endpoint } } }, "/subscribe");
    expect(registered.status).toBe(201);
    const registration = await registered.json<Json>();
    expect(registration).toMatchObject({ transport: "unified_push", push_resource: plain.endpoint, encrypted: false });
    // a keyed subscriber on the same topic shares the chunk and still gets its message encrypted
    const keys = { p256dh: keyed.p256dh, auth: keyed.auth };
    expect((await subscribeWith(insecure, tenant.notify_token, { topic: "cal", push_services: { web_push: { endpoint: keyed.endpoint, keys } } })).status).toBe(201);

    const notified = await post("/notify", tenant.notify_token, { topic: "cal", content_update: { sync_token: "http://dav.example/sync/3" }, urgency: "high", ttl: 600 });
    expect(notified.status).toBe(202);
    await runDurableObjectAlarm(topicHub(env, tenant.id, "cal"));

    const xml =
      '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:">' +
      "<topic>cal</topic><content-update><D:sync-token>http://dav.example/sync/3</D:sync-token></content-update></push-message>";
    const [message] = (await pushService.wait(plain.id, 1)).received as PlainReceivedMessage[];
    expect(message).toMatchObject({
      xml,
      contentType: 'application/xml; charset="UTF-8"',
      ttl: 600,
      urgency: "high",
      topic: await topicHeader(tenant.id, "cal"),
      claims: { aud: new URL(env.TEST_PUSH_SERVICE).origin, sub: "mailto:ops@push-director.example" },
      // valid against the draft's RELAX NG schema
      schemaError: null,
    });
    expect((await pushService.wait(keyed.id, 1)).received.map((m) => m.xml)).toEqual([xml]);
    // the stand-in refuses a Content-Encoding to a keyless subscriber, and plain bodies to a keyed one
    expect(await pushService.errors()).toEqual([]);
    const shown = await (await call(`/v1/registrations/${registration.id}`, { headers: bearer(tenant.notify_token) })).json();
    expect(shown).toMatchObject({ transport: "unified_push", encrypted: false });
  });
});
