// Huawei Push Kit through its stand-in (test/support/hms-service.ts), which checks the token
// request and every message field: registering a token (and refusing bad ones), one request per
// chunk, the answers by code (illegal tokens gone, and only those), token refresh, retries, and
// what a hostile answer must not do.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import worker from "../../src/index";
import { deliver, transportsFor } from "../../src/queues/deliveries";
import { targetFor } from "../../src/queues/fanout";
import { deliverableFor } from "../../src/transports";
import type { DeliveryJob, DeliveryTarget } from "../../src/queues/jobs";
import { existingSubscriptions } from "../../src/store/subscriptions";
import { hmsMessage, hmsOutcomes, hmsTransport, hmsCredentialsOf, MAX_HMS_DATA_BYTES } from "../../src/transports/hms";
import type { PushMessage } from "../../src/transports/transport";
import { createTenant, hmsEnv, hmsService, ORIGIN, type TestTenant } from "../helpers";

const message: PushMessage = { xml: "<push-message/>", ttl: 600, urgency: "normal", topic: null, data: { topic: "cal", sync_token: "s-1" } };

function subscribe(tenant: TestTenant, body: unknown, over: Partial<Env> = hmsEnv()) {
  return app.fetch(
    new Request(`${ORIGIN}/v1/subscriptions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${tenant.notify_token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }),
    over,
  );
}

/** Registers `token` on `topic`; answers the subscription's id. */
async function registerToken(tenant: TestTenant, topic: string, token: string): Promise<number> {
  const response = await subscribe(tenant, { topic, push_services: { hms: { token } } });
  expect(response.status).toBe(201);
  const { id } = (await response.json()) as { id: string };
  return (await env.DB.prepare("SELECT subscription_id FROM registrations WHERE id = ?").bind(id).first<{ subscription_id: number }>())!.subscription_id;
}

/** A delivery job for these subscriptions, as the fan-out queues it. */
async function jobOf(tenant: TestTenant, ids: number[], over: Partial<DeliveryJob> = {}): Promise<DeliveryJob> {
  const rows = await existingSubscriptions(env.DB, ids);
  const targets = rows.map((row) => targetFor({ ...row, subscription_id: row.id }, tenant.id, deliverableFor(hmsEnv()))) as DeliveryTarget[];
  return { tenantId: tenant.id, message, transport: "hms", targets, attempt: 1, deadline: Math.floor(Date.now() / 1000) + 600, ...over };
}

const count = async (table: string, ids: number[]) =>
  (await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${table === "subscriptions" ? "id" : "subscription_id"} IN (SELECT value FROM json_each(?))`).bind(JSON.stringify(ids)).first<{ n: number }>())!.n;

describe("push_services.hms", () => {
  it("is refused with 400 naming token when it is missing, empty, not a string or over 4096 characters, and nothing is stored", async () => {
    const tenant = await createTenant();
    for (const hms of [{}, { token: "" }, { token: 42 }, { token: null }, { token: ["a"] }, { token: "x".repeat(4097) }]) {
      const response = await subscribe(tenant, { topic: "cal", push_services: { hms } });
      expect(response.status).toBe(400);
      expect(await response.text()).toMatch(/hms\.token/);
    }
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>())!.n).toBe(0);
  });

  it("answers 400 transport_unavailable while HMS_APP_ID or HMS_CLIENT_SECRET is not set", async () => {
    const tenant = await createTenant();
    for (const over of [env, { ...hmsEnv(), HMS_CLIENT_SECRET: "" }, { ...hmsEnv(), HMS_APP_ID: " " }]) {
      const response = await subscribe(tenant, { topic: "cal", push_services: { hms: { token: "t" } } }, over);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("transport_unavailable");
    }
  });

  it("stores the token sealed, found by its SHA-256, and shows the registration as transport hms with its token", async () => {
    const tenant = await createTenant();
    // what an attacker might send: control characters and JSON-looking text are only a token
    const token = 'hms-{"illegal_tokens":["x"]}\u0000\n';
    const response = await subscribe(tenant, { topic: "cal", push_services: { hms: { token } } });
    expect(response.status).toBe(201);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ transport: "hms", token, encrypted: false });
    expect(body).not.toHaveProperty("registration_token");
    const row = (await env.DB.prepare("SELECT * FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first<Record<string, string>>())!;
    const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)))].map((b) => b.toString(16).padStart(2, "0")).join("");
    expect(row).toMatchObject({ transport: "hms", service: "hms", identifier: digest, platform: null });
    expect(JSON.stringify(row)).not.toContain("illegal_tokens");
  });

  it("is forgotten by the early draft's unsubscribe, found by the token alone", async () => {
    const tenant = await createTenant();
    const token = await hmsService.token();
    const id = await registerToken(tenant, "cal", token);
    const unsubscribe = (hms: unknown) =>
      app.fetch(
        new Request(`${ORIGIN}/v1/unsubscribe`, {
          method: "POST",
          headers: { Authorization: `Bearer ${tenant.notify_token}`, "Content-Type": "application/json" },
          body: JSON.stringify({ topic: "cal", push_services: { hms } }),
        }),
        hmsEnv(),
      );
    expect((await unsubscribe({ token: `${token}-other` })).status).toBe(404);
    expect(await count("registrations", [id])).toBe(1);
    expect((await unsubscribe({ token })).status).toBe(204);
    expect(await count("registrations", [id])).toBe(0);
  });

  it("is listed by discovery with its app ID only when configured", async () => {
    const discover = async (over: Env) => ((await (await app.fetch(new Request(`${ORIGIN}/.well-known/webdav-push`), over)).json()) as { transports: Record<string, unknown>; push_service_preference: string[] });
    const on = await discover(hmsEnv());
    expect(on.transports.hms).toEqual({ app_id: env.TEST_HMS_APP_ID });
    expect(on.push_service_preference).toContain("hms");
    const off = await discover(env);
    expect(off.transports.hms).toBeUndefined();
    expect(off.push_service_preference).not.toContain("hms");
  });
});

