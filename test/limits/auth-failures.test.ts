// Failed authentication per client IP (issue 12): AUTH_FAILURES_PER_MINUTE is 20 in these tests
// (vitest.config.ts). The tests share one isolate and one namespace of objects: an IP per test.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authFailuresPerMinute, countFailure, retryAfterSeconds, WINDOW_MS } from "../../src/limits/auth-failures";
import { ADMIN, bearer, call, createTenant, grant, type TestTenant } from "../helpers";

const LIMIT = 20;

const from = (ip: string, headers: Record<string, string> = {}) => ({ "CF-Connecting-IP": ip, ...headers });

const notify = (ip: string, headers: Record<string, string> = {}) =>
  call("/v1/notify", { method: "POST", headers: from(ip, headers), json: { topic: "cal" } });

const wrongNotifyToken = (tenant: TestTenant) => `pdn_${tenant.id}_${"A".repeat(43)}`;

/** Sends `n` requests one after another (`send(i)`); the statuses, in order. */
async function statuses(n: number, send: (i: number) => Promise<Response>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const response = await send(i);
    await response.body?.cancel();
    out.push(response.status);
  }
  return out;
}

async function expectRateLimited(response: Response) {
  expect(response.status).toBe(429);
  const retryAfter = Number(response.headers.get("Retry-After"));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
  expect(response.headers.get("WWW-Authenticate")).toBeNull();
  const body = (await response.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe("rate_limited");
  expect(body.error.message).toContain("AUTH_FAILURES_PER_MINUTE");
}

describe("countFailure", () => {
  const T = 1_000_000;

  it("opens a window at the first failure and blocks past the limit until the window ends", () => {
    let window = countFailure(undefined, T, 2);
    expect(window).toEqual({ window: { start: T, count: 1 }, blockedUntil: null });
    window = countFailure(window.window, T + 10_000, 2);
    expect(window).toEqual({ window: { start: T, count: 2 }, blockedUntil: null });
    window = countFailure(window.window, T + 59_999, 2);
    expect(window).toEqual({ window: { start: T, count: 3 }, blockedUntil: T + WINDOW_MS });
  });

  it("starts a new window once the last has ended", () => {
    expect(countFailure({ start: T, count: 50 }, T + WINDOW_MS, 2)).toEqual({ window: { start: T + WINDOW_MS, count: 1 }, blockedUntil: null });
  });

  it("says Retry-After in whole seconds, at least 1", () => {
    expect(retryAfterSeconds(T + 59_001, T)).toBe(60);
    expect(retryAfterSeconds(T + 1, T)).toBe(1);
    expect(retryAfterSeconds(T, T)).toBe(1);
  });

  it("reads AUTH_FAILURES_PER_MINUTE as an integer of at least 1, else 300", () => {
    expect(authFailuresPerMinute({ AUTH_FAILURES_PER_MINUTE: "20" })).toBe(20);
    for (const value of ["", "0", "-1", "1.5", "many"]) expect(authFailuresPerMinute({ AUTH_FAILURES_PER_MINUTE: value })).toBe(300);
  });
});

describe("the AuthFailures object", () => {
  it("counts one IP's failures and forgets them when the window's alarm runs", async () => {
    const stub = env.AUTH_FAILURES.get(env.AUTH_FAILURES.idFromName("198.51.100.1"));
    expect(await stub.fail(2)).toBeNull();
    expect(await stub.fail(2)).toBeNull();
    const until = await stub.fail(2);
    expect(until).toBeGreaterThan(Date.now());
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.fail(2)).toBeNull();
  });
});

