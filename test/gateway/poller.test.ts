// The push gateway's poller (issue 14, item 7) on a real Radicale from the global setup: changes
// made at the origin directly, found by the GatewayPoller's alarm and told to the registrations.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { gatewayPoller, GatewayPoller } from "../../src/gateway/poller";
import { topicHub } from "../../src/hub/topic-hub";
import { wakePollers } from "../../src/scheduled";
import { collectionsToPoll, moveTokens, recordPoll } from "../../src/store/gateways";
import { ADMIN, createTenant, ORIGIN, pushRegisterXml, pushService } from "../helpers";

const local = (over: Record<string, string> = {}) => ({ ...env, ALLOW_INSECURE_PUSH_RESOURCES: "true", ...over }) as Env;
const radicale = () => env.TEST_RADICALE;
const alice = { Authorization: `Basic ${btoa("alice:alice-pw")}` };

/** A calendar of alice's at Radicale, made there directly (RFC 5689 extended MKCOL); its path. */
async function makeCalendar(): Promise<string> {
  const path = `/alice/${crypto.randomUUID()}/`;
  const made = await fetch(`${radicale()}${path}`, {
    method: "MKCOL",
    headers: { ...alice, "Content-Type": "application/xml" },
    body: `<?xml version="1.0"?><D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><D:resourcetype><D:collection/><C:calendar/></D:resourcetype></D:prop></D:set></D:mkcol>`,
  });
  expect(made.status).toBe(201);
  return path;
}

const event = (uid: string, summary = "planning") =>
  `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//push-director//test//EN\r\nBEGIN:VEVENT\r\nUID:${uid}\r\nDTSTAMP:20261201T090000Z\r\nDTSTART:20261202T090000Z\r\nDTEND:20261202T100000Z\r\nSUMMARY:${summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n`;

/** A PUT of an event at Radicale directly: the gateway never sees it. */
async function putDirectly(calendar: string, uid = crypto.randomUUID()): Promise<void> {
  const put = await fetch(`${radicale()}${calendar}${uid}.ics`, { method: "PUT", headers: { ...alice, "Content-Type": "text/calendar" }, body: event(uid) });
  expect(put.status).toBe(201);
}

/** Radicale's own tokens for a collection, read directly, as the gateway reads them after a write. */
async function tokensAt(path: string) {
  const answer = await fetch(`${radicale()}${path}`, {
    method: "PROPFIND",
    headers: { ...alice, Depth: "0" },
    body: `<propfind xmlns="DAV:" xmlns:CS="http://calendarserver.org/ns/"><prop><sync-token/><CS:getctag/><getetag/></prop></propfind>`,
  });
  const xml = await answer.text();
  const read = (name: string) => new RegExp(`<(?:CS:)?${name}>([^<]+)</`).exec(xml)![1];
  return { sync_token: read("sync-token"), ctag: read("getctag"), etag: read("getetag") };
}

/** Radicale's own sync-token for a collection, read directly. */
async function syncTokenAt(path: string): Promise<string> {
  const answer = await fetch(`${radicale()}${path}`, { method: "PROPFIND", headers: { ...alice, Depth: "0" }, body: `<propfind xmlns="DAV:"><prop><sync-token/></prop></propfind>` });
  return /<sync-token>([^<]+)<\/sync-token>/.exec(await answer.text())![1];
}

const admin = (tenantId: string, method: string, json?: unknown) =>
  app.fetch(
    new Request(`${ORIGIN}/v1/admin/tenants/${tenantId}/gateway`, { method, headers: { ...ADMIN, "Content-Type": "application/json" }, body: json === undefined ? undefined : JSON.stringify(json) }),
    local(),
  );

/** A tenant with a gateway to Radicale, polling every 5 s as alice (or with another poll_auth). */
async function gatewayTenant(pollAuth: { username: string; password: string } | null = { username: "alice", password: "alice-pw" }) {
  const tenant = await createTenant();
  expect((await admin(tenant.id, "PUT", { origin: `${radicale()}/`, poll_seconds: 5, poll_auth: pollAuth })).status).toBe(201);
  return tenant;
}

