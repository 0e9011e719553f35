import { env } from "cloudflare:workers";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { app } from "../../src/app";
import { keyringOf, newSecretsKey } from "../../src/crypto/sealed";
import { generateVapidKeys } from "../../src/crypto/vapid";
import { countUnsealed } from "../../src/store/sealed-columns";
import { NEWEST_TENANTS, NEWEST_TENANTS_AFTER } from "../../src/store/tenants";
import { insertPendingVapidKey } from "../../src/store/vapid-keys";
import { ADMIN, bearer, call, createTenant, grant, resealAll, webPushBody } from "../helpers";

const notifyWith = (token: string) => call("/v1/notify", { method: "POST", headers: bearer(token), json: { topic: "t" } });

describe("admin API", () => {
  it("refuses calls without the admin token, or with a wrong one", async () => {
    const none = await call("/v1/admin/tenants");
    expect(none.status).toBe(401);
    expect(none.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    expect(await none.json()).toMatchObject({ error: { code: "unauthorized" } });
    expect((await call("/v1/admin/tenants", { headers: bearer("test-admin-tokeN") })).status).toBe(401);
    expect((await call("/v1/admin/tenants", { headers: { Authorization: "Basic dGVzdA==" } })).status).toBe(401);
  });

  it("creates a tenant, shows its secrets once and stores only the token's hash", async () => {
    const response = await call("/v1/admin/tenants", { method: "POST", headers: ADMIN, json: { name: " Radicale " } });
    expect(response.status).toBe(201);
    const tenant = await response.json<Record<string, string>>();
    expect(tenant.name).toBe("Radicale");
    expect(tenant.id).toMatch(/^[0-9a-f]{24}$/);
    expect(response.headers.get("Location")).toBe(`https://director.test/v1/admin/tenants/${tenant.id}`);
    // 32 random bytes each: 256 bits, encoded as 43 base64url characters
    expect(tenant.notify_token).toMatch(new RegExp(`^pdn_${tenant.id}_[A-Za-z0-9_-]{43}$`));
    expect(tenant.grant_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const row = await env.DB.prepare("SELECT * FROM tenants WHERE id = ?").bind(tenant.id).first<Record<string, string>>();
    expect(row!.notify_token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(tenant.notify_token);

    const shown = await (await call(`/v1/admin/tenants/${tenant.id}`, { headers: ADMIN })).json<Record<string, unknown>>();
    expect(shown).toMatchObject({ id: tenant.id, name: "Radicale", disabled: false, counts: { subscriptions: 0, registrations: 0 } });
    expect(JSON.stringify(shown)).not.toContain(tenant.notify_token);
    expect(JSON.stringify(shown)).not.toContain(tenant.grant_secret);
  });

  it("gives every tenant distinct secrets", async () => {
    const [a, b] = await Promise.all([createTenant("a"), createTenant("b")]);
    expect(a.id).not.toBe(b.id);
    expect(a.notify_token).not.toBe(b.notify_token);
    expect(a.grant_secret).not.toBe(b.grant_secret);
  });

  it("lists tenants page by page", async () => {
    const created = await Promise.all([createTenant("one"), createTenant("two"), createTenant("three")]);
    const seen: string[] = [];
    let cursor: string | null = "";
    let pages = 0;
    while (cursor !== null) {
      const response = await call(`/v1/admin/tenants?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { headers: ADMIN });
      const page = await response.json<{ tenants: { id: string }[]; next_cursor: string | null }>();
      expect(page.tenants.length).toBeLessThanOrEqual(2);
      seen.push(...page.tenants.map((t) => t.id));
      cursor = page.next_cursor;
      pages++;
    }
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...seen].sort());
    for (const tenant of created) expect(seen).toContain(tenant.id);
    expect((await call("/v1/admin/tenants?limit=0", { headers: ADMIN })).status).toBe(400);
    expect((await call("/v1/admin/tenants?cursor=x", { headers: ADMIN })).status).toBe(400);
  });

  it("answers 404 for an unknown tenant", async () => {
    for (const id of ["0123456789abcdef01234567", "nope"]) {
      const response = await call(`/v1/admin/tenants/${id}`, { headers: ADMIN });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: { code: "not_found", message: "tenant not found" } });
    }
    expect((await call("/v1/admin/tenants/0123456789abcdef01234567/rotate", { method: "POST", headers: ADMIN })).status).toBe(404);
  });

  it("rejects bad tenant bodies with 400/415", async () => {
    const cases: [RequestInit, number, string][] = [
      [{ body: "{", headers: { "Content-Type": "application/json" } }, 400, "invalid_json"],
      [{ body: "", headers: { "Content-Type": "application/json" } }, 400, "invalid_json"],
      [{ body: JSON.stringify({ name: 7 }), headers: { "Content-Type": "application/json" } }, 400, "invalid_request"],
      [{ body: JSON.stringify({ name: "   " }), headers: { "Content-Type": "application/json" } }, 400, "invalid_request"],
      [{ body: JSON.stringify([]), headers: { "Content-Type": "application/json" } }, 400, "invalid_request"],
      [{ body: "name=x", headers: { "Content-Type": "application/x-www-form-urlencoded" } }, 415, "unsupported_media_type"],
    ];
    for (const [init, status, code] of cases) {
      const response = await call("/v1/admin/tenants", { ...init, method: "POST", headers: { ...ADMIN, ...init.headers } });
      expect(response.status, JSON.stringify(init)).toBe(status);
      const body = await response.json<{ error: { code: string; message: string } }>();
      expect(body.error.code).toBe(code);
      expect(body.error.message.length).toBeGreaterThan(5);
    }
  });

  it("rotates the notify token and grant secret: old ones stop working", async () => {
    const tenant = await createTenant();
    expect((await notifyWith(tenant.notify_token)).status).toBe(202);
    const rotated = await (await call(`/v1/admin/tenants/${tenant.id}/rotate`, { method: "POST", headers: ADMIN })).json<Record<string, string>>();
    expect(rotated.notify_token).not.toBe(tenant.notify_token);
    expect(rotated.grant_secret).not.toBe(tenant.grant_secret);
    expect((await notifyWith(tenant.notify_token)).status).toBe(401);
    expect((await notifyWith(rotated.notify_token)).status).toBe(202);
  });

  it("rotates only what it is asked to", async () => {
    const tenant = await createTenant();
    const response = await call(`/v1/admin/tenants/${tenant.id}/rotate`, { method: "POST", headers: ADMIN, json: { notify_token: false } });
    const rotated = await response.json<Record<string, string | null>>();
    expect(rotated.notify_token).toBeNull();
    expect(rotated.grant_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await notifyWith(tenant.notify_token)).status).toBe(202);
    const bad = await call(`/v1/admin/tenants/${tenant.id}/rotate`, { method: "POST", headers: ADMIN, json: { notify_token: "yes" } });
    expect(bad.status).toBe(400);
  });

  it("disables and re-enables a tenant", async () => {
    const tenant = await createTenant();
    const disabled = await (await call(`/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN })).json();
    expect(disabled).toMatchObject({ id: tenant.id, disabled: true });
    const refused = await notifyWith(tenant.notify_token);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: "tenant_disabled" } });
    await call(`/v1/admin/tenants/${tenant.id}/enable`, { method: "POST", headers: ADMIN });
    expect((await notifyWith(tenant.notify_token)).status).toBe(202);
  });
});

