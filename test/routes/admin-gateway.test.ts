import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { keyringOf, newSecretsKey } from "../../src/crypto/sealed";
import { resealPage } from "../../src/store/sealed-columns";
import { getGateway, openPollPassword, openTopicKey } from "../../src/store/gateways";
import { ADMIN, call, createTenant, ORIGIN } from "../helpers";

const local = { ...env, ALLOW_INSECURE_PUSH_RESOURCES: "true" } as Env;
const gatewayOf = (id: string) => `/v1/admin/tenants/${id}/gateway`;

/** As the operator calls it, with insecure (local) origins allowed, like `npm start`. */
const put = (id: string, json: unknown, over: Partial<Env> = {}) =>
  app.fetch(new Request(`${ORIGIN}${gatewayOf(id)}`, { method: "PUT", headers: { ...ADMIN, "Content-Type": "application/json" }, body: JSON.stringify(json) }), {
    ...local,
    ...over,
  } as Env);

describe("PUT /v1/admin/tenants/{id}/gateway", () => {
  it("creates (201), then updates (200), keeping the topic key; never shows the password", async () => {
    const tenant = await createTenant();
    const created = await put(tenant.id, { origin: `${env.TEST_DAV_ORIGIN}/base`, poll_seconds: 2, poll_auth: { username: "reader", password: "s3cret-pw" } });
    expect(created.status).toBe(201);
    const body = await created.json<Record<string, unknown>>();
    expect(body).toEqual({
      tenant_id: tenant.id,
      origin: `${env.TEST_DAV_ORIGIN}/base/`,
      // raised to GATEWAY_MIN_POLL_SECONDS (5)
      poll_seconds: 5,
      poll_auth: { username: "reader" },
      dav_url: `${ORIGIN}/dav/${tenant.id}/`,
      created_at: expect.any(Number),
      updated_at: expect.any(Number),
    });
    const row = (await getGateway(env.DB, tenant.id))!;
    const keyring = await keyringOf(env);
    expect(row.poll_password).not.toContain("s3cret-pw");
    expect(await openPollPassword(keyring, row)).toBe("s3cret-pw");
    const topicKey = await openTopicKey(keyring, row);

    const updated = await put(tenant.id, { origin: `${env.TEST_DAV_ORIGIN}/other/`, poll_seconds: 0 });
    expect(updated.status).toBe(200);
    expect(await updated.json()).toMatchObject({ origin: `${env.TEST_DAV_ORIGIN}/other/`, poll_seconds: 0, poll_auth: null });
    const after = (await getGateway(env.DB, tenant.id))!;
    expect(await openTopicKey(keyring, after)).toBe(topicKey);
    expect(after.poll_password).toBeNull();

    const read = await app.fetch(new Request(`${ORIGIN}${gatewayOf(tenant.id)}`, { headers: ADMIN }), local);
    expect(await read.json()).toMatchObject({ origin: `${env.TEST_DAV_ORIGIN}/other/`, poll_seconds: 0, last_poll_error: null });
    expect(JSON.stringify(await (await put(tenant.id, { origin: `${env.TEST_DAV_ORIGIN}/base/`, poll_auth: { username: "r", password: "pw-2" } })).json())).not.toContain("pw-2");
  });

  it("answers 400 naming the field, and a refused PUT changes nothing", async () => {
    const tenant = await createTenant();
    expect((await put(tenant.id, { origin: `${env.TEST_DAV_ORIGIN}/base/`, poll_seconds: 30 })).status).toBe(201);
    const before = await getGateway(env.DB, tenant.id);
    const cases: [unknown, number, string, string][] = [
      [{ origin: "https://127.0.0.1/" }, 400, "invalid_origin", "origin: host 127.0.0.1 is not a public host"],
      [{ origin: "https://169.254.169.254/latest/" }, 400, "invalid_origin", "origin: host 169.254.169.254 is not a public host"],
      [{ origin: `${ORIGIN}/dav/x/` }, 400, "invalid_origin", "origin: must not be the director itself"],
      [{ origin: "https://dav.example.org/?a=1" }, 400, "invalid_origin", "origin: must not have a query"],
      [{ origin: 42 }, 400, "invalid_request", "origin: must be a string: the WebDAV server's URL"],
      [{}, 400, "invalid_request", "origin: must be a string: the WebDAV server's URL"],
      [{ origin: "https://dav.example.org/", poll_seconds: 3601 }, 400, "invalid_request", "poll_seconds: must be at most 3600"],
      [{ origin: "https://dav.example.org/", poll_seconds: -1 }, 400, "invalid_request", "poll_seconds: must be at least 0"],
      [{ origin: "https://dav.example.org/", poll_seconds: 1.5 }, 400, "invalid_request", "poll_seconds: must be an integer"],
      [{ origin: "https://dav.example.org/", poll_seconds: "60" }, 400, "invalid_request", "poll_seconds: must be an integer"],
      [{ origin: "https://dav.example.org/", poll_auth: { username: "a" } }, 400, "invalid_request", "poll_auth.password: must be a string"],
      [{ origin: "https://dav.example.org/", poll_auth: { username: "a:b", password: "p" } }, 400, "invalid_request", "poll_auth.username: must not contain ':' (RFC 7617 §2)"],
      [{ origin: "https://dav.example.org/", extra: 1 }, 400, "invalid_request", 'body: Unrecognized key: "extra"'],
    ];
    for (const [json, status, code, message] of cases) {
      const response = await put(tenant.id, json, { ALLOW_INSECURE_PUSH_RESOURCES: "false" });
      expect(response.status, JSON.stringify(json)).toBe(status);
      expect(await response.json(), JSON.stringify(json)).toEqual({ error: { code, message } });
    }
    expect(await getGateway(env.DB, tenant.id)).toEqual(before);
  });

  it("is 404 for an unknown tenant, 401 without the admin token", async () => {
    expect((await put("0123456789abcdef01234567", { origin: "https://dav.example.org/" })).status).toBe(404);
    expect((await put("nope", { origin: "https://dav.example.org/" })).status).toBe(404);
    const tenant = await createTenant();
    const anonymous = await call(gatewayOf(tenant.id), { method: "PUT", json: { origin: "https://dav.example.org/" } });
    expect(anonymous.status).toBe(401);
    expect(await getGateway(env.DB, tenant.id)).toBeNull();
  });
});