/** push-register through the gateway as alice; the registration's topic. */
async function registerThroughGateway(tenantId: string, calendar: string, subscriber: { endpoint: string; p256dh: string; auth: string }, trigger?: string): Promise<string> {
  const response = await app.fetch(
    new Request(`${ORIGIN}/dav/${tenantId}${calendar}`, { method: "POST", headers: { ...alice, "Content-Type": "application/xml" }, body: await pushRegisterXml(subscriber.endpoint, subscriber, trigger) }),
    local(),
  );
  expect(response.status).toBe(204);
  const id = response.headers.get("Location")!.split("/").pop();
  return (await env.DB.prepare("SELECT topic FROM registrations WHERE id = ?").bind(id).first<{ topic: string }>())!.topic;
}

/**
 * The tenant's poller, made to run on the tests' env with insecure origins allowed (Radicale is on
 * http://127.0.0.1); the object is otherwise as deployed: its alarm, its storage, its rounds.
 */
async function pollerOf(tenantId: string) {
  const stub = gatewayPoller(env, tenantId);
  await runInDurableObject(stub, (instance: GatewayPoller) => {
    (instance as unknown as { env: Env }).env = local();
  });
  return stub;
}

const alarmOf = (stub: DurableObjectStub) => runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
const gatewayOf = async (tenantId: string) => (await (await admin(tenantId, "GET")).json()) as { last_poll_error: string | null; watched_collections: number };