describe("grant keys (ES256 / EdDSA client grants)", () => {
  const publicJwk = async (alg: "ES256" | "EdDSA", kid: string) => {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    return { jwk: { ...(await exportJWK(publicKey)), kid }, privateKey };
  };
  const put = (id: string, json: unknown) => call(`/v1/admin/tenants/${id}/grant-keys`, { method: "PUT", headers: ADMIN, json });
  const signed = (tenant: { id: string }, alg: "ES256" | "EdDSA", kid: string, key: CryptoKey, sub = "alice") =>
    new SignJWT({ topics: ["topic-1"] }).setProtectedHeader({ alg, kid }).setIssuer(tenant.id).setSubject(sub).setIssuedAt().setExpirationTime("10m").sign(key);
  const subscribe = async (token: string) => call("/v1/subscriptions", { method: "POST", headers: bearer(token), json: await webPushBody() });

  it("replaces the set, shows kid and alg only, and verifies grants signed with the registered keys", async () => {
    const tenant = await createTenant();
    const es = await publicJwk("ES256", "es-1");
    const ed = await publicJwk("EdDSA", "ed.1");
    const response = await put(tenant.id, { keys: [es.jwk, ed.jwk] });
    expect(response.status).toBe(200);
    const expected = { id: tenant.id, grant_keys: [{ kid: "es-1", alg: "ES256" }, { kid: "ed.1", alg: "EdDSA" }] };
    expect(await response.json()).toMatchObject(expected);
    expect(await (await call(`/v1/admin/tenants/${tenant.id}/grant-keys`, { headers: ADMIN })).json()).toEqual(expected);
    expect(await (await call(`/v1/admin/tenants/${tenant.id}`, { headers: ADMIN })).json()).toMatchObject({ grant_keys: expected.grant_keys });

    expect((await subscribe(await signed(tenant, "ES256", "es-1", es.privateKey))).status).toBe(201);
    expect((await subscribe(await signed(tenant, "EdDSA", "ed.1", ed.privateKey))).status).toBe(201);
    // a kid of the other type, an unknown kid, a key not registered: 401
    expect((await subscribe(await signed(tenant, "EdDSA", "es-1", ed.privateKey))).status).toBe(401);
    expect((await subscribe(await signed(tenant, "ES256", "nope", es.privateKey))).status).toBe(401);
    const stranger = await publicJwk("ES256", "es-1");
    expect((await subscribe(await signed(tenant, "ES256", "es-1", stranger.privateKey))).status).toBe(401);

    // [] clears: the grants stop working
    expect(await (await put(tenant.id, { keys: [] })).json()).toMatchObject({ grant_keys: [] });
    expect((await subscribe(await signed(tenant, "ES256", "es-1", es.privateKey))).status).toBe(401);
  });

  it("refuses a bad key set with 400 naming the field, and changes nothing", async () => {
    const tenant = await createTenant();
    const es = await publicJwk("ES256", "kept");
    await put(tenant.id, { keys: [es.jwk] });
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const bodies: [unknown, string][] = [
      [{ keys: [{ ...(await exportJWK(privateKey)), kid: "p" }] }, "keys[0]"],
      [{ keys: [{ ...es.jwk, kid: "bad kid" }] }, "kid"],
      [{ keys: [es.jwk, es.jwk] }, "kid"],
      [{ keys: [{ ...es.jwk, alg: "RS256" }] }, "alg"],
      [{ keys: [{ ...es.jwk, use: "enc" }] }, "use"],
      [{ keys: [{ kty: "RSA", kid: "r", n: "AQAB", e: "AQAB" }] }, "keys[0]"],
      [{ keys: Array.from({ length: 11 }, (_, i) => ({ ...es.jwk, kid: `k${i}` })) }, "keys"],
      [{ keys: "none" }, "keys"],
    ];
    for (const [body, field] of bodies) {
      const response = await put(tenant.id, body);
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect((await response.json<{ error: { message: string } }>()).error.message).toContain(field);
    }
    expect(await (await call(`/v1/admin/tenants/${tenant.id}/grant-keys`, { headers: ADMIN })).json()).toMatchObject({ grant_keys: [{ kid: "kept" }] });
    expect((await put("0123456789abcdef01234567", { keys: [] })).status).toBe(404);
    expect((await call(`/v1/admin/tenants/${tenant.id}/grant-keys`, { method: "PUT", json: { keys: [] } })).status).toBe(401);
  });
});

