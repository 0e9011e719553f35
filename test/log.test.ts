import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { app } from "../src/app";
import { topicHub } from "../src/hub/topic-hub";
import { hostOf, levelOf, logLine } from "../src/log";
import type { DeliveryJob, DeliveryTarget } from "../src/queues/jobs";
import { attemptLines } from "../src/queues/deliveries";
import { bearer, call, createTenant, grant, pushService, registerSubscriber, userAgentKeys } from "./helpers";
import { upgrade } from "./socket-client";

type Line = Record<string, any>;

/** Every line written to the console while a test runs, raw and parsed. */
let raw: string[] = [];
const lines = (): Line[] => raw.flatMap((text) => (text.startsWith("{") ? [JSON.parse(text)] : []));
const requests = () => lines().filter((l) => l.event === "request");

beforeEach(() => {
  raw = [];
  const capture = (...args: unknown[]) => void raw.push(args.map(String).join(" "));
  vi.spyOn(console, "log").mockImplementation(capture);
  vi.spyOn(console, "error").mockImplementation(capture);
});
afterEach(() => vi.restoreAllMocks());

describe("request lines", () => {
  it("log method, route pattern, status, ms and tenant, and nothing a caller keeps secret", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, { topics: ["topic-1"] });
    const keys = await userAgentKeys();
    const secretPath = `secret-path-${crypto.randomUUID()}`;
    const created = await call("/v1/subscriptions", {
      method: "POST",
      headers: bearer(token),
      json: { topic: "topic-1", push_services: { web_push: { endpoint: `https://push.example.net/${secretPath}`, keys } } },
    });
    expect(created.status).toBe(201);
    const registration = await created.json<{ id: string; url: string }>();
    expect((await call(`/v1/registrations/${registration.id}`, { headers: bearer(token) })).status).toBe(200);
    // a topic nobody registered for: nothing goes out to push.example.net, which does not resolve
    expect((await call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: { topic: "quiet-topic" } })).status).toBe(202);
    const socket = await upgrade(`/v1/ws?topic=topic-1&access_token=${token}`);
    await socket.close();
    expect((await call("/v1/registrations/nope")).status).toBe(401);

    const byRoute = (method: string, route: string) => requests().find((l) => l.method === method && l.route === route);
    expect(byRoute("POST", "/v1/subscriptions")).toMatchObject({ level: "info", status: 201, tenant: tenant.id, ms: expect.any(Number) });
    expect(byRoute("GET", "/v1/registrations/:id")).toMatchObject({ status: 200, tenant: tenant.id });
    expect(byRoute("POST", "/v1/notify")).toMatchObject({ status: 202, tenant: tenant.id });
    expect(byRoute("GET", "/v1/ws")).toMatchObject({ status: 101, tenant: tenant.id });
    // refused before authenticating: no tenant
    expect(requests().find((l) => l.status === 401)).toMatchObject({ route: "/v1/registrations/:id", tenant: null });
    for (const line of requests()) expect(Object.keys(line).sort()).toEqual(["event", "level", "method", "ms", "route", "status", "tenant"]);

    const all = raw.join("\n");
    for (const secret of [token, tenant.notify_token, tenant.grant_secret, secretPath, registration.id, "access_token", keys.auth, keys.p256dh]) {
      expect(all).not.toContain(secret);
    }
  });

  it("LOG_LEVEL=warn leaves info lines out, error lines still written", async () => {
    const quiet = { ...env, LOG_LEVEL: "warn" };
    expect((await app.fetch(new Request("https://director.test/"), quiet)).status).toBe(200);
    expect(raw).toEqual([]);
    expect((await app.fetch(new Request("https://director.test/healthz"), { ...quiet, ADMIN_TOKEN: "" })).status).toBe(503);
    expect(requests()).toMatchObject([{ level: "error", route: "/healthz", status: 503 }]);
    expect((await app.fetch(new Request("https://director.test/"), env)).status).toBe(200);
    expect(requests()).toHaveLength(2);
  });
});

