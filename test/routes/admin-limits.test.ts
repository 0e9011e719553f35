// `GET/PUT /v1/admin/tenants/{id}/limits` (issue 12): a tenant's five limits, the defaults from
// [vars], and what the tenant uses now.
import { leaseSize } from "../../src/limits/bucket";
import { describe, expect, it } from "vitest";
import { ADMIN, bearer, call, createTenant, webPushBody, type TestTenant } from "../helpers";

/** The defaults as wrangler.toml [vars] sets them. */
const DEFAULTS = {
  registrations: 100_000,
  registrations_per_user: 1_000,
  notify_per_minute: 6_000,
  sockets: 10_000,
  sockets_per_user: 100,
};

const SET = { registrations: 50, registrations_per_user: 5, notify_per_minute: 30, sockets: 20, sockets_per_user: 2 };

const UNKNOWN = "0123456789abcdef01234567";

interface LimitsBody {
  tenant_id: string;
  limits: typeof DEFAULTS;
  defaults: typeof DEFAULTS;
  usage: { registrations: number; sockets: number; notify_per_minute: number };
}

const path = (id: string) => `/v1/admin/tenants/${id}/limits`;

const getLimits = (id: string, headers: HeadersInit = ADMIN) => call(path(id), { headers });

const putLimits = (id: string, json: unknown, headers: HeadersInit = ADMIN) => call(path(id), { method: "PUT", headers, json });

async function limitsOf(tenant: TestTenant): Promise<LimitsBody> {
  const response = await getLimits(tenant.id);
  expect(response.status).toBe(200);
  return response.json();
}

const notify = (tenant: TestTenant, topic = "t") => call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: { topic } });