describe("a gateway's sealed secrets", () => {
  it("re-seal with a new SECRETS_KEY like every other sealed column", async () => {
    const tenant = await createTenant();
    expect((await put(tenant.id, { origin: "https://dav.example.org/", poll_auth: { username: "reader", password: "pw-reseal" } })).status).toBe(201);
    const oldKeyring = await keyringOf(env);
    const topicKey = await openTopicKey(oldKeyring, (await getGateway(env.DB, tenant.id))!);
    const newKeyring = await keyringOf({ SECRETS_KEY: newSecretsKey(), SECRETS_KEY_PREVIOUS: env.SECRETS_KEY });
    for (let after: string | null = ""; after !== null; ) after = (await resealPage(env.DB, newKeyring, "gateways", after)).next;
    const row = (await getGateway(env.DB, tenant.id))!;
    expect(row.topic_key.split(".")[1]).toBe(newKeyring.current.id);
    expect(await openTopicKey(newKeyring, row)).toBe(topicKey);
    expect(await openPollPassword(newKeyring, row)).toBe("pw-reseal");
    // back to the configured key for the other tests
    for (let after: string | null = ""; after !== null; ) after = (await resealPage(env.DB, { current: oldKeyring.current, previous: newKeyring.current }, "gateways", after)).next;
    expect(await openPollPassword(oldKeyring, (await getGateway(env.DB, tenant.id))!)).toBe("pw-reseal");
  });
});

describe("GET and DELETE /v1/admin/tenants/{id}/gateway", () => {
  it("reads it, deletes it (204), then 404 on both and on /dav/{id}/", async () => {
    const tenant = await createTenant();
    expect((await call(gatewayOf(tenant.id), { headers: ADMIN })).status).toBe(404);
    expect((await put(tenant.id, { origin: "https://dav.example.org/" })).status).toBe(201);
    expect((await call(gatewayOf(tenant.id), { headers: ADMIN })).status).toBe(200);
    expect((await call(gatewayOf(tenant.id), { method: "DELETE", headers: ADMIN })).status).toBe(204);
    expect((await call(gatewayOf(tenant.id), { method: "DELETE", headers: ADMIN })).status).toBe(404);
    expect((await call(gatewayOf(tenant.id), { headers: ADMIN })).status).toBe(404);
    const dav = await call(`/dav/${tenant.id}/`, { method: "PROPFIND" });
    expect(dav.status).toBe(404);
    expect(await dav.json()).toMatchObject({ error: { code: "gateway_not_configured" } });
  });
});
