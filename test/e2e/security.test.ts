// Security end to end, through `npm start`: rotating a tenant's secrets closes the sockets opened
// with the old ones (4001) and the new ones work at once; disabling a tenant closes its sockets
// (4003), a topic with spaces at its ends kept byte-exact; a push service's redirect is never
// followed nor retried; a burst of property updates too large for one queue message still
// arrives (widened to "any property") and leaves the topic deliverable.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { PushService, type SubscriberInfo } from "../support/push-service";
import { api, mintGrant, startDirector, type Director } from "./director";

let director: Director;
let service: PushService;
const opened: WebSocket[] = [];

beforeAll(async () => {
  [director, service] = await Promise.all([startDirector(), new PushService().start()]);
  service.vapidPublicKey = director.vars.VAPID_PUBLIC_KEY;
});

afterAll(async () => {
  for (const ws of opened) ws.terminate();
  await Promise.all([director?.stop(), service?.stop()]);
});

type Frame = Record<string, any>;

interface Closed {
  code: number;
  reason: string;
  /** performance.now() when the close event fired. */
  at: number;
}

interface Socket {
  ws: WebSocket;
  frames: Frame[];
  /** The first frame that matches, as soon as it arrives. */
  frame: (what: string, match: (f: Frame) => boolean) => Promise<Frame>;
  closed: Promise<Closed>;
}

/** Rejects when `promise` has not settled within `ms`, naming what was awaited. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

type Credential = { bearer: string } | { grant: string };

/**
 * After the closing handshake of a server-initiated close, a client waits for the server to drop
 * the TCP connection (RFC 6455 §7.1.1) before its close event. wrangler dev keeps that connection
 * of a hibernatable socket open ~10 s longer (a bare Durable Object doing acceptWebSocket + close
 * shows the same), so the client drops it itself this soon after its close reply. The close event
 * still carries the code and reason of the close frame the director sent (1006 without one).
 */
const CLOSE_TIMEOUT_MS = 100;

/** Opens `/v1/ws?topic=`: the notify token in an Authorization header, a grant as `bearer.` subprotocol. */
function upgrade(topic: string, credential: Credential): WebSocket {
  const url = `${director.url.replace("http:", "ws:")}/v1/ws?topic=${encodeURIComponent(topic)}`;
  // ws's closeTimeout option, which @types/ws does not list yet
  const options: WebSocket.ClientOptions & { closeTimeout: number } = { closeTimeout: CLOSE_TIMEOUT_MS };
  const ws =
    "bearer" in credential
      ? new WebSocket(url, { ...options, headers: { Authorization: `Bearer ${credential.bearer}` } })
      : new WebSocket(url, ["webdav-push", `bearer.${credential.grant}`], options);
  opened.push(ws);
  return ws;
}

/** A socket that has opened and received its hello frame. */
async function connect(topic: string, credential: Credential): Promise<Socket> {
  const ws = upgrade(topic, credential);
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  ws.on("message", (data) => {
    frames.push(JSON.parse(data.toString()));
    for (const waiter of [...waiters]) waiter();
  });
  const closed = new Promise<Closed>((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString(), at: performance.now() })));
  const frame = (what: string, match: (f: Frame) => boolean) =>
    within(
      10_000,
      what,
      new Promise<Frame>((resolve) => {
        const check = () => {
          const found = frames.find(match);
          if (found === undefined) return;
          waiters.delete(check);
          resolve(found);
        };
        waiters.add(check);
        check();
      }),
    );
  await within(
    10_000,
    `opening a socket on ${JSON.stringify(topic)}`,
    new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
      ws.once("error", reject);
    }),
  );
  const socket = { ws, frames, frame, closed };
  await frame("hello", (f) => f.type === "hello");
  return socket;
}

/** The status an upgrade is refused with (the test fails if the socket opens instead). */
function refusal(topic: string, credential: Credential): Promise<number> {
  const ws = upgrade(topic, credential);
  return within(
    10_000,
    "refusal of the upgrade",
    new Promise<number>((resolve, reject) => {
      ws.once("unexpected-response", (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        ws.terminate();
      });
      ws.once("open", () => reject(new Error("the upgrade was accepted")));
      ws.once("error", (error) => reject(error));
    }),
  );
}