describe("tenants newest first (order=newest)", () => {
  type Page = { tenants: { id: string; created_at: number }[]; next_cursor: string | null };
  const list = (query: string) => call(`/v1/admin/tenants?${query}`, { headers: ADMIN });

  /** Tenants created "later" than any other in the file, three of them in one second. */
  beforeAll(async () => {
    const rows = [
      { id: "fffffffffffffffffffff001", created_at: 4_000_000_002 },
      { id: "fffffffffffffffffffff00a", created_at: 4_000_000_001 },
      { id: "fffffffffffffffffffff00b", created_at: 4_000_000_001 },
      { id: "fffffffffffffffffffff002", created_at: 4_000_000_001 },
      { id: "fffffffffffffffffffff003", created_at: 4_000_000_000 },
    ];
    await env.DB.batch(
      rows.map((row) =>
        env.DB.prepare("INSERT INTO tenants (id, name, notify_token_hash, grant_secret, created_at, updated_at) VALUES (?, 'n', 'h', 's', ?, ?)").bind(
          row.id,
          row.created_at,
          row.created_at,
        ),
      ),
    );
  });

  it("walks newest first across pages, ties on created_at broken by id", async () => {
    await createTenant("older");
    const seen: Page["tenants"] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await list(`order=newest&limit=2${cursor === null ? "" : `&cursor=${cursor}`}`);
      expect(response.status).toBe(200);
      const page = await response.json<Page>();
      expect(page.tenants.length).toBeLessThanOrEqual(2);
      seen.push(...page.tenants);
      cursor = page.next_cursor;
      // opaque, and never a tenant id an order=id page would take
      if (cursor !== null) expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      pages++;
    } while (cursor !== null);
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(seen.slice(0, 5).map((t) => t.id)).toEqual([
      "fffffffffffffffffffff001",
      "fffffffffffffffffffff00b",
      "fffffffffffffffffffff00a",
      "fffffffffffffffffffff002",
      "fffffffffffffffffffff003",
    ]);
    expect(new Set(seen.map((t) => t.id)).size).toBe(seen.length);
    const keys = seen.map((t) => [t.created_at, t.id] as const);
    const sorted = [...keys].sort((a, b) => b[0] - a[0] || (b[1] < a[1] ? -1 : b[1] > a[1] ? 1 : 0));
    expect(keys).toEqual(sorted);
  });

  it("keeps order=id the default, its cursor a tenant id", async () => {
    const page = await (await list("limit=1")).json<Page>();
    const byId = await (await list("order=id&limit=1")).json<Page>();
    expect(page).toEqual(byId);
    expect(page.next_cursor).toBe(page.tenants[0].id);
  });

  it("answers 400 for an unknown order, a cursor of the other order, or garbage", async () => {
    const newest = (await (await list("order=newest&limit=1")).json<Page>()).next_cursor!;
    const byId = (await (await list("order=id&limit=1")).json<Page>()).next_cursor!;
    for (const query of [
      "order=oldest",
      "order=",
      `order=id&cursor=${newest}`,
      `cursor=${newest}`,
      `order=newest&cursor=${byId}`,
      "order=newest&cursor=x",
      `order=newest&cursor=${btoa("12:nope").replace(/=+$/, "")}`,
      `order=newest&cursor=${btoa("-1:fffffffffffffffffffff001").replace(/=+$/, "")}`,
    ]) {
      const response = await list(query);
      expect(response.status, query).toBe(400);
      expect(await response.json(), query).toMatchObject({ error: { code: "invalid_request" } });
    }
    expect((await list(`order=newest&cursor=${newest}`)).status).toBe(200);
  });

  it("reads newest-first pages through tenants_by_created, sorting nothing", async () => {
    for (const [sql, params] of [
      [NEWEST_TENANTS, []],
      [NEWEST_TENANTS_AFTER, [4_000_000_001, "fffffffffffffffffffff00a"]],
    ] as const) {
      const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql} LIMIT 2`)
        .bind(...params)
        .all<{ detail: string }>();
      const plan = results.map((row) => row.detail).join("\n");
      expect(plan).toMatch(/tenants_by_created/);
      expect(plan).not.toMatch(/TEMP B-TREE/);
    }
  });
});

describe("secrets at rest", () => {
  it("keeps no secret in clear in D1: grant secrets, Web Push auth, FCM tokens, rotated VAPID keys", async () => {
    const tenant = await createTenant();
    const body = await webPushBody();
    const fcmToken = `fcm-${crypto.randomUUID()}`;
    expect((await call("/v1/subscriptions", { method: "POST", headers: bearer(tenant.notify_token), json: body })).status).toBe(201);
    const fcm = { topic: "topic-1", push_services: { fcm: { registration_token: fcmToken } } };
    expect((await call("/v1/subscriptions", { method: "POST", headers: bearer(tenant.notify_token), json: fcm })).status).toBe(201);
    const vapid = await generateVapidKeys();
    // a pending key is stored the moment it is made; the rotation itself is another test's
    await insertPendingVapidKey(env.DB, await keyringOf(env), vapid, 0);
    const dump = JSON.stringify(
      await Promise.all(["tenants", "subscriptions", "registrations", "vapid_keys"].map(async (t) => (await env.DB.prepare(`SELECT * FROM ${t}`).all()).results)),
    );
    for (const secret of [tenant.grant_secret, tenant.notify_token, body.push_services.web_push.keys.auth, fcmToken, vapid.privateKey]) {
      expect(dump).not.toContain(secret);
    }
    await env.DB.prepare("DELETE FROM vapid_keys WHERE public_key = ?").bind(vapid.publicKey).run();
  });

  it("tells the key and what is pending, and re-seals through the queue", async () => {
    const status = await (await call("/v1/admin/secrets", { headers: ADMIN })).json<{ key_id: string; previous_key_id: null; pending: number }>();
    const keyring = await keyringOf(env);
    expect(status).toMatchObject({ key_id: keyring.current.id, previous_key_id: null });
    const tenant = await createTenant();
    // a row from before secrets were sealed
    await env.DB.prepare("UPDATE tenants SET grant_secret = ? WHERE id = ?").bind(tenant.grant_secret, tenant.id).run();
    expect((await call("/v1/subscriptions", { method: "POST", headers: bearer(await grant(tenant)), json: await webPushBody() })).status).toBe(503);
    const rotate = await call("/v1/admin/secrets/rotate", { method: "POST", headers: ADMIN });
    expect(rotate.status).toBe(202);
    expect(await rotate.json()).toEqual({ key_id: keyring.current.id, pending: status.pending + 1 });
    await vi.waitFor(async () => expect(await (await call("/v1/admin/secrets", { headers: ADMIN })).json()).toMatchObject({ pending: 0 }), { timeout: 10_000, interval: 100 });
    expect((await call("/v1/subscriptions", { method: "POST", headers: bearer(await grant(tenant)), json: await webPushBody() })).status).toBe(201);
  });

  it("rotates SECRETS_KEY: SECRETS_KEY_PREVIOUS opens until everything is re-sealed; no key answers 503", async () => {
    const tenant = await createTenant();
    const oldKey = env.SECRETS_KEY;
    const newKey = newSecretsKey();
    const as = (vars: Partial<Env>) => (path: string, init: RequestInit = {}) =>
      app.fetch(new Request(`https://director.test${path}`, init), { ...env, ...vars });
    const subscribeWith = async (fetcher: ReturnType<typeof as>) =>
      fetcher("/v1/subscriptions", {
        method: "POST",
        headers: { ...bearer(await grant(tenant)), "Content-Type": "application/json" },
        body: JSON.stringify(await webPushBody()),
      });
    const both = as({ SECRETS_KEY: newKey, SECRETS_KEY_PREVIOUS: oldKey });
    expect((await subscribeWith(both)).status).toBe(201);
    const newOnly = as({ SECRETS_KEY: newKey, SECRETS_KEY_PREVIOUS: "" });
    const refused = await subscribeWith(newOnly);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: "secret_undecryptable" } });
    const keyring = await keyringOf({ SECRETS_KEY: newKey, SECRETS_KEY_PREVIOUS: oldKey });
    await resealAll(env.DB, keyring);
    expect(await countUnsealed(env.DB, keyring.current.id)).toBe(0);
    expect((await subscribeWith(newOnly)).status).toBe(201);
    const missing = await subscribeWith(as({ SECRETS_KEY: "" }));
    expect(missing.status).toBe(503);
    expect(await missing.json()).toMatchObject({ error: { code: "secrets_key_missing" } });
    // back to the configured key for the other tests
    const back = await keyringOf({ SECRETS_KEY: oldKey, SECRETS_KEY_PREVIOUS: newKey });
    await resealAll(env.DB, back);
  });
});