describe("failed authentication per client IP", () => {
  it("answers 429 past the limit, then refuses even a good token from that IP, while another IP still gets 401 and 202", async () => {
    const tenant = await createTenant();
    const bad = bearer(wrongNotifyToken(tenant));
    const refused = await statuses(LIMIT, () => notify("203.0.113.1", bad));
    expect(refused).toEqual(Array(LIMIT).fill(401));
    await expectRateLimited(await notify("203.0.113.1", bad));
    // the isolate knows the block: refused before the token is looked at
    await expectRateLimited(await notify("203.0.113.1", bearer(tenant.notify_token)));

    const other = await notify("203.0.113.2", bad);
    expect(other.status).toBe(401);
    expect(await other.json()).toMatchObject({ error: { code: "unauthorized", message: "invalid tenant token" } });
    expect((await notify("203.0.113.2", bearer(tenant.notify_token))).status).toBe(202);
  });

  it("counts every refused credential: wrong admin and notify tokens, grants that do not verify or name no tenant", async () => {
    const tenant = await createTenant();
    const ip = "203.0.113.3";
    const forged = await grant(tenant, {}, { secret: "not-the-grant-secret" });
    const stranger = await grant({ id: "0".repeat(24), grant_secret: "whatever" });
    const sends = [
      () => call("/v1/admin/tenants", { headers: from(ip, bearer("not-the-admin-token")) }),
      () => notify(ip, bearer(wrongNotifyToken(tenant))),
      () => call("/v1/subscriptions", { method: "POST", headers: from(ip, bearer(forged)), json: {} }),
      () => call("/v1/subscriptions", { method: "POST", headers: from(ip, bearer(stranger)), json: {} }),
      () => call("/v1/subscriptions", { method: "POST", headers: from(ip, bearer("not.a.jwt")), json: {} }),
    ];
    const codes: string[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const response = await sends[i % sends.length]();
      expect(response.status).toBe(401);
      codes.push(((await response.json()) as { error: { code: string } }).error.code);
    }
    expect(new Set(codes)).toEqual(new Set(["unauthorized", "invalid_grant", "unknown_tenant"]));
    await expectRateLimited(await call("/v1/admin/tenants", { headers: from(ip, bearer("not-the-admin-token")) }));
    // a blocked IP's token in a subprotocol or the query is refused as well
    const socket = { Upgrade: "websocket" };
    await expectRateLimited(await call("/v1/ws?topic=cal", { headers: from(ip, { ...socket, "Sec-WebSocket-Protocol": "webdav-push, bearer.x" }) }));
    await expectRateLimited(await call("/v1/ws?topic=cal&access_token=x", { headers: from(ip, socket) }));
    // a request without a credential is not refused
    expect((await call("/.well-known/webdav-push", { headers: from(ip) })).status).toBe(200);
  });

  it("never counts missing tokens, nor a notify token sent in the query", async () => {
    const tenant = await createTenant();
    const ip = "203.0.113.4";
    const sends = [
      () => notify(ip),
      () => notify(ip, { Authorization: "Basic dXNlcjpwYXNz" }),
      () => notify(ip, { Authorization: "Bearer " }),
      () => call(`/v1/ws?topic=cal&access_token=${tenant.notify_token}`, { headers: from(ip, { Upgrade: "websocket" }) }),
    ];
    const answers = await statuses(60, (i) => sends[i % sends.length]());
    expect(answers).toEqual(Array(60).fill(401));
  });

  it("never counts expired grants whose signature verifies", async () => {
    const tenant = await createTenant();
    const expired = await grant(tenant, {}, { expiresIn: Math.floor(Date.now() / 1000) - 10 });
    for (let i = 0; i < 50; i++) {
      const response = await call("/v1/subscriptions", { method: "POST", headers: from("203.0.113.5", bearer(expired)), json: {} });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: { code: "grant_expired" } });
    }
  });

  it("leaves a disabled tenant's token its 403", async () => {
    const tenant = await createTenant();
    await call(`/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN });
    const answers = await statuses(LIMIT + 5, () => notify("203.0.113.6", bearer(tenant.notify_token)));
    expect(answers).toEqual(Array(LIMIT + 5).fill(403));
  });

  it("limits nothing without CF-Connecting-IP", async () => {
    const tenant = await createTenant();
    const answers = await statuses(LIMIT + 5, () => call("/v1/notify", { method: "POST", headers: bearer(wrongNotifyToken(tenant)), json: { topic: "cal" } }));
    expect(answers).toEqual(Array(LIMIT + 5).fill(401));
  });
});
