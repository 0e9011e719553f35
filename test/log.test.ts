import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { app } from "../src/app";
import { topicHub } from "../src/hub/topic-hub";
import { hostOf, levelOf, logLine } from "../src/log";
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
  it("log one delivery per attempt with the push service's host alone, and one fan-out per job", async () => {
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
      ms: expect.any(Number),
      attempt: 1,
    });
    const path = new URL(subscriber.endpoint).pathname;
    expect(raw.join("\n")).not.toContain(path);
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