describe("the gateway's poller, on Radicale", () => {
  it("tells a change made at the origin directly: a new event as content-update with Radicale's sync-token, a PROPPATCH as property-update, nothing when nothing changed", async () => {
    const tenant = await gatewayTenant();
    const calendar = await makeCalendar();
    const subscriber = await pushService.subscriber();
    const topic = await registerThroughGateway(tenant.id, calendar, subscriber, "<content-update><D:depth>1</D:depth></content-update><property-update><D:depth>0</D:depth></property-update>");
    const poller = await pollerOf(tenant.id);
    const hub = topicHub(env, tenant.id, topic);
    // push-register armed it, for poll_seconds from then
    const armed = (await alarmOf(poller))!;
    expect(armed).toBeGreaterThan(Date.now());
    expect(armed).toBeLessThanOrEqual(Date.now() + 5_000);

    // nothing changed since the registration read the tokens: the round tells the hub nothing
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await alarmOf(hub)).toBeNull();
    // and it polls again in poll_seconds
    expect(await alarmOf(poller)).toBeGreaterThan(Date.now());

    await putDirectly(calendar);
    // found, and told on the next round if nothing told it meanwhile (a write through the gateway)
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await alarmOf(hub)).toBeNull();
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await runDurableObjectAlarm(hub)).toBe(true);
    const first = await pushService.wait(subscriber.id, 1);
    expect(first.received[0].xml).toContain(`<topic>${topic}</topic><content-update><D:sync-token>${await syncTokenAt(calendar)}</D:sync-token></content-update>`);

    // a property of the calendar itself: Radicale moves its etag, not its sync-token
    const patched = await fetch(`${radicale()}${calendar}`, {
      method: "PROPPATCH",
      headers: { ...alice, "Content-Type": "application/xml" },
      body: `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>Renamed</D:displayname></D:prop></D:set></D:propertyupdate>`,
    });
    expect(patched.status).toBe(207);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await runDurableObjectAlarm(hub)).toBe(true);
    const second = await pushService.wait(subscriber.id, 2);
    expect(second.received[1].xml).toContain(`<topic>${topic}</topic><property-update/>`);
    expect(second.received[1].xml).not.toContain("content-update");
    expect((await gatewayOf(tenant.id)).last_poll_error).toBeNull();
  }, 30_000);

  it("does not tell twice what a write through the gateway told: the tokens it moved are the poller's baseline", async () => {
    const tenant = await gatewayTenant();
    const calendar = await makeCalendar();
    const subscriber = await pushService.subscriber();
    const topic = await registerThroughGateway(tenant.id, calendar, subscriber);
    const poller = await pollerOf(tenant.id);
    const hub = topicHub(env, tenant.id, topic);
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (promise: Promise<unknown>) => void pending.push(promise), passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
    const uid = crypto.randomUUID();
    const put = await app.fetch(new Request(`${ORIGIN}/dav/${tenant.id}${calendar}${uid}.ics`, { method: "PUT", headers: alice, body: event(uid) }), local(), ctx);
    expect(put.status).toBe(201);
    await Promise.all(pending);
    expect(await runDurableObjectAlarm(hub)).toBe(true);
    await pushService.wait(subscriber.id, 1);
    // the poller finds the tokens the write left: nothing to tell
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await alarmOf(hub)).toBeNull();

    // a round in the gap between a write at the origin and the gateway's telling of it (here: the
    // write's PROPFIND and token move done by hand, as notifyAfterWrite does them) finds a change,
    // and does not tell it: the write did, with its Push-Dont-Notify
    await putDirectly(calendar);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    const [watched] = await collectionsToPoll(env.DB, tenant.id, Math.floor(Date.now() / 1000), 10);
    await moveTokens(env.DB, tenant.id, watched.path, await tokensAt(calendar));
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await alarmOf(hub)).toBeNull();

    // a round that read tokens before a write moved them: its move does not take, so it tells nothing
    const [due] = await collectionsToPoll(env.DB, tenant.id, Math.floor(Date.now() / 1000), 10);
    const stale = { ...due, sync_token: "an older token" };
    const moved = await recordPoll(env.DB, tenant.id, [due.path], [{ path: due.path, was: stale, now: { ...due, sync_token: "a newer token" } }], null, 1);
    expect(moved.size).toBe(0);
    expect((await collectionsToPoll(env.DB, tenant.id, Math.floor(Date.now() / 1000), 10))[0].sync_token).toBe(due.sync_token);
  }, 30_000);

  it("keeps the origin's refusal in last_poll_error and tells nothing; a clean round clears it", async () => {
    const tenant = await gatewayTenant({ username: "alice", password: "wrong" });
    const calendar = await makeCalendar();
    const subscriber = await pushService.subscriber();
    const topic = await registerThroughGateway(tenant.id, calendar, subscriber);
    const poller = await pollerOf(tenant.id);
    await putDirectly(calendar);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    const { last_poll_error } = await gatewayOf(tenant.id);
    expect(last_poll_error).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${calendar}: 401 Unauthorized$`));
    expect(await alarmOf(topicHub(env, tenant.id, topic))).toBeNull();
    // still polling: the operator may fix poll_auth
    expect(await alarmOf(poller)).not.toBeNull();

    // fixed: the change made meanwhile is found and told, the error cleared
    expect((await admin(tenant.id, "PUT", { origin: `${radicale()}/`, poll_seconds: 5, poll_auth: { username: "alice", password: "alice-pw" } })).status).toBe(200);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect((await gatewayOf(tenant.id)).last_poll_error).toBeNull();
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await runDurableObjectAlarm(topicHub(env, tenant.id, topic))).toBe(true);
    expect((await pushService.wait(subscriber.id, 1)).received[0].xml).toContain(await syncTokenAt(calendar));
    expect((await gatewayOf(tenant.id)).last_poll_error).toBeNull();
  }, 30_000);

  it("polls nothing from an origin the rules no longer allow, and says why", async () => {
    const tenant = await gatewayTenant();
    const calendar = await makeCalendar();
    await registerThroughGateway(tenant.id, calendar, await pushService.subscriber());
    // the object as deployed, on the tests' env: insecure origins are not allowed there
    const poller = gatewayPoller(env, tenant.id);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect((await gatewayOf(tenant.id)).last_poll_error).toMatch(/not polled: the gateway's origin: must be an https: URL$/);
    expect(await alarmOf(poller)).not.toBeNull();
  });

  it("waits, rather than loses, the changes past the tenant's notify budget", async () => {
    const tenant = await gatewayTenant();
    const limits = await app.fetch(
      new Request(`${ORIGIN}/v1/admin/tenants/${tenant.id}/limits`, {
        method: "PUT",
        headers: { ...ADMIN, "Content-Type": "application/json" },
        body: JSON.stringify({ registrations: null, registrations_per_user: null, notify_per_minute: 1, sockets: null, sockets_per_user: null }),
      }),
      local(),
    );
    expect(limits.status).toBe(200);
    const calendars = [await makeCalendar(), await makeCalendar()];
    for (const calendar of calendars) await registerThroughGateway(tenant.id, calendar, await pushService.subscriber());
    const poller = await pollerOf(tenant.id);
    const before = await collectionsToPoll(env.DB, tenant.id, Math.floor(Date.now() / 1000), 10);
    for (const calendar of calendars) await putDirectly(calendar);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    // two changes, a budget of one: neither told, neither's tokens moved, and the operator is told why
    expect((await gatewayOf(tenant.id)).last_poll_error).toMatch(/2 changes wait: past the tenant's notify_per_minute$/);
    const after = await collectionsToPoll(env.DB, tenant.id, Math.floor(Date.now() / 1000), 10);
    expect(after.map((c) => c.sync_token).sort()).toEqual(before.map((c) => c.sync_token).sort());
    // and still waiting on the next round, not forgotten
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect((await gatewayOf(tenant.id)).last_poll_error).toMatch(/2 changes wait/);
  });

  it("stops when no collection has a live registration, and arms again on push-register, a PUT or the cron", async () => {
    const tenant = await gatewayTenant();
    const calendar = await makeCalendar();
    const poller = await pollerOf(tenant.id);
    // the PUT armed it; with nothing registered the round stops it and leaves nothing stored
    expect(await alarmOf(poller)).not.toBeNull();
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await alarmOf(poller)).toBeNull();
    expect(await runInDurableObject(poller, (_instance, state) => state.storage.kv.get("tenant"))).toBeUndefined();

    await registerThroughGateway(tenant.id, calendar, await pushService.subscriber());
    expect(await alarmOf(poller)).not.toBeNull();
    // a lost alarm: the hourly cron brings it back
    await runInDurableObject(poller, (_instance, state) => state.storage.deleteAlarm());
    expect(await wakePollers(env)).toBeGreaterThanOrEqual(1);
    expect(await alarmOf(poller)).not.toBeNull();

    // a longer poll_seconds does not push a sooner round away; a shorter one brings it forward
    const soon = (await alarmOf(poller))!;
    expect((await admin(tenant.id, "PUT", { origin: `${radicale()}/`, poll_seconds: 3600 })).status).toBe(200);
    expect(await alarmOf(poller)).toBe(soon);
    await runInDurableObject(poller, (_instance, state) => state.storage.setAlarm(Date.now() + 3_600_000));
    expect((await admin(tenant.id, "PUT", { origin: `${radicale()}/`, poll_seconds: 5 })).status).toBe(200);
    expect(await alarmOf(poller)).toBeLessThanOrEqual(Date.now() + 5_000);

    // polling off: the next round stops it
    expect((await admin(tenant.id, "PUT", { origin: `${radicale()}/`, poll_seconds: 0 })).status).toBe(200);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await alarmOf(poller)).toBeNull();
    // and a deleted gateway the same
    expect((await admin(tenant.id, "PUT", { origin: `${radicale()}/`, poll_seconds: 5 })).status).toBe(200);
    expect((await admin(tenant.id, "DELETE")).status).toBe(204);
    expect(await runDurableObjectAlarm(poller)).toBe(true);
    expect(await alarmOf(poller)).toBeNull();
  });
});

describe("a round's collections", () => {
  it("are the watched ones with a live registration, the longest unasked first, at most the limit", async () => {
    const tenant = await gatewayTenant();
    const calendars = [await makeCalendar(), await makeCalendar(), await makeCalendar()];
    for (const calendar of calendars) await registerThroughGateway(tenant.id, calendar, await pushService.subscriber());
    // one more, watched, whose only registration has expired
    await registerThroughGateway(tenant.id, await makeCalendar(), await pushService.subscriber());
    const now = Math.floor(Date.now() / 1000);
    const watched = (await env.DB.prepare("SELECT path, topic FROM watched_collections WHERE tenant_id = ? ORDER BY created_at, path").bind(tenant.id).all<{ path: string; topic: string }>()).results;
    const expired = watched.find((w) => !calendars.includes(w.path))!;
    await env.DB.prepare("UPDATE registrations SET expires_at = ? WHERE tenant_id = ? AND topic = ?").bind(now - 1, tenant.id, expired.topic).run();
    await env.DB.prepare("UPDATE watched_collections SET polled_at = CASE path WHEN ?2 THEN 30 WHEN ?3 THEN 10 ELSE 20 END WHERE tenant_id = ?1").bind(tenant.id, calendars[0], calendars[1]).run();

    expect((await collectionsToPoll(env.DB, tenant.id, now, 10)).map((c) => c.path)).toEqual([calendars[1], calendars[2], calendars[0]]);
    expect((await collectionsToPoll(env.DB, tenant.id, now, 2)).map((c) => c.path)).toEqual([calendars[1], calendars[2]]);
    // a round marks what it asked: next time the others come first
    await recordPoll(env.DB, tenant.id, [calendars[1], calendars[2]], [], null, 40);
    expect((await collectionsToPoll(env.DB, tenant.id, now, 1)).map((c) => c.path)).toEqual([calendars[0]]);
  });
});