async function newTenant(name: string): Promise<{ id: string; notify_token: string; grant_secret: string }> {
  const created = await api(director, "/v1/admin/tenants", director.adminToken, { json: { name } });
  expect(created.status).toBe(201);
  return created.body;
}

async function subscribe(token: string, topic: string, s: SubscriberInfo, trigger?: unknown) {
  const response = await api(director, "/v1/subscriptions", token, {
    json: { topic, push_services: { web_push: { endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } } }, ...(trigger === undefined ? {} : { trigger }) },
  });
  expect(response.status).toBe(201);
  return response.body;
}

describe("security through wrangler dev", () => {
  it("closes the sockets of rotated credentials (4001) and of a disabled tenant (4003); the new credentials work", async () => {
    const tenant = await newTenant("rotation");
    const old = await Promise.all([
      connect("t-rot", { bearer: tenant.notify_token }),
      connect("t-rot", { grant: await mintGrant(tenant, ["t-rot"], "a") }),
      connect("t-rot", { grant: await mintGrant(tenant, ["t-rot"], "b") }),
    ]);
    const oldGrant = await mintGrant(tenant, ["t-rot"], "c");

    const sent = performance.now();
    const rotated = await api(director, `/v1/admin/tenants/${tenant.id}/rotate`, director.adminToken, { method: "POST" });
    const answered = performance.now();
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ id: tenant.id, closed_sockets: 3 });
    expect(rotated.body.notify_token).toEqual(expect.any(String));
    expect(rotated.body.grant_secret).toEqual(expect.any(String));
    expect(rotated.body.notify_token).not.toBe(tenant.notify_token);
    expect(rotated.body.grant_secret).not.toBe(tenant.grant_secret);

    const closes = await within(5_000, "the old sockets' close events", Promise.all(old.map((s) => s.closed)));
    console.log(`rotate→close: ${Math.round(Math.max(...closes.map((c) => c.at)) - sent)} ms (rotate answered after ${Math.round(answered - sent)} ms)`);
    for (const close of closes) {
      expect({ code: close.code, reason: close.reason }).toEqual({ code: 4001, reason: "credentials rotated" });
      expect(close.at - answered).toBeLessThanOrEqual(1000);
    }

    // the old secret's grants are refused; the new token and secret work at once
    expect(await refusal("t-rot", { grant: oldGrant })).toBe(401);
    const fresh = { ...tenant, notify_token: rotated.body.notify_token as string, grant_secret: rotated.body.grant_secret as string };
    const renewed = await Promise.all([
      connect("t-rot", { bearer: fresh.notify_token }),
      connect("t-rot", { grant: await mintGrant(fresh, ["t-rot"], "a") }),
    ]);
    const notified = await api(director, "/v1/notify", fresh.notify_token, { json: { topic: "t-rot", content_update: { sync_token: "s1" } } });
    expect(notified.status).toBe(202);
    for (const s of renewed) {
      const push = await s.frame("push s1", (f) => f.type === "push");
      expect(push).toMatchObject({ topic: "t-rot", content_update: { sync_token: "s1" } });
      s.ws.close();
    }

    // a second tenant: a topic with spaces at its ends stays byte-exact; disabling closes with 4003
    const other = await newTenant("padded");
    const padded = await connect(" d-padded ", { grant: await mintGrant(other, [" d-padded "], "p") });
    expect(padded.frames[0]).toMatchObject({ type: "hello", topic: " d-padded " });
    const disabled = await api(director, `/v1/admin/tenants/${other.id}/disable`, director.adminToken, { method: "POST" });
    expect(disabled.status).toBe(200);
    expect(disabled.body.disabled).toBe(true);
    expect(disabled.body.closed_sockets).toBeGreaterThanOrEqual(1);
    const close = await within(5_000, "the padded socket's close event", padded.closed);
    expect({ code: close.code, reason: close.reason }).toEqual({ code: 4003, reason: "tenant disabled" });
  });

  it("never follows a push service's redirect, nor retries it", async () => {
    const tenant = await newTenant("redirect");
    const target = service.addSubscriber();
    const redirecting = service.addSubscriber({ kind: "redirect", status: 307, location: target.endpoint });
    const control = service.addSubscriber();
    await subscribe(tenant.notify_token, "t-redir", redirecting);
    await subscribe(tenant.notify_token, "t-redir", control);

    const notified = await api(director, "/v1/notify", tenant.notify_token, { json: { topic: "t-redir", content_update: { sync_token: "r1" } } });
    expect(notified.status).toBe(202);
    await service.waitUntil(() => service.received(control.id).length >= 1 && service.attempts(redirecting.id) >= 1);
    expect(service.received(control.id).map((m) => m.xml)).toEqual([expect.stringContaining("<D:sync-token>r1</D:sync-token>")]);
    expect(service.attempts(redirecting.id)).toBe(1);
    expect(service.received(redirecting.id)).toEqual([]);
    expect([service.attempts(target.id), service.received(target.id).length]).toEqual([0, 0]);

    // No retry: without Retry-After a first retry would come 5–15 s later (backoff with jitter
    // around 10 s) plus the local queue's delivery latency, so watch 18 s for a second attempt.
    const again = await service.waitUntil(() => service.attempts(redirecting.id) > 1 || service.attempts(target.id) > 0, 18_000).then(
      () => true,
      () => false,
    );
    expect(again).toBe(false);
    expect([service.attempts(redirecting.id), service.attempts(target.id)]).toEqual([1, 0]);
    expect(service.errors).toEqual([]);
  });

  it("delivers a burst of property updates beyond a queue message's size, and the topic stays deliverable", async () => {
    const tenant = await newTenant("wedge");
    const subscriber = service.addSubscriber();
    await subscribe(tenant.notify_token, "t-wedge", subscriber, { property_update: { depth: 0 }, content_update: { depth: 1 } });

    // 40 requests × 100 distinct names × 62 bytes = 248,000 bytes of names (> 226 KB), each body
    // ~6.6 KB (under the 64 KiB limit), all sent at once so they meet within one merge window.
    const REQUESTS = 40;
    const names = (r: number) => Array.from({ length: 100 }, (_, i) => `{urn:x}p-${r}-${i}-`.padEnd(62, "x"));
    expect(names(0).every((n) => n.length === 62)).toBe(true);
    const burst = performance.now();
    const answers = await Promise.all(
      Array.from({ length: REQUESTS }, (_, r) =>
        api(director, "/v1/notify", tenant.notify_token, { json: { topic: "t-wedge", property_update: { props: names(r), depth: 0 } } }),
      ),
    );
    const sentIn = performance.now() - burst;
    expect(answers.map((a) => a.status)).toEqual(Array(REQUESTS).fill(202));

    const hasPropertyUpdate = () => service.received(subscriber.id).some((m) => m.xml.includes("<property-update"));
    await service.waitUntil(hasPropertyUpdate, 30_000);
    console.log(`burst→property update: ${Math.round(performance.now() - burst)} ms (the ${REQUESTS} notifies took ${Math.round(sentIn)} ms)`);

    const later = performance.now();
    const notified = await api(director, "/v1/notify", tenant.notify_token, { json: { topic: "t-wedge", content_update: { sync_token: "after-wedge" } } });
    expect(notified.status).toBe(202);
    await service.waitUntil(() => service.received(subscriber.id).some((m) => m.xml.includes("after-wedge")), 30_000);
    console.log(`later notify→delivery: ${Math.round(performance.now() - later)} ms`);

    const xml = service.received(subscriber.id).map((m) => m.xml);
    expect(xml.at(-1)).toContain("<D:sync-token>after-wedge</D:sync-token>");
    expect(service.errors).toEqual([]);
  });
});
