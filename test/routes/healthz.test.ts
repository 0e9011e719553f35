import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { healthOf } from "../../src/routes/healthz";
import { call } from "../helpers";

const healthz = async (over: Record<string, unknown> = {}) => {
  const response = await app.fetch(new Request("https://director.test/healthz"), { ...env, ...over } as Env);
  return { response, text: await response.text() };
};

/** A D1 that refuses every statement, saying something a body must not repeat. */
const brokenDb = {
  prepare: () => {
    const statement = {
      bind: () => statement,
      first: async () => {
        throw new Error("D1_ERROR: internal detail at SELECT");
      },
    };
    return statement;
  },
};

const secretsIn = (text: string) =>
  [env.ADMIN_TOKEN, env.VAPID_PRIVATE_KEY, env.SECRETS_KEY].filter((secret) => secret !== "" && text.includes(secret));

describe("GET /healthz", () => {
  it("answers 200 ok with every check, not cached", async () => {
    const response = await call("/healthz");
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const body = await response.json<Record<string, any>>();
    expect(body).toMatchObject({
      status: "ok",
      checks: { d1: { ok: true }, bindings: { ok: true, missing: [] }, secrets: { ok: true } },
    });
    expect(body.checks.d1.ms).toBeTypeOf("number");
    expect(secretsIn(JSON.stringify(body))).toEqual([]);
  });

  it("answers 503 when D1 fails, saying so in a sentence without the driver's message", async () => {
    const { response, text } = await healthz({ DB: brokenDb });
    expect(response.status).toBe(503);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const body = JSON.parse(text);
    expect(body.status).toBe("fail");
    expect(body.checks.d1).toMatchObject({ ok: false, error: expect.stringContaining("D1") });
    expect(text).not.toContain("internal detail");
  });

  it("answers 503 when a binding is missing, naming it", async () => {
    const { response, text } = await healthz({ FANOUT: undefined });
    expect(response.status).toBe(503);
    const body = JSON.parse(text);
    expect(body.checks.bindings).toEqual({ ok: false, missing: ["FANOUT"], error: "bindings missing: FANOUT" });
    expect(body.checks.d1.ok).toBe(true);
  });

  it("answers 503 without ADMIN_TOKEN, or without a VAPID key, never showing a secret", async () => {
    const noAdmin = await healthz({ ADMIN_TOKEN: "" });
    expect(noAdmin.response.status).toBe(503);
    expect(JSON.parse(noAdmin.text).checks.secrets).toEqual({ ok: false, error: "ADMIN_TOKEN is not set" });
    expect(secretsIn(noAdmin.text)).toEqual([]);

    const noVapid = await healthz({ VAPID_PUBLIC_KEY: "", VAPID_PRIVATE_KEY: "" });
    expect(noVapid.response.status).toBe(503);
    expect(JSON.parse(noVapid.text)).toMatchObject({ status: "fail", checks: { secrets: { ok: false, error: expect.stringContaining("VAPID") }, d1: { ok: true } } });
    expect(secretsIn(noVapid.text)).toEqual([]);
  });
});

describe("healthOf", () => {
  const ok = { d1: { ok: true as const, ms: 1 }, bindings: { ok: true as const, missing: [] }, secrets: { ok: true as const } };
  it("is ok only when every check is", () => {
    expect(healthOf(ok)).toMatchObject({ status: 200, body: { status: "ok" } });
    expect(healthOf({ ...ok, secrets: { ok: false, error: "x" } })).toMatchObject({ status: 503, body: { status: "fail" } });
    expect(healthOf({ ...ok, d1: { ok: false, ms: 2000, error: "slow" } }).status).toBe(503);
  });
});