describe("Push Kit messages", () => {
  it("carry the data as JSON text, urgency and TTL, and leave the XML out above 4096 bytes", () => {
    const small = hmsMessage(["a", "b"], { ...message, urgency: "high" });
    expect(small).toEqual({
      validate_only: false,
      message: { token: ["a", "b"], data: JSON.stringify({ topic: "cal", sync_token: "s-1", push_message: "<push-message/>" }), android: { urgency: "HIGH", ttl: "600s" } },
    });
    for (const urgency of ["very-low", "low", "normal"] as const) expect(hmsMessage(["a"], { ...message, urgency }).message.android.urgency).toBe("NORMAL");
    const large = hmsMessage(["a"], { ...message, xml: "x".repeat(MAX_HMS_DATA_BYTES) });
    expect(JSON.parse(large.message.data)).toEqual({ topic: "cal", sync_token: "s-1" });
  });

  it("send a chunk of tokens in one request, checked field by field by the stand-in", async () => {
    const tokens = [await hmsService.token(), await hmsService.token(), await hmsService.token()];
    const sender = hmsTransport(hmsEnv(), hmsCredentialsOf(hmsEnv())!);
    const before = (await hmsService.state()).requests.length;
    const outcomes = await sender.send(tokens.map((token, i) => ({ subscriptionId: i, token })), { ...message, urgency: "high", ttl: 90 });
    expect(outcomes).toEqual(tokens.map(() => ({ kind: "delivered", status: 200 })));
    const state = await hmsService.state();
    expect(state.errors).toEqual([]);
    expect(state.requests.slice(before)).toEqual([tokens]);
    expect(state.received[tokens[0]]).toEqual([{ data: { topic: "cal", sync_token: "s-1", push_message: "<push-message/>" }, urgency: "HIGH", ttl: "90s" }]);
  });

  it("get a new access token when Push Kit refuses the one they carry, and are sent once more", async () => {
    const token = await hmsService.token();
    const sender = hmsTransport(hmsEnv(), hmsCredentialsOf(hmsEnv())!);
    await sender.send([{ subscriptionId: 1, token }], message);
    const issued = (await hmsService.state()).tokensIssued;
    await hmsService.revoke();
    expect(await sender.send([{ subscriptionId: 1, token }], message)).toEqual([{ kind: "delivered", status: 200 }]);
    const state = await hmsService.state();
    expect(state.tokensIssued).toBe(issued + 1);
    expect(state.received[token]).toHaveLength(2);
    expect(state.errors).toEqual([]);
  });

  it("never let a hostile answer delete a subscription it does not name in the chunk", async () => {
    const tokens = ["a", "b"];
    const partial = (msg: unknown) => hmsOutcomes(tokens, { status: 200, code: "80100000", msg, retryAfter: null, text: null }).map((o) => o.kind);
    expect(partial("not json")).toEqual(["delivered", "delivered"]);
    expect(partial(JSON.stringify({ illegal_tokens: ["c", 7, null] }))).toEqual(["delivered", "delivered"]);
    expect(partial(JSON.stringify({ illegal_tokens: "a" }))).toEqual(["delivered", "delivered"]);
    expect(partial({ illegal_tokens: ["a"] })).toEqual(["delivered", "delivered"]);
    expect(partial(JSON.stringify({ illegal_tokens: ["b", "b"] }))).toEqual(["delivered", "gone"]);
  });
});

