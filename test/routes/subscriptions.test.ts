import { env } from "cloudflare:workers";
import { SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { ADMIN, bearer, call, createTenant, grant, userAgentKeys, webPushBody } from "../helpers";

const DAY = 86_400;
const subscribe = (token: string, json: unknown) => call("/v1/subscriptions", { method: "POST", headers: bearer(token), json });
const errorCode = async (response: Response) => ((await response.json()) as { error: { code: string } }).error.code;
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe("POST /v1/subscriptions", () => {
  it("registers a Web Push subscription with the tenant token: 201, Location, Expires, JSON", async () => {
    const tenant = await createTenant();
    const body = await webPushBody("calendar-7");
    const response = await subscribe(tenant.notify_token, body);
    expect(response.status).toBe(201);
    const registration = await response.json<Record<string, any>>();
    expect(registration.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(response.headers.get("Location")).toBe(`https://director.test/v1/registrations/${registration.id}`);
    expect(registration.url).toBe(response.headers.get("Location"));
    // IMF-fixdate (RFC 9110 §5.6.7), 7 days ahead by default
    const expires = response.headers.get("Expires")!;
    expect(expires).toMatch(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/);
    expect(Math.abs(Date.parse(expires) / 1000 - (nowSeconds() + 7 * DAY))).toBeLessThanOrEqual(5);
    expect(registration).toMatchObject({
      topic: "calendar-7",
      transport: "web_push",
      push_resource: body.push_services.web_push.endpoint,
      client_id: "client-1",
      owner: null,
      created: true,
      trigger: { content_update: { depth: 1 }, property_update: null },
      expires,
    });
  });

  it("updates the registration when the same subscription registers the same topic again", async () => {
    const tenant = await createTenant();
    // one clock reading for both: two could straddle a second and make the expiries differ by DAY + 1
    const now = nowSeconds();
    const body = await webPushBody("t-upd", { expires: now + DAY });
    const first = await (await subscribe(tenant.notify_token, body)).json<Record<string, any>>();
    const again = await subscribe(tenant.notify_token, { ...body, expires: now + 2 * DAY });
    expect(again.status).toBe(201);
    const second = await again.json<Record<string, any>>();
    expect(second.id).toBe(first.id);
    expect(second.created).toBe(false);
    expect(second.expires_at).toBe(first.expires_at + DAY);
    const rows = await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>();
    expect(rows!.n).toBe(1);
  });

  it("stores a subscription once, however many topics it registers for", async () => {
    const tenant = await createTenant();
    const body = await webPushBody("topic-a");
    const a = await (await subscribe(tenant.notify_token, body)).json<Record<string, any>>();
    const b = await (await subscribe(tenant.notify_token, { ...body, topic: "topic-b" })).json<Record<string, any>>();
    expect(a.id).not.toBe(b.id);
    const subs = await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>();
    expect(subs!.n).toBe(1);
  });

  it("clamps expiry to the maximum and honours shorter requests", async () => {
    const tenant = await createTenant();
    const clamped = await (await subscribe(tenant.notify_token, await webPushBody("t", { expires: nowSeconds() + 90 * DAY }))).json<Record<string, any>>();
    expect(Math.abs(clamped.expires_at - (nowSeconds() + 7 * DAY))).toBeLessThanOrEqual(5);
    const wanted = nowSeconds() + 3 * DAY;
    const honoured = await (await subscribe(tenant.notify_token, await webPushBody("t", { expires: wanted }))).json<Record<string, any>>();
    expect(honoured.expires_at).toBe(wanted);
    const imf = new Date((nowSeconds() + 4 * DAY) * 1000).toUTCString();
    const asDate = await (await subscribe(tenant.notify_token, await webPushBody("t", { expires: imf }))).json<Record<string, any>>();
    expect(asDate.expires).toBe(imf);
  });

  it("accepts a client grant for its topics and records the user as owner", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, { topics: ["topic-1", "topic-2"] });
    const response = await subscribe(token, await webPushBody("topic-2"));
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ owner: "alice", topic: "topic-2" });
    const single = await grant(tenant, { topics: undefined, topic: "solo" });
    expect((await subscribe(single, await webPushBody("solo"))).status).toBe(201);
  });

  it("refuses a grant for a topic it does not cover", async () => {
    const tenant = await createTenant();
    const response = await subscribe(await grant(tenant, { topics: ["topic-1"] }), await webPushBody("topic-9"));
    expect(response.status).toBe(403);
    expect(await errorCode(response)).toBe("topic_not_granted");
  });

  it("refuses another user's registration of the same push resource and topic", async () => {
    const tenant = await createTenant();
    const body = await webPushBody("topic-1");
    expect((await subscribe(await grant(tenant, {}, { sub: "alice" }), body)).status).toBe(201);
    const bob = await subscribe(await grant(tenant, {}, { sub: "bob" }), body);
    expect(bob.status).toBe(403);
    expect(await errorCode(bob)).toBe("registration_owned_by_another");
    // the owner and the tenant may update it
    expect((await subscribe(await grant(tenant, {}, { sub: "alice" }), body)).status).toBe(201);
    expect((await subscribe(tenant.notify_token, body)).status).toBe(201);
  });

  it("keeps a push resource its user's: another user can neither re-key it nor attach it to any topic", async () => {
    const tenant = await createTenant();
    const alice = await grant(tenant, { topics: ["t1"] }, { sub: "alice" });
    const mallory = await grant(tenant, { topics: ["t1", "t2"] }, { sub: "mallory" });
    const body = await webPushBody("t1");
    const created = await (await subscribe(alice, body)).json<{ id: string }>();
    const read = () => call(`/v1/registrations/${created.id}`, { headers: bearer(alice) }).then((r) => r.text());
    const subscriptionRow = () =>
      env.DB.prepare("SELECT s.* FROM subscriptions s JOIN registrations r ON r.subscription_id = s.id WHERE r.id = ?").bind(created.id).first();
    const before = { shown: await read(), row: await subscriptionRow() };

    const rekeyed = { ...body.push_services.web_push, keys: await userAgentKeys() };
    for (const topic of ["t1", "t2"]) {
      for (const webPush of [body.push_services.web_push, rekeyed]) {
        const response = await subscribe(mallory, { topic, push_services: { web_push: webPush }, expires: nowSeconds() + DAY });
        expect(response.status).toBe(403);
        expect(await errorCode(response)).toBe("registration_owned_by_another");
      }
    }
    // nothing changed: keys, expiry, updated_at, and no registration for mallory's topic
    expect(await read()).toBe(before.shown);
    expect(await subscriptionRow()).toEqual(before.row);
    const listed = await (await call("/v1/registrations?topic=t2", { headers: bearer(tenant.notify_token) })).json<{ registrations: unknown[] }>();
    expect(listed.registrations).toEqual([]);

    // alice herself may use hers on another topic
    const aliceBoth = await grant(tenant, { topics: ["t1", "t3"] }, { sub: "alice" });
    expect((await subscribe(aliceBoth, { ...body, topic: "t3" })).status).toBe(201);
    // a resource the tenant registered is the tenant's: users cannot take it either
    const tenantMade = await webPushBody("t2");
    expect((await subscribe(tenant.notify_token, tenantMade)).status).toBe(201);
    expect((await subscribe(mallory, tenantMade)).status).toBe(403);
    // the notify token may attach anything of its tenant and re-key it
    expect((await subscribe(tenant.notify_token, { topic: "t2", push_services: { web_push: rekeyed } })).status).toBe(201);
  });

  it("lets a push resource whose registrations all expired go to whoever registers it next", async () => {
    const tenant = await createTenant();
    const body = await webPushBody("topic-1");
    const created = await (await subscribe(await grant(tenant, {}, { sub: "alice" }), body)).json<{ id: string }>();
    await env.DB.prepare("UPDATE registrations SET expires_at = ? WHERE id = ?").bind(nowSeconds() - 1, created.id).run();
    expect((await subscribe(await grant(tenant, {}, { sub: "bob" }), body)).status).toBe(201);
  });

  it("stores FCM tokens sealed, found by digest, and shows them to their owner", async () => {
    const tenant = await createTenant();
    const token = `fcm-secret-token-${crypto.randomUUID()}`;
    const response = await subscribe(await grant(tenant, {}, { sub: "alice" }), { topic: "topic-1", push_services: { fcm: { registration_token: token } } });
    expect(response.status).toBe(201);
    const created = await response.json<{ id: string; registration_token: string }>();
    expect(created.registration_token).toBe(token);
    const rows = JSON.stringify((await env.DB.prepare("SELECT * FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).all()).results);
    expect(rows).not.toContain(token);
    const listed = await (await call("/v1/registrations", { headers: bearer(tenant.notify_token) })).json<{ registrations: { registration_token: string }[] }>();
    expect(listed.registrations.map((r) => r.registration_token)).toEqual([token]);
    // the same token is the same subscription: another user is refused
    const bob = await subscribe(await grant(tenant, {}, { sub: "bob" }), { topic: "topic-1", push_services: { fcm: { registration_token: token } } });
    expect(bob.status).toBe(403);
  });

  it("rejects bad, expired, foreign and unsigned grants with 401", async () => {
    const tenant = await createTenant();
    const other = await createTenant("other");
    const body = await webPushBody("topic-1");
    const key = new TextEncoder().encode(tenant.grant_secret);
    const cases: [string, string][] = [
      [await grant(tenant, {}, { expiresIn: Math.floor(Date.now() / 1000) - 60 }), "grant_expired"],
      [await grant(tenant, {}, { secret: other.grant_secret }), "invalid_grant"],
      [await grant({ id: "0123456789abcdef01234567", grant_secret: "x" }), "unknown_tenant"],
      [new UnsecuredJWT({ topics: ["topic-1"] }).setIssuer(tenant.id).setSubject("alice").setExpirationTime("1h").encode(), "invalid_grant"],
      [await new SignJWT({ topics: ["topic-1"] }).setProtectedHeader({ alg: "HS256" }).setIssuer(tenant.id).setSubject("alice").sign(key), "invalid_grant"],
      [await new SignJWT({ topics: ["topic-1"] }).setProtectedHeader({ alg: "HS256" }).setIssuer(tenant.id).setExpirationTime("1h").sign(key), "invalid_grant"],
      [await new SignJWT({ topics: ["topic-1"] }).setProtectedHeader({ alg: "HS512" }).setIssuer(tenant.id).setSubject("a").setExpirationTime("1h").sign(key), "invalid_grant"],
      [await grant(tenant, { topics: "topic-1" }), "invalid_grant"],
      ["not-a-token", "invalid_grant"],
      [`pdn_${tenant.id}_${"A".repeat(43)}`, "unauthorized"],
    ];
    for (const [token, code] of cases) {
      const response = await subscribe(token, body);
      expect(response.status, code).toBe(401);
      expect(await errorCode(response)).toBe(code);
    }
    expect((await call("/v1/subscriptions", { method: "POST", json: body })).status).toBe(401);
  });

  it("refuses a disabled tenant's token and grants", async () => {
    const tenant = await createTenant();
    await call(`/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN });
    for (const token of [tenant.notify_token, await grant(tenant)]) {
      const response = await subscribe(token, await webPushBody());
      expect(response.status).toBe(403);
      expect(await errorCode(response)).toBe("tenant_disabled");
    }
  });

  it("answers each malformed body with a 4xx that names the problem", async () => {
    const tenant = await createTenant();
    const keys = await userAgentKeys();
    const good = await webPushBody("topic-1");
    const wp = (web_push: unknown) => ({ topic: "topic-1", push_services: { web_push } });
    const cases: [unknown, string, RegExp][] = [
      [{ ...good, topic: "" }, "invalid_request", /topic/],
      [{ ...good, topic: 5 }, "invalid_request", /topic/],
      [{ ...good, topic: "x".repeat(257) }, "invalid_request", /topic/],
      [{ ...good, topic: "a\nb" }, "invalid_request", /control/],
      [{ topic: "t" }, "invalid_request", /push_services/],
      [{ topic: "t", push_services: {} }, "invalid_request", /at least one of web_push, unified_push, fcm, websocket/],
      // APNs is not reached directly: the refusal says how an iOS app registers
      [{ topic: "t", push_services: { apns: { token: "x" } } }, "transport_unavailable", /"platform": "ios"/],
      [{ topic: "t", push_services: { fcm: { registration_token: "x", platform: "windows" } } }, "invalid_request", /push_services\.fcm\.platform/],
      // every service named is schema-checked, chosen or not
      [{ topic: "t", push_services: { ...good.push_services, fcm: { registration_token: "" } } }, "invalid_request", /fcm/],
      [{ topic: "t", push_services: { ...good.push_services, websocket: { connection_id: 7 } } }, "invalid_request", /connection_id/],
      [{ topic: "t", push_services: { unified_push: { keys } } }, "invalid_request", /endpoint/],
      [wp({ endpoint: "https://push.example.net/x" }), "invalid_request", /keys/],
      [wp({ endpoint: "http://push.example.net/x", keys }), "invalid_push_resource", /https/],
      [wp({ endpoint: "https://localhost/x", keys }), "invalid_push_resource", /public/],
      [wp({ endpoint: "https://127.0.0.1/x", keys }), "invalid_push_resource", /public/],
      [wp({ endpoint: "https://192.168.1.4/x", keys }), "invalid_push_resource", /public/],
      [wp({ endpoint: "https://[::1]/x", keys }), "invalid_push_resource", /public/],
      [wp({ endpoint: "https://u:p@push.example.net/x", keys }), "invalid_push_resource", /credentials/],
      [wp({ endpoint: "push.example.net/x", keys }), "invalid_push_resource", /absolute/],
      [wp({ endpoint: "https://push.example.net/x", keys: { ...keys, p256dh: "AAAA" } }), "invalid_subscription_key", /p256dh/],
      [wp({ endpoint: "https://push.example.net/x", keys: { ...keys, p256dh: `BA${"A".repeat(85)}` } }), "invalid_subscription_key", /curve/],
      [wp({ endpoint: "https://push.example.net/x", keys: { ...keys, auth: "AAAA" } }), "invalid_subscription_key", /auth/],
      [wp({ endpoint: "https://push.example.net/x", keys, content_encoding: "aesgcm" }), "invalid_request", /aes128gcm/],
      [{ ...good, expires: "next tuesday" }, "invalid_request", /expires/],
      [{ ...good, expires: true }, "invalid_request", /expires/],
      [{ ...good, trigger: { content_update: { depth: 3 } } }, "invalid_request", /depth/],
      [[good], "invalid_request", /object/],
    ];
    for (const [body, code, message] of cases) {
      const response = await subscribe(tenant.notify_token, body);
      const text = await response.text();
      expect(response.status, text).toBe(400);
      const error = JSON.parse(text).error;
      expect(error.code, text).toBe(code);
      expect(error.message, text).toMatch(message);
    }
    // a refusal writes nothing
    const written = await env.DB.prepare(
      "SELECT (SELECT COUNT(*) FROM subscriptions WHERE tenant_id = ?1) + (SELECT COUNT(*) FROM registrations WHERE tenant_id = ?1) AS n",
    )
      .bind(tenant.id)
      .first<{ n: number }>();
    expect(written!.n).toBe(0);
  });

  it("takes an expires already past as no wish: the maximum, as push-register does", async () => {
    const tenant = await createTenant();
    for (const expires of [nowSeconds() - 10, 1698165940, "Wed, 20 Dec 2023 10:03:31 GMT", 0]) {
      const response = await subscribe(tenant.notify_token, await webPushBody("t", { expires }));
      expect(response.status).toBe(201);
      const expiresAt = (await response.json<{ expires_at: number }>()).expires_at;
      expect(Math.abs(expiresAt - (nowSeconds() + 7 * DAY)), String(expires)).toBeLessThanOrEqual(5);
    }
  });

  it("shows the push service the client chose, and whether messages are encrypted for it", async () => {
    const tenant = await createTenant();
    const keys = await userAgentKeys();
    const endpoint = `https://up.example.net/${crypto.randomUUID()}`;
    const response = await subscribe(tenant.notify_token, { topic: "t", push_services: { unified_push: { endpoint, keys } } });
    expect(response.status).toBe(201);
    const created = await response.json<Record<string, unknown>>();
    expect(created).toMatchObject({ transport: "unified_push", push_resource: endpoint, encrypted: true });
    const shown = await (await call(new URL(response.headers.get("Location")!).pathname, { headers: bearer(tenant.notify_token) })).json();
    expect(shown).toMatchObject({ transport: "unified_push", encrypted: true });
    const fcm = await (await subscribe(tenant.notify_token, { topic: "t", push_services: { fcm: { registration_token: "tok-enc" } } })).json();
    expect(fcm).toMatchObject({ transport: "fcm", encrypted: false });
    const web = await (await subscribe(tenant.notify_token, await webPushBody("t"))).json();
    expect(web).toMatchObject({ transport: "web_push", encrypted: true });
  });

  it("keeps one push resource one subscription, whether named web_push or unified_push", async () => {
    const tenant = await createTenant();
    const body = await webPushBody("a");
    const asWebPush = await (await subscribe(tenant.notify_token, body)).json<{ id: string }>();
    const asUnifiedPush = await subscribe(tenant.notify_token, { topic: "a", push_services: { unified_push: body.push_services.web_push } });
    expect(asUnifiedPush.status).toBe(201);
    // the same registration, now under the name it was registered with last
    expect(await asUnifiedPush.json()).toMatchObject({ id: asWebPush.id, created: false, transport: "unified_push" });
    const both = await subscribe(tenant.notify_token, {
      topic: "b",
      push_services: { web_push: body.push_services.web_push, unified_push: body.push_services.web_push },
    });
    expect(await both.json()).toMatchObject({ transport: "web_push", created: true });
    const counts = await env.DB.prepare("SELECT (SELECT COUNT(*) FROM subscriptions WHERE tenant_id = ?1) AS s, (SELECT COUNT(*) FROM registrations WHERE tenant_id = ?1) AS r")
      .bind(tenant.id)
      .first();
    expect(counts).toEqual({ s: 1, r: 2 });
  });

  it("answers a body that is not JSON with 400, another media type with 415, an oversize one with 413", async () => {
    const tenant = await createTenant();
    const post = (body: string, type = "application/json") =>
      call("/v1/subscriptions", { method: "POST", headers: { ...bearer(tenant.notify_token), "Content-Type": type }, body });
    expect(await errorCode(await post("{\"topic\":"))).toBe("invalid_json");
    const media = await post("<push-register/>", "application/xml");
    expect(media.status).toBe(415);
    const big = await post(JSON.stringify({ topic: "t", pad: "x".repeat(70_000) }));
    expect(big.status).toBe(413);
    expect(await errorCode(big)).toBe("body_too_large");
  });

  it("registers FCM tokens when FCM is configured, and refuses them when not", async () => {
    const tenant = await createTenant();
    const body = { topic: "t", push_services: { fcm: { registration_token: "fcm-token-1" } } };
    const response = await subscribe(tenant.notify_token, body);
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ transport: "fcm", registration_token: "fcm-token-1" });
    const request = new Request("https://director.test/v1/subscriptions", {
      method: "POST",
      headers: { ...bearer(tenant.notify_token), "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const refused = await app.fetch(request, { ...env, FCM_SERVICE_ACCOUNT: "" });
    expect(refused.status).toBe(400);
    expect(await errorCode(refused)).toBe("transport_unavailable");
  });

  it("registers an FCM token as an Android app's unless it names platform ios, and takes the platform named last", async () => {
    const tenant = await createTenant();
    const token = `fcm-${crypto.randomUUID()}`;
    const fcm = (platform?: string) => ({ fcm: platform === undefined ? { registration_token: token } : { registration_token: token, platform } });
    const stored = async () => (await env.DB.prepare("SELECT platform FROM subscriptions WHERE tenant_id = ? AND transport = 'fcm'").bind(tenant.id).all()).results;
    const shown = async () =>
      (await (await call("/v1/registrations", { headers: bearer(tenant.notify_token) })).json<{ registrations: { topic: string; platform?: string }[] }>()).registrations
        .map((r) => [r.topic, r.platform])
        .sort();

    const first = await subscribe(tenant.notify_token, { topic: "a", push_services: fcm() });
    expect(first.status).toBe(201);
    const firstJson = await first.json<{ id: string }>();
    expect(firstJson).toMatchObject({ transport: "fcm", registration_token: token, platform: "android", created: true });
    expect(await stored()).toEqual([{ platform: "android" }]);

    // one token is one subscription: registering it as an iOS app's (another topic) changes it for every topic
    const ios = await subscribe(tenant.notify_token, { topic: "b", push_services: fcm("ios") });
    expect(await ios.json()).toMatchObject({ platform: "ios", created: true });
    expect(await stored()).toEqual([{ platform: "ios" }]);
    expect(await shown()).toEqual([["a", "ios"], ["b", "ios"]]);
    const one = await (await call(`/v1/registrations/${firstJson.id}`, { headers: bearer(tenant.notify_token) })).json();
    expect(one).toMatchObject({ transport: "fcm", registration_token: token, platform: "ios" });

    const back = await subscribe(tenant.notify_token, { topic: "a", push_services: fcm("android") });
    expect(await back.json()).toMatchObject({ platform: "android", created: false });
    expect(await shown()).toEqual([["a", "android"], ["b", "android"]]);

    // Web Push has no platform, shown or stored
    const web = await (await subscribe(tenant.notify_token, await webPushBody("w"))).json<Record<string, unknown>>();
    expect(web).not.toHaveProperty("platform");
    expect((await env.DB.prepare("SELECT platform FROM subscriptions WHERE tenant_id = ? AND transport = 'web_push'").bind(tenant.id).first())!.platform).toBeNull();

    // unsubscribing finds the token alone: a platform named along is taken, whichever it is
    const gone = await call("/v1/unsubscribe", { method: "POST", headers: bearer(tenant.notify_token), json: { topic: "b", push_services: fcm("ios") } });
    expect(gone.status).toBe(204);
    expect(await shown()).toEqual([["a", "android"], ["w", undefined]]);
  });

  it("refuses any other platform with 400 naming platform, from a user as from the tenant, and stores or changes nothing", async () => {
    const tenant = await createTenant();
    // who may send it: any holder of a grant (or the notify token); what it might try: near misses,
    // markup for whoever shows registrations, SQL, the names of JavaScript's own properties, other types
    const hostile: unknown[] = [
      "IOS", "Android", " ios", "ios ", "ios\u0000", "", "apns", "web", "android,ios",
      "<img src=x onerror=alert(1)>", "ios'); DROP TABLE subscriptions; --", "__proto__", "constructor", "toString",
      "x".repeat(5000), null, 0, 1, true, ["ios"], { ios: true },
    ];
    const alice = await grant(tenant, {}, { sub: "alice" });
    const token = `fcm-${crypto.randomUUID()}`;
    for (const platform of hostile) {
      for (const credential of [alice, tenant.notify_token]) {
        const response = await subscribe(credential, { topic: "topic-1", push_services: { fcm: { registration_token: token, platform } } });
        const text = await response.text();
        expect(response.status, text).toBe(400);
        const error = JSON.parse(text).error;
        expect(error.code, text).toBe("invalid_request");
        expect(error.message, text).toMatch(/^push_services\.fcm\.platform: must be "android" or "ios"$/);
      }
    }
    const written = () =>
      env.DB.prepare("SELECT (SELECT COUNT(*) FROM subscriptions WHERE tenant_id = ?1) + (SELECT COUNT(*) FROM registrations WHERE tenant_id = ?1) AS n")
        .bind(tenant.id)
        .first<{ n: number }>();
    expect((await written())!.n).toBe(0);

    // a token already registered keeps its platform when a bad one is sent for it
    expect((await subscribe(alice, { topic: "topic-1", push_services: { fcm: { registration_token: token, platform: "ios" } } })).status).toBe(201);
    expect((await subscribe(alice, { topic: "topic-1", push_services: { fcm: { registration_token: token, platform: "IOS" } } })).status).toBe(400);
    expect(await env.DB.prepare("SELECT platform FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first("platform")).toBe("ios");
    // and the table itself takes no other value, whoever writes
    await expect(env.DB.prepare("UPDATE subscriptions SET platform = 'IOS' WHERE tenant_id = ?").bind(tenant.id).run()).rejects.toThrow(/CHECK/);
  });

  it("refuses apns and apn with 400 transport_unavailable saying how an iOS app registers, storing nothing; beside a usable service they are ignored", async () => {
    const tenant = await createTenant();
    const HOW = 'an iOS app registers its FCM token as "fcm": {"registration_token": "…", "platform": "ios"}';
    for (const [name, entry] of [["apns", { device_token: "a1b2c3" }], ["apn", "a1b2c3"], ["apns", null]] as const) {
      const response = await subscribe(tenant.notify_token, { topic: "t", push_services: { [name]: entry } });
      expect(response.status).toBe(400);
      expect((await response.json<{ error: unknown }>()).error).toEqual({
        code: "transport_unavailable",
        message: `${name} is not registered here: APNs needs HTTP/2, which a Worker's outbound fetch does not speak; ${HOW}; usable: web_push, unified_push, fcm, websocket`,
      });
    }
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first("n")).toBe(0);

    // FCM unconfigured: the way iOS apps take is closed too, and the answer says so
    const request = (json: unknown) =>
      new Request("https://director.test/v1/subscriptions", {
        method: "POST",
        headers: { ...bearer(tenant.notify_token), "Content-Type": "application/json" },
        body: JSON.stringify(json),
      });
    const noFcm = { ...env, FCM_SERVICE_ACCOUNT: "" };
    const alone = await app.fetch(request({ topic: "t", push_services: { apns: { device_token: "a1b2c3" } } }), noFcm);
    expect(await alone.json()).toEqual({
      error: {
        code: "transport_unavailable",
        message: `apns is not registered here: APNs needs HTTP/2, which a Worker's outbound fetch does not speak; ${HOW} (FCM is not configured on this director, so neither is usable here); usable: web_push, unified_push, websocket`,
      },
    });
    const both = await app.fetch(request({ topic: "t", push_services: { apns: {}, fcm: { registration_token: "tok", platform: "ios" } } }), noFcm);
    expect(both.status).toBe(400);
    expect((await both.json<{ error: { code: string; message: string } }>()).error.message).toMatch(/^apns is not registered here: .*; none of the push services named \(fcm\) is usable on this director; usable: web_push, unified_push, websocket$/);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first("n")).toBe(0);

    // a usable service named beside it is chosen as ever
    const token = `fcm-${crypto.randomUUID()}`;
    const chosen = await subscribe(tenant.notify_token, { topic: "t", push_services: { apns: { device_token: "a1b2c3" }, apn: "x", fcm: { registration_token: token, platform: "ios" } } });
    expect(chosen.status).toBe(201);
    expect(await chosen.json()).toMatchObject({ transport: "fcm", registration_token: token, platform: "ios" });
  });

  it("lets http: and loopback push resources through only in insecure mode", async () => {
    const tenant = await createTenant();
    const body = { topic: "t", push_services: { web_push: { endpoint: "http://127.0.0.1:9999/push/1", keys: await userAgentKeys() } } };
    const request = () =>
      new Request("http://localhost:8787/v1/subscriptions", {
        method: "POST",
        headers: { ...bearer(tenant.notify_token), "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await app.fetch(request(), env)).status).toBe(400);
    const insecure = await app.fetch(request(), { ...env, ALLOW_INSECURE_PUSH_RESOURCES: "true" });
    expect(insecure.status).toBe(201);
    expect(insecure.headers.get("Location")).toMatch(/^http:\/\/localhost:8787\/v1\/registrations\//);
  });

  it("builds registration URLs on PUBLIC_BASE_URL when it is set", async () => {
    const tenant = await createTenant();
    const response = await app.fetch(
      new Request("http://internal/v1/subscriptions", {
        method: "POST",
        headers: { ...bearer(tenant.notify_token), "Content-Type": "application/json" },
        body: JSON.stringify(await webPushBody()),
      }),
      { ...env, PUBLIC_BASE_URL: "https://push.example.org/" },
    );
    expect(response.headers.get("Location")).toMatch(/^https:\/\/push\.example\.org\/v1\/registrations\/[A-Za-z0-9_-]{22}$/);
  });

  it("fits requested triggers to what the tenant supports, with defaults for missing depths", async () => {
    const tenant = await createTenant();
    const body = await webPushBody("t", {
      trigger: { content_update: { depth: "infinity" }, property_update: { props: ["{DAV:}displayname"] } },
    });
    const registration = await (await subscribe(tenant.notify_token, body)).json<Record<string, any>>();
    // the default support is content updates to depth 1 and property updates at depth 0
    expect(registration.trigger).toEqual({
      content_update: { depth: 1 },
      property_update: { depth: 0, props: ["{DAV:}displayname"] },
    });
  });

  it("refuses with 403 no_supported_trigger when the tenant supports none of the triggers", async () => {
    const tenant = await createTenant();
    const set = await call(`/v1/admin/tenants/${tenant.id}/triggers`, {
      method: "PUT",
      headers: ADMIN,
      json: { content_update: null, property_update: { depth: "infinity" } },
    });
    expect(set.status).toBe(200);
    const refused = await subscribe(tenant.notify_token, await webPushBody("t"));
    expect(refused.status).toBe(403);
    expect(await errorCode(refused)).toBe("no_supported_trigger");
    const property = await subscribe(tenant.notify_token, await webPushBody("t", { trigger: { property_update: { depth: 1 } } }));
    expect((await property.json<Record<string, any>>()).trigger).toEqual({ content_update: null, property_update: { depth: 1, props: null } });
  });
});