describe("delivery and fan-out lines", () => {
  it("log deliveries per attempt with the push service's host alone, and one fan-out per job", async () => {
    const tenant = await createTenant();
    const subscriber = await pushService.subscriber();
    await registerSubscriber(tenant, "log-topic", subscriber);
    expect((await call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: { topic: "log-topic" } })).status).toBe(202);
    await runDurableObjectAlarm(topicHub(env, tenant.id, "log-topic"));
    await pushService.wait(subscriber.id, 1);
    // another test's jobs may still be on the queues: this tenant's lines only
    const mine = (event: string) => lines().find((l) => l.event === event && l.tenant === tenant.id);
    await vi.waitFor(() => expect(mine("delivery")).toBeDefined());

    expect(mine("fanout")).toEqual({ level: "info", event: "fanout", tenant: tenant.id, recipients: 1, chunks: 1, more: false });
    expect(mine("delivery")).toEqual({
      level: "info",
      event: "delivery",
      tenant: tenant.id,
      transport: "web_push",
      host: new URL(subscriber.endpoint).host,
      outcome: "delivered",
      status: 201,
      count: 1,
      ms: expect.any(Number),
      attempt: 1,
    });
    const path = new URL(subscriber.endpoint).pathname;
    expect(raw.join("\n")).not.toContain(path);
  });
});

describe("attemptLines", () => {
  const job = (attempt: number, transport: "web_push" | "fcm" = "web_push") => ({ transport, attempt }) as unknown as DeliveryJob;
  const target = (tenantId: string, endpoint: string) => ({ tenantId, subscriptionId: 1, endpoint }) as unknown as DeliveryTarget;

  it("writes one line per tenant, host, outcome, status and attempt, counting its sends and keeping the slowest", () => {
    const lines = attemptLines({ FCM_API_BASE: "https://fcm.example" }, [
      { job: job(1), target: target("t1", "https://a.example/secret-1"), outcome: { kind: "delivered", status: 201 }, ms: 5 },
      { job: job(1), target: target("t1", "https://a.example/secret-2"), outcome: { kind: "delivered", status: 201 }, ms: 9 },
      { job: job(1), target: target("t1", "https://a.example/secret-3"), outcome: { kind: "retry", status: 503, reason: "x" }, ms: 2 },
      { job: job(1), target: target("t1", "https://b.example/secret-4"), outcome: { kind: "delivered", status: 201 }, ms: 3 },
      { job: job(2), target: target("t2", "https://a.example/secret-5"), outcome: { kind: "delivered", status: 201 }, ms: 4 },
      { job: job(1, "fcm"), target: { tenantId: "t1", subscriptionId: 2 } as unknown as DeliveryTarget, outcome: { kind: "gone", status: 404 }, ms: 6 },
    ] as Parameters<typeof attemptLines>[1]);
    expect(lines).toEqual([
      { tenant: "t1", transport: "web_push", host: "a.example", outcome: "delivered", status: 201, count: 2, ms: 9, attempt: 1 },
      { tenant: "t1", transport: "web_push", host: "a.example", outcome: "retry", status: 503, count: 1, ms: 2, attempt: 1 },
      { tenant: "t1", transport: "web_push", host: "b.example", outcome: "delivered", status: 201, count: 1, ms: 3, attempt: 1 },
      { tenant: "t2", transport: "web_push", host: "a.example", outcome: "delivered", status: 201, count: 1, ms: 4, attempt: 2 },
      { tenant: "t1", transport: "fcm", host: "fcm.example", outcome: "gone", status: 404, count: 1, ms: 6, attempt: 1 },
    ]);
    expect(JSON.stringify(lines)).not.toContain("secret");
  });
});

describe("log helpers", () => {
  it("read LOG_LEVEL, info by default", () => {
    expect(["warn", "ERROR", "", undefined, "debug"].map(levelOf)).toEqual(["warn", "error", "info", "info", "info"]);
  });
  it("write a line at or above the level only", () => {
    expect(logLine("warn", "info", "x", {})).toBeNull();
    expect(logLine("warn", "error", "x", { a: 1 })).toBe('{"level":"error","event":"x","a":1}');
  });
  it("keep a push URL's host alone", () => {
    expect(hostOf("https://push.example.net:8443/secret?x=1")).toBe("push.example.net:8443");
    expect(hostOf("not a url")).toBeNull();
  });
});
