import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { topicHub } from "../../src/hub/topic-hub";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { app } from "../../src/app";
import { decodeBase64url } from "../../src/crypto/base64url";
import { keyringOf } from "../../src/crypto/sealed";
import { gatewayTopic, importTopicKey } from "../../src/gateway/advertise";
import { getGateway, openTopicKey } from "../../src/store/gateways";
import { currentVapidPublicKey } from "../../src/store/vapid-keys";
import { PUSH_NS as PUSH } from "../../src/xml/escape";
import { ADMIN, createTenant, ORIGIN, pushRegisterXml, pushService } from "../helpers";

const countRegistrations = async (tenantId: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>())!.n;

const local = (over: Record<string, string> = {}) => ({ ...env, ALLOW_INSECURE_PUSH_RESOURCES: "true", ...over }) as Env;
const origin = () => env.TEST_DAV_ORIGIN;
let id: string;
let base: string;

const dav = (path: string, init: RequestInit = {}, over: Record<string, string> = {}) => app.fetch(new Request(`${ORIGIN}/dav/${id}/${path}`, init), local(over));

/** What the origin received, as its 207 carries it in x:received (test/support/dav-origin.ts). */
function received(xml: string): { method: string; url: string; headers: Record<string, string>; body: string } {
  const text = /<x:received>([\s\S]*)<\/x:received>/.exec(xml)![1];
  return JSON.parse(text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&"));
}

beforeAll(async () => {
  const tenant = await createTenant();
  id = tenant.id;
  base = `${ORIGIN}/dav/${id}/`;
  const put = await app.fetch(
    new Request(`${ORIGIN}/v1/admin/tenants/${id}/gateway`, { method: "PUT", headers: { ...ADMIN, "Content-Type": "application/json" }, body: JSON.stringify({ origin: `${origin()}/base/` }) }),
    local(),
  );
  expect(put.status).toBe(201);
});

describe("the push gateway's proxy, /dav/{id}/…", () => {
  it("passes a PROPFIND on with its headers and credentials, and moves every href of the 207 to the gateway", async () => {
    const response = await dav("cal%40home/?x=1", {
      method: "PROPFIND",
      headers: { Depth: "1", Authorization: "Basic YWxpY2U6cHc=", "Content-Type": "application/xml" },
      body: `<?xml version="1.0"?><propfind xmlns="DAV:"><prop><resourcetype/></prop></propfind>`,
    });
    expect(response.status).toBe(207);
    expect(response.headers.get("Content-Location")).toBe(`${base}cal%40home/?x=1`);
    const xml = await response.text();
    const sent = received(xml);
    expect(sent.method).toBe("PROPFIND");
    expect(sent.url).toBe("/base/cal%40home/?x=1");
    expect(sent.headers.depth).toBe("1");
    expect(sent.headers.authorization).toBe("Basic YWxpY2U6cHc=");
    expect(sent.body).toBe(`<?xml version="1.0"?><propfind xmlns="DAV:"><prop><resourcetype/></prop></propfind>`);
    expect(xml).toContain(`<response><href>/dav/${id}/cal%40home/</href>`);
    expect(xml).toContain(`<current-user-principal><href>/dav/${id}/principals/alice/</href></current-user-principal>`);
    expect(xml).toContain(`<C:calendar-home-set><href>${base}calendars/alice/</href></C:calendar-home-set>`);
    // a sync-token is not an href: untouched
    expect(xml).toContain(`<sync-token>${origin()}/base/sync/1</sync-token>`);
  });

  it("moves the hrefs of a REPORT body to the origin, and those of the answer back", async () => {
    const body = `<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><D:href>/dav/${id}/cal/a.ics</D:href><D:href>${base}cal/b%20c.ics</D:href></C:calendar-multiget>`;
    const response = await dav("cal/", { method: "REPORT", headers: { Depth: "1", "Content-Type": "text/xml; charset=utf-8" }, body });
    expect(response.status).toBe(207);
    const xml = await response.text();
    expect(received(xml).body).toBe(
      `<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><D:href>/base/cal/a.ics</D:href><D:href>${origin()}/base/cal/b%20c.ics</D:href></C:calendar-multiget>`,
    );
    expect(xml).toContain(`<response><href>/dav/${id}/cal/a.ics</href>`);
    expect(xml).toContain(`<response><href>${base}cal/b%20c.ics</href>`);
  });

  it("answers transports, topic and supported-triggers for collections, the same topic at any Depth and spelling", async () => {
    const propfind = (path: string, depth: string) =>
      dav(path, {
        method: "PROPFIND",
        headers: { Depth: depth, "Content-Type": "application/xml" },
        body: `<d:propfind xmlns:d="DAV:" xmlns:p="${PUSH}"><d:prop><d:displayname/><p:transports/><p:topic/><p:supported-triggers/></d:prop></d:propfind>`,
      });
    const response = await propfind("cal%40home/", "1");
    expect(response.status).toBe(207);
    const xml = await response.text();
    // the origin was asked for resourcetype too, which the client did not ask for: not answered
    expect(received(xml).body).toContain("<d:resourcetype/>");
    expect(xml).not.toMatch(/<(\w+:)?resourcetype[ />]/);
    const row = (await getGateway(env.DB, id))!;
    const key = await importTopicKey(decodeBase64url(await openTopicKey(await keyringOf(env), row))!);
    const topic = await gatewayTopic(key, "/base/cal@home/");
    const vapid = await currentVapidPublicKey(env);
    expect(xml).toContain(
      `<response><href>/dav/${id}/cal%40home/</href><propstat><prop>` +
        `<P:transports xmlns:P="${PUSH}"><P:web-push><P:vapid-public-key type="p256ecdsa">${vapid}</P:vapid-public-key></P:web-push></P:transports>` +
        `<P:topic xmlns:P="${PUSH}">${topic}</P:topic>` +
        `<P:supported-triggers xmlns:P="${PUSH}"><P:content-update><D:depth xmlns:D="DAV:">1</D:depth></P:content-update><P:property-update><D:depth xmlns:D="DAV:">0</D:depth></P:property-update></P:supported-triggers>` +
        `</prop><status>HTTP/1.1 200 OK</status></propstat>`,
    );
    // a member is no collection: the origin's 404 stays
    expect(xml).toContain(`<response><href>/dav/${id}/cal%40home/member.ics</href>`);
    expect(xml.match(/HTTP\/1.1 404 Not Found/g)).toHaveLength(1);
    const again = await (await propfind("cal@home/", "0")).text();
    expect(again).toContain(`<P:topic xmlns:P="${PUSH}">${topic}</P:topic>`);
    const other = await (await propfind("other/", "0")).text();
    expect(other).not.toContain(topic);
    expect(other).toContain(`<P:topic xmlns:P="${PUSH}">${await gatewayTopic(key, "/base/other/")}</P:topic>`);
  });

  it("advertises nothing for a disabled tenant: the origin's answer passes as it is", async () => {
    const tenant = await createTenant();
    const put = await app.fetch(
      new Request(`${ORIGIN}/v1/admin/tenants/${tenant.id}/gateway`, { method: "PUT", headers: { ...ADMIN, "Content-Type": "application/json" }, body: JSON.stringify({ origin: `${origin()}/base/` }) }),
      local(),
    );
    expect(put.status).toBe(201);
    expect((await app.fetch(new Request(`${ORIGIN}/v1/admin/tenants/${tenant.id}/disable`, { method: "POST", headers: ADMIN }), local())).status).toBe(200);
    const response = await app.fetch(
      new Request(`${ORIGIN}/dav/${tenant.id}/cal/`, { method: "PROPFIND", headers: { Depth: "0", "Content-Type": "application/xml" }, body: `<propfind xmlns="DAV:"><prop><topic xmlns="${PUSH}"/></prop></propfind>` }),
      local(),
    );
    expect(response.status).toBe(207);
    const xml = await response.text();
    expect(xml).toContain("HTTP/1.1 404 Not Found");
    expect(xml).not.toContain("HTTP/1.1 200 OK</status></propstat><propstat><prop><ns0:topic");
    expect(xml).not.toMatch(/<P:topic/);
  });

  it("takes push-register for a collection the origin lets the client read, as its principal's, for the collection's topic", async () => {
    const subscriber = await pushService.subscriber();
    const body = await pushRegisterXml(subscriber.endpoint);
    const registerAs = (user: string | null, path = "secret/cal/") =>
      dav(path, { method: "POST", headers: { "Content-Type": "application/xml", ...(user === null ? {} : { Authorization: `Basic ${btoa(`${user}:pw`)}` }) }, body });

    const anonymous = await registerAs(null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("WWW-Authenticate")).toBe('Basic realm="Test origin"');
    const wrong = await dav("secret/cal/", { method: "POST", headers: { "Content-Type": "application/xml", Authorization: `Basic ${btoa("alice:nope")}` }, body });
    expect(wrong.status).toBe(401);

    const notCollection = await registerAs("alice", "secret/cal/a.ics");
    expect(notCollection.status).toBe(403);
    expect(await notCollection.text()).toContain("push-not-available");
    expect(await countRegistrations(id)).toBe(0);

    const created = await registerAs("alice");
    expect(created.status).toBe(204);
    const location = created.headers.get("Location")!;
    expect(location).toMatch(new RegExp(`^${base.replace(/[.]/g, "\\.")}\\.webdav-push/registrations/[A-Za-z0-9_-]{22}$`));
    expect(Date.parse(created.headers.get("Expires")!)).toBeGreaterThan(Date.now());
    const registrationId = location.split("/").pop()!;
    const row = await env.DB.prepare("SELECT topic, owner FROM registrations WHERE id = ?").bind(registrationId).first<{ topic: string; owner: string }>();
    const key = await importTopicKey(decodeBase64url(await openTopicKey(await keyringOf(env), (await getGateway(env.DB, id))!))!);
    expect(row).toEqual({ topic: await gatewayTopic(key, "/base/secret/cal/"), owner: "principal:/base/principals/alice/" });
    // watched from now on, its tokens as the origin had them the baseline
    const watched = await env.DB.prepare("SELECT path, href, topic, sync_token, ctag, etag FROM watched_collections WHERE tenant_id = ?").bind(id).all();
    expect(watched.results).toEqual([
      { path: "/base/secret/cal/", href: "/base/secret/cal/", topic: row!.topic, sync_token: `${origin()}/base/sync/1`, ctag: null, etag: null },
    ]);

    // the same push resource is alice's: bob may not take it
    const bob = await registerAs("bob");
    expect(bob.status).toBe(403);
    expect(await bob.text()).toContain("push-not-available");

    // DELETE of the registration URL: only its owner, as the origin knows the caller
    const path = new URL(location).pathname.slice(`/dav/${id}/`.length);
    // no credentials: the origin answers (its root is public) for nobody in particular
    expect((await dav(path, { method: "DELETE" })).status).toBe(404);
    expect((await dav(path, { method: "DELETE", headers: { Authorization: `Basic ${btoa("bob:pw")}` } })).status).toBe(404);
    expect((await dav(path, { method: "DELETE", headers: { Authorization: `Basic ${btoa("alice:pw")}` } })).status).toBe(204);
    expect((await dav(path, { method: "DELETE", headers: { Authorization: `Basic ${btoa("alice:pw")}` } })).status).toBe(404);
    expect(await countRegistrations(id)).toBe(0);
  });

  it("drops its watched collections and the registrations made through it when the gateway is deleted", async () => {
    const tenant = await createTenant();
    const admin = (method: string, json?: unknown) =>
      app.fetch(
        new Request(`${ORIGIN}/v1/admin/tenants/${tenant.id}/gateway`, { method, headers: { ...ADMIN, "Content-Type": "application/json" }, body: json === undefined ? undefined : JSON.stringify(json) }),
        local(),
      );
    expect((await admin("PUT", { origin: `${origin()}/base/` })).status).toBe(201);
    const subscriber = await pushService.subscriber();
    const registered = await app.fetch(
      new Request(`${ORIGIN}/dav/${tenant.id}/secret/cal/`, { method: "POST", headers: { "Content-Type": "application/xml", Authorization: `Basic ${btoa("bob:pw")}` }, body: await pushRegisterXml(subscriber.endpoint) }),
      local(),
    );
    expect(registered.status).toBe(204);
    expect(await (await admin("GET")).json()).toMatchObject({ watched_collections: 1, last_poll_error: null });
    expect(await countRegistrations(tenant.id)).toBe(1);
    expect((await admin("DELETE")).status).toBe(204);
    expect(await countRegistrations(tenant.id)).toBe(0);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM watched_collections WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>())!.n).toBe(0);
  });

  it("tells a watched collection's registrations of a write through the gateway, after the answer, sparing Push-Dont-Notify", async () => {
    const [forAlice, forBob] = [await pushService.subscriber(), await pushService.subscriber()];
    const alice = { Authorization: `Basic ${btoa("alice:pw")}` };
    const registerFor = async (who: string, subscriber: typeof forAlice) =>
      dav("secret/work/", { method: "POST", headers: { Authorization: `Basic ${btoa(`${who}:pw`)}`, "Content-Type": "application/xml" }, body: await pushRegisterXml(subscriber.endpoint, subscriber) });
    const registered = await registerFor("alice", forAlice);
    expect(registered.status).toBe(204);
    expect((await registerFor("bob", forBob)).status).toBe(204);
    const location = registered.headers.get("Location")!;
    const topic = (await env.DB.prepare("SELECT topic FROM registrations WHERE id = ?").bind(location.split("/").pop()).first<{ topic: string }>())!.topic;

    // the work goes on after the answer: collected here as the runtime's waitUntil would keep it
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (promise: Promise<unknown>) => void pending.push(promise), passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
    const write = async (path: string, init: RequestInit) => {
      pending.length = 0;
      const response = await app.fetch(new Request(`${base}${path}`, init), local(), ctx);
      await Promise.all(pending);
      await runDurableObjectAlarm(topicHub(env, id, topic));
      return response;
    };
    const ics = { method: "PUT", body: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n" };

    expect((await write("secret/work/new.ics", { ...ics, headers: alice })).status).toBe(201);
    const { received } = await pushService.wait(forAlice.id, 1);
    // content update of a member (depth 1), with the sync-token the origin has after the write
    expect(received[0].xml).toContain(`<topic>${topic}</topic><content-update><D:sync-token>${origin()}/base/sync/1</D:sync-token></content-update>`);
    await pushService.wait(forBob.id, 1);

    // alice's client wrote and names its own registration in Push-Dont-Notify: bob hears, alice not
    expect((await write("secret/work/new.ics", { ...ics, headers: { ...alice, "Push-Dont-Notify": `"${location}"` } })).status).toBe(201);
    await pushService.wait(forBob.id, 2);
    // a write in another collection concerns this one not at all; a GET writes nothing
    expect((await write("secret/other/x.ics", { ...ics, headers: alice })).status).toBe(201);
    pending.length = 0;
    expect((await app.fetch(new Request(`${base}secret/work/new.ics`, { headers: alice }), local(), ctx)).status).toBe(200);
    expect(pending).toHaveLength(0);
    // one more write: alice has 2 (not 3: spared once, the other collection never), bob 3
    expect((await write("secret/work/new.ics", { ...ics, headers: alice })).status).toBe(201);
    await pushService.wait(forBob.id, 3);
    await pushService.wait(forAlice.id, 2);
    expect((await pushService.received(forAlice.id)).received).toHaveLength(2);
    expect((await pushService.received(forBob.id)).received).toHaveLength(3);
    // four deliveries through the queues, each ~2 s under the local queue's batch timeout
  }, 30_000);

  it("counts a write's changes against the tenant's notify budget, and tells nobody past it", async () => {
    const tenant = await createTenant();
    const admin = (path: string, method: string, json: unknown) =>
      app.fetch(new Request(`${ORIGIN}/v1/admin/tenants/${tenant.id}${path}`, { method, headers: { ...ADMIN, "Content-Type": "application/json" }, body: JSON.stringify(json) }), local());
    expect((await admin("/gateway", "PUT", { origin: `${origin()}/base/` })).status).toBe(201);
    expect((await admin("/limits", "PUT", { registrations: null, registrations_per_user: null, notify_per_minute: 1, sockets: null, sockets_per_user: null })).status).toBe(200);
    const subscriber = await pushService.subscriber();
    const alice = { Authorization: `Basic ${btoa("alice:pw")}` };
    const gatewayBase = `${ORIGIN}/dav/${tenant.id}/`;
    const registered = await app.fetch(
      new Request(`${gatewayBase}secret/budget/`, { method: "POST", headers: { ...alice, "Content-Type": "application/xml" }, body: await pushRegisterXml(subscriber.endpoint, subscriber) }),
      local(),
    );
    expect(registered.status).toBe(204);
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (promise: Promise<unknown>) => void pending.push(promise), passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
    const lines: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    try {
      for (let i = 0; i < 2; i++) {
        const put = await app.fetch(new Request(`${gatewayBase}secret/budget/${i}.ics`, { method: "PUT", headers: alice, body: "x" }), local(), ctx);
        expect(put.status).toBe(201);
      }
      await Promise.all(pending);
    } finally {
      spy.mockRestore();
    }
    // the first fits the budget of 1 per minute; the second is refused, and said so
    const refused = lines.filter((line) => line.includes('"event":"gateway_notify_refused"')).map((line) => JSON.parse(line));
    expect(refused).toEqual([{ level: "warn", event: "gateway_notify_refused", tenant: tenant.id, changes: 1, retry_after: expect.any(Number) }]);
  });

  it("keeps its own path from the origin, and passes other XML POSTs on", async () => {
    const own = await dav(".webdav-push/registrations/x", { headers: { Authorization: `Basic ${btoa("alice:pw")}` } });
    expect(own.status).toBe(404);
    expect(await own.json()).toMatchObject({ error: { code: "not_found" } });
    const other = await dav("cal/", { method: "POST", headers: { "Content-Type": "application/xml" }, body: `<x:thing xmlns:x="urn:test"><D:href xmlns:D="DAV:">/dav/${id}/cal/</D:href></x:thing>` });
    expect(other.status).toBe(200);
    const echoed = await other.json<{ url: string; body: string }>();
    expect(echoed.url).toBe("/base/cal/");
    expect(echoed.body).toBe(`<x:thing xmlns:x="urn:test"><D:href xmlns:D="DAV:">/dav/${id}/cal/</D:href></x:thing>`);
  });

  it("adds webdav-push to the origin's DAV header on OPTIONS", async () => {
    const response = await dav("", { method: "OPTIONS" });
    expect(response.status).toBe(200);
    expect(response.headers.get("DAV")).toBe("1, 2, 3, calendar-access, extended-mkcol, webdav-push");
  });

  it("passes the origin's 401 and WWW-Authenticate unchanged, and the right credentials through", async () => {
    const refused = await dav("secret/x");
    expect(refused.status).toBe(401);
    expect(refused.headers.get("WWW-Authenticate")).toBe('Basic realm="Test origin"');
    expect(await refused.text()).toBe("who are you?");
    const allowed = await dav("secret/x", { headers: { Authorization: `Basic ${btoa("alice:pw")}` } });
    expect(allowed.status).toBe(200);
  });

  it("passes a redirect on, with its Location on the gateway, never following it", async () => {
    const response = await dav("redirect");
    expect(response.status).toBe(302);
    expect(response.headers.get("Location")).toBe(`${base}elsewhere/?q=1`);
  });

  it("moves Destination and If to the origin", async () => {
    const response = await dav("cal/a.ics", {
      method: "MOVE",
      headers: { Destination: `${base}cal/b.ics`, If: `<${base}cal/a.ics> (<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2>)`, Overwrite: "F" },
    });
    expect(response.status).toBe(201);
    const sent = await response.json<{ url: string; headers: Record<string, string> }>();
    expect(sent.url).toBe("/base/cal/a.ics");
    expect(sent.headers.destination).toBe(`${origin()}/base/cal/b.ics`);
    expect(sent.headers.if).toBe(`<${origin()}/base/cal/a.ics> (<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2>)`);
    expect(sent.headers.overwrite).toBe("F");
  });

  it("streams a body past the API's 64 KiB limit, and leaves a resource's own XML alone", async () => {
    const ics = `BEGIN:VCALENDAR\r\n${"X-PAD:".padEnd(70, "x")}\r\n`.repeat(3000) + "END:VCALENDAR\r\n";
    expect(ics.length).toBeGreaterThan(200_000);
    const response = await dav("cal/big.ics", { method: "PUT", headers: { "Content-Type": "text/calendar" }, body: ics });
    expect(response.status).toBe(201);
    expect(response.headers.get("Location")).toBe(`/dav/${id}/cal/big.ics`);
    expect((await response.json<{ body: string }>()).body).toBe(ics);
    const file = await dav("file.xml");
    expect(await file.text()).toBe(`<multistatus xmlns="DAV:"><href>/base/kept/</href></multistatus>`);
  });

  it("refuses a WebDAV XML body over 1 MiB with 413, before the origin hears of it", async () => {
    const body = `<propfind xmlns="DAV:"><prop>${"<x/>".repeat(300_000)}</prop></propfind>`;
    const response = await dav("cal/", { method: "PROPFIND", headers: { "Content-Type": "application/xml" }, body });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: "body_too_large" } });
  });

  it("answers 504 origin_timeout past GATEWAY_ORIGIN_TIMEOUT_MS, and 502 origin_unreachable", async () => {
    const slow = await dav("slow", {}, { GATEWAY_ORIGIN_TIMEOUT_MS: "200" });
    expect(slow.status).toBe(504);
    expect(await slow.json()).toEqual({ error: { code: "origin_timeout", message: "the origin did not answer within 200 ms" } });

    const tenant = await createTenant();
    const put = await app.fetch(
      new Request(`${ORIGIN}/v1/admin/tenants/${tenant.id}/gateway`, { method: "PUT", headers: { ...ADMIN, "Content-Type": "application/json" }, body: JSON.stringify({ origin: "http://127.0.0.1:9/" }) }),
      local(),
    );
    expect(put.status).toBe(201);
    const unreachable = await app.fetch(new Request(`${ORIGIN}/dav/${tenant.id}/x`), local());
    expect(unreachable.status).toBe(502);
    expect(await unreachable.json()).toMatchObject({ error: { code: "origin_unreachable" } });
  });

  it("refuses to proxy to an origin the rules no longer allow (insecure resources turned off)", async () => {
    const response = await dav("cal/", { method: "PROPFIND" }, { ALLOW_INSECURE_PUSH_RESOURCES: "false" });
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ error: { code: "origin_not_allowed" } });
  });

  it("redirects /dav/{id} to /dav/{id}/ and answers 404 gateway_not_configured for a tenant without one", async () => {
    const bare = await app.fetch(new Request(`${ORIGIN}/dav/${id}?a=1`), local());
    expect(bare.status).toBe(308);
    expect(bare.headers.get("Location")).toBe(`/dav/${id}/?a=1`);
    const none = await app.fetch(new Request(`${ORIGIN}/dav/0123456789abcdef01234567/x`, { method: "PROPFIND" }), local());
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ error: { code: "gateway_not_configured" } });
  });
});