describe("HMS deliveries", () => {
  it("delete exactly the subscriptions Push Kit names illegal, with their registrations; the rest are delivered", async () => {
    const tenant = await createTenant();
    const good = [await hmsService.token(), await hmsService.token()];
    const bad = await hmsService.token("illegal");
    const goodIds = [await registerToken(tenant, "cal", good[0]), await registerToken(tenant, "cal", good[1])];
    const badId = await registerToken(tenant, "cal", bad);
    // another tenant's subscription of the same token stays: the chunk is this tenant's
    const other = await createTenant();
    const otherId = await registerToken(other, "cal", bad);
    const before = (await hmsService.state()).requests.length;
    expect(await deliver([await jobOf(tenant, [...goodIds, badId])], hmsEnv(), transportsFor(hmsEnv()))).toEqual([null]);
    const state = await hmsService.state();
    expect(state.requests.slice(before)).toEqual([[...good, bad]]);
    expect(await count("subscriptions", [badId])).toBe(0);
    expect(await count("registrations", [badId])).toBe(0);
    expect(await count("subscriptions", [...goodIds, otherId])).toBe(3);
    expect(await count("registrations", [...goodIds, otherId])).toBe(3);
    const rows = await existingSubscriptions(env.DB, goodIds);
    expect(rows).toHaveLength(2);
    for (const id of goodIds) expect((await env.DB.prepare("SELECT last_success_at FROM subscriptions WHERE id = ?").bind(id).first<{ last_success_at: number }>())!.last_success_at).not.toBeNull();
  });

  it("are acked by the deliveries consumer once their follow-ups are written, a retry queued included", async () => {
    const tenant = await createTenant();
    const fine = await registerToken(tenant, "cal", await hmsService.token());
    const busy = await registerToken(tenant, "book", await hmsService.token("busy-once"));
    const batch = createMessageBatch<DeliveryJob>("push-deliveries", [
      { id: "fine", timestamp: new Date(), attempts: 1, body: await jobOf(tenant, [fine]) },
      { id: "busy", timestamp: new Date(), attempts: 1, body: await jobOf(tenant, [busy]) },
    ]);
    const ctx = createExecutionContext();
    await worker.queue!(batch as MessageBatch, hmsEnv());
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(["busy", "fine"]);
    expect(result.retryMessages).toEqual([]);
    expect(await env.DB.prepare("SELECT consecutive_failures FROM subscriptions WHERE id = ?").bind(busy).first()).toMatchObject({ consecutive_failures: 1 });
    expect((await env.DB.prepare("SELECT next_attempt_at FROM subscriptions WHERE id = ?").bind(busy).first<{ next_attempt_at: number | null }>())!.next_attempt_at).not.toBeNull();
  });

  it("deletes every subscription of the chunk when all are illegal (80300007)", async () => {
    const tenant = await createTenant();
    const ids = [await registerToken(tenant, "cal", await hmsService.token("illegal")), await registerToken(tenant, "cal", await hmsService.token("illegal"))];
    expect(await deliver([await jobOf(tenant, ids)], hmsEnv(), transportsFor(hmsEnv()))).toEqual([null]);
    expect(await count("subscriptions", ids)).toBe(0);
    expect(await count("registrations", ids)).toBe(0);
  });

  it("queue a retry per target after 81000001 or a 503, and deliver it then", async () => {
    const tenant = await createTenant();
    for (const behaviour of ["busy-once", "unavailable-once"]) {
      const token = await hmsService.token(behaviour);
      const id = await registerToken(tenant, `t-${behaviour}`, token);
      const sent: MessageSendRequest<DeliveryJob>[] = [];
      const queue = { ...env.DELIVERIES, sendBatch: async (batch: Iterable<MessageSendRequest<DeliveryJob>>) => void sent.push(...batch) } as unknown as Queue<DeliveryJob>;
      const over = { ...hmsEnv(), DELIVERIES: queue };
      expect(await deliver([await jobOf(tenant, [id])], over, transportsFor(over))).toEqual([null]);
      expect(sent).toHaveLength(1);
      expect(sent[0].body).toMatchObject({ transport: "hms", attempt: 2, targets: [{ subscriptionId: id }] });
      expect(await env.DB.prepare("SELECT consecutive_failures, next_attempt_at FROM subscriptions WHERE id = ?").bind(id).first()).toMatchObject({ consecutive_failures: 1 });
      // the retry itself, as the queue hands it back
      expect(await deliver([{ ...sent[0].body, dueAt: undefined }], hmsEnv(), transportsFor(hmsEnv()))).toEqual([null]);
      expect((await hmsService.state()).received[token]).toHaveLength(1);
      expect(await env.DB.prepare("SELECT consecutive_failures FROM subscriptions WHERE id = ?").bind(id).first()).toMatchObject({ consecutive_failures: 0 });
    }
  });

  it("record a refusal with Push Kit's words and delete nothing when its answer is not one it knows", async () => {
    const tenant = await createTenant();
    const id = await registerToken(tenant, "cal", await hmsService.token());
    await hmsService.answerNext(400, JSON.stringify({ code: "80100003", msg: "Incorrect message structure" }));
    expect(await deliver([await jobOf(tenant, [id])], hmsEnv(), transportsFor(hmsEnv()))).toEqual([null]);
    expect(await env.DB.prepare("SELECT last_failure_status, last_failure_reason FROM subscriptions WHERE id = ?").bind(id).first()).toEqual({
      last_failure_status: 400,
      last_failure_reason: "HMS answered 400 80100003: Incorrect message structure",
    });
    await hmsService.answerNext(200, "<html>not json</html>");
    expect(await deliver([await jobOf(tenant, [id])], hmsEnv(), transportsFor(hmsEnv()))).toEqual([null]);
    expect(await count("subscriptions", [id])).toBe(1);
  });
});