describe("tenant limits", () => {
  it("refuses calls without the admin token, or with a wrong one", async () => {
    const tenant = await createTenant();
    for (const headers of [{}, bearer("test-admin-tokeN"), bearer(tenant.notify_token)]) {
      const get = await getLimits(tenant.id, headers);
      expect(get.status).toBe(401);
      expect(await get.json()).toMatchObject({ error: { code: "unauthorized" } });
      expect((await putLimits(tenant.id, SET, headers)).status).toBe(401);
    }
    // the refused PUT set nothing
    expect((await limitsOf(tenant)).limits).toEqual(DEFAULTS);
  });

  it("answers 404 for an unknown tenant, GET and PUT (with a valid body)", async () => {
    const notFound = { error: { code: "not_found", message: "tenant not found" } };
    for (const id of [UNKNOWN, "nope"]) {
      const get = await getLimits(id);
      expect(get.status).toBe(404);
      expect(await get.json()).toEqual(notFound);
      const put = await putLimits(id, SET);
      expect(put.status).toBe(404);
      expect(await put.json()).toEqual(notFound);
    }
  });

  it("shows an untouched tenant the defaults from [vars], and nothing used", async () => {
    const tenant = await createTenant();
    expect(await limitsOf(tenant)).toEqual({
      tenant_id: tenant.id,
      limits: DEFAULTS,
      defaults: DEFAULTS,
      usage: { registrations: 0, sockets: 0, notify_per_minute: 0 },
    });
  });

  it("sets all five, answers with the GET body, and null brings a default back", async () => {
    const tenant = await createTenant();
    const put = await putLimits(tenant.id, SET);
    expect(put.status).toBe(200);
    const body = await put.json<LimitsBody>();
    expect(body).toEqual({ tenant_id: tenant.id, limits: SET, defaults: DEFAULTS, usage: { registrations: 0, sockets: 0, notify_per_minute: 0 } });
    expect(await limitsOf(tenant)).toEqual(body);

    const again = await putLimits(tenant.id, { ...SET, registrations: null, sockets_per_user: null });
    expect(again.status).toBe(200);
    expect((await again.json<LimitsBody>()).limits).toEqual({ ...SET, registrations: DEFAULTS.registrations, sockets_per_user: DEFAULTS.sockets_per_user });
    expect((await limitsOf(tenant)).limits).toEqual({ ...SET, registrations: DEFAULTS.registrations, sockets_per_user: DEFAULTS.sockets_per_user });

    const all = await putLimits(tenant.id, { registrations: null, registrations_per_user: null, notify_per_minute: null, sockets: null, sockets_per_user: null });
    expect(all.status).toBe(200);
    expect((await limitsOf(tenant)).limits).toEqual(DEFAULTS);
  });

  it("takes the bounds: 0 (notify_per_minute 1) up to 1,000,000,000", async () => {
    const tenant = await createTenant();
    const low = { registrations: 0, registrations_per_user: 0, notify_per_minute: 1, sockets: 0, sockets_per_user: 0 };
    expect((await putLimits(tenant.id, low)).status).toBe(200);
    expect((await limitsOf(tenant)).limits).toEqual(low);
    const high = { registrations: 1e9, registrations_per_user: 1e9, notify_per_minute: 1e9, sockets: 1e9, sockets_per_user: 1e9 };
    expect((await putLimits(tenant.id, high)).status).toBe(200);
    expect((await limitsOf(tenant)).limits).toEqual(high);
  });

  it("refuses a bad body with 400 naming the field, and changes nothing", async () => {
    const tenant = await createTenant();
    expect((await putLimits(tenant.id, SET)).status).toBe(200);
    const { sockets_per_user: _, ...missing } = SET;
    const cases: [string, unknown, string][] = [
      ["a missing key", missing, "sockets_per_user"],
      ["an unknown key", { ...SET, notifies: 5 }, "notifies"],
      ["a string", { ...SET, registrations: "5" }, "registrations"],
      ["a fraction", { ...SET, registrations_per_user: 1.5 }, "registrations_per_user"],
      ["a negative", { ...SET, sockets: -1 }, "sockets"],
      ["notify_per_minute 0", { ...SET, notify_per_minute: 0 }, "notify_per_minute"],
      ["more than 1,000,000,000", { ...SET, registrations: 1_000_000_001 }, "registrations"],
      ["not an object (an array)", [SET], "object"],
      ["not an object (a number)", 5, "object"],
      ["null", null, "object"],
    ];
    for (const [what, body, named] of cases) {
      const response = await putLimits(tenant.id, body);
      expect(response.status, what).toBe(400);
      const { error } = await response.json<{ error: { code: string; message: string } }>();
      expect(error.code, what).toBe("invalid_request");
      expect(error.message, what).toContain(named);
    }
    // an empty body is refused before any field is read, as every JSON route does (src/validation.ts readJson)
    const empty = await call(path(tenant.id), { method: "PUT", headers: { ...ADMIN, "Content-Type": "application/json" }, body: "" });
    expect(empty.status).toBe(400);
    expect(await empty.json()).toMatchObject({ error: { code: "invalid_json" } });

    expect((await limitsOf(tenant)).limits).toEqual(SET);
  });

  it("counts live registrations", async () => {
    const tenant = await createTenant();
    for (let i = 0; i < 2; i++) {
      const response = await call("/v1/subscriptions", { method: "POST", headers: bearer(tenant.notify_token), json: await webPushBody() });
      expect(response.status).toBe(201);
    }
    expect((await limitsOf(tenant)).usage).toEqual({ registrations: 2, sockets: 0, notify_per_minute: 0 });
  });

  it("shows the notify bucket's level", async () => {
    const tenant = await createTenant();
    expect((await putLimits(tenant.id, { ...SET, notify_per_minute: 30 })).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await notify(tenant)).status).toBe(202);
    // 5 counted, and the lease this isolate holds (leaseSize(30) = 1), less what drained meanwhile (0.5 per second)
    const { notify_per_minute } = (await limitsOf(tenant)).usage;
    expect(notify_per_minute).toBeGreaterThanOrEqual(4);
    expect(notify_per_minute).toBeLessThanOrEqual(5 + leaseSize(30));
  });
});
