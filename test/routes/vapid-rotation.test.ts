// VAPID key rotation (the draft's Key Rotation) through the real queues to the stand-in push
// service, which only accepts each subscription's own key. In a file of its own: it changes the
// key for everything else in the same storage.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { deliver, transportsFor } from "../../src/queues/deliveries";
import type { DeliveryJob } from "../../src/queues/jobs";
import { purge } from "../../src/scheduled";
import { ADMIN, bearer, call, createTenant, pushService, queuedTarget, registerSubscriber } from "../helpers";

const ROTATION_XML =
  '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:">' +
  "<property-update><D:prop><transports/></D:prop></property-update></push-message>";

describe("POST /v1/admin/vapid/rotate", () => {
  it("tells every distinct subscription with the old key, then signs with the new one", async () => {
    const tenant = await createTenant();
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => pushService.subscriber()));
    await registerSubscriber(tenant, "cal", a);
    await registerSubscriber(tenant, "book", a); // one subscription, two topics: one message
    await registerSubscriber(tenant, "cal", b);
    await registerSubscriber(tenant, "book", c);

    const started = await call("/v1/admin/vapid/rotate", { method: "POST", headers: ADMIN });
    expect(started.status).toBe(202);
    const { public_key: oldKey, pending_public_key: newKey } = await started.json<{ public_key: string; pending_public_key: string }>();
    expect(oldKey).toBe(env.VAPID_PUBLIC_KEY);
    expect(newKey).toMatch(/^B[A-Za-z0-9_-]{86}$/);

    for (const subscriber of [a, b, c]) {
      const { received } = await pushService.wait(subscriber.id, 1);
      expect(received.map((m) => m.xml)).toEqual([ROTATION_XML]);
      expect(received[0].topic).toBeNull();
    }
    // the stand-in accepts only the key each subscription was made with: the old one
    expect(await pushService.errors()).toEqual([]);

    await vi.waitFor(
      async () =>
        expect(await (await call("/v1/admin/vapid", { headers: ADMIN })).json()).toEqual({
          public_key: newKey,
          pending_public_key: null,
          // the configured pair, copied in: the subscriptions made with it keep it
          retired: [{ public_key: oldKey, subscriptions: 3 }],
        }),
      { timeout: 10_000, interval: 50 },
    );
    expect((await (await call("/.well-known/webdav-push")).json<any>()).transports.web_push.vapid_public_key).toBe(newKey);
    expect(await (await call("/v1/transports.xml")).text()).toContain(`<P:vapid-public-key type="p256ecdsa">${newKey}</P:vapid-public-key>`);
    expect((await pushService.received(a.id)).received).toHaveLength(1);

    // a client that subscribed again with the new key gets notifications signed with it
    const renewed = await pushService.subscriber({ kind: "accept" }, newKey);
    await registerSubscriber(tenant, "cal2", renewed);
    await call("/v1/notify", { method: "POST", headers: bearer(tenant.notify_token), json: { topic: "cal2" } });
    await runDurableObjectAlarm(topicHub(env, tenant.id, "cal2"));
    const { received } = await pushService.wait(renewed.id, 1);
    expect(received[0].xml).toContain("<topic>cal2</topic>");
    expect(await pushService.errors()).toEqual([]);
  });

  it("refuses a second rotation while one is under way, and keys that do not work", async () => {
    await env.DB.prepare("INSERT INTO vapid_keys (public_key, private_key, state, created_at) VALUES ('Bpending', 'x', 'pending', 0)").run();
    const busy = await call("/v1/admin/vapid/rotate", { method: "POST", headers: ADMIN });
    expect(busy.status).toBe(409);
    expect(await busy.json()).toMatchObject({ error: { code: "rotation_in_progress" } });
    await env.DB.prepare("DELETE FROM vapid_keys WHERE public_key = 'Bpending'").run();
    const bad = await call("/v1/admin/vapid/rotate", { method: "POST", headers: ADMIN, json: { public_key: "BAAA", private_key: "short" } });
    expect(bad.status).toBe(400);
    const half = await call("/v1/admin/vapid/rotate", { method: "POST", headers: ADMIN, json: { public_key: env.VAPID_PUBLIC_KEY } });
    expect(half.status).toBe(400);
    expect((await call("/v1/admin/vapid/rotate", { method: "POST" })).status).toBe(401);
  });
});

describe("a VAPID key per subscription, across two rotations", () => {
  const vapid = async () => (await call("/v1/admin/vapid", { headers: ADMIN })).json<{ public_key: string; pending_public_key: string | null; retired: { public_key: string; subscriptions: number }[] }>();
  const keyOf = async (endpoint: string) =>
    (await env.DB.prepare("SELECT vapid_public_key AS k FROM subscriptions WHERE identifier = ?").bind(endpoint).first<{ k: string | null }>())!.k;
  const rotate = async () => {
    const started = await call("/v1/admin/vapid/rotate", { method: "POST", headers: ADMIN });
    expect(started.status).toBe(202);
    const { pending_public_key: next } = await started.json<{ pending_public_key: string }>();
    await vi.waitFor(async () => expect((await vapid()).public_key).toBe(next), { timeout: 10_000, interval: 50 });
    return next;
  };
  const notify = async (tenantId: string, token: string, topic: string) => {
    await call("/v1/notify", { method: "POST", headers: bearer(token), json: { topic } });
    await runDurableObjectAlarm(topicHub(env, tenantId, topic));
  };

  it("signs each subscription with the key it was made with, tells each with its own key, and keeps keys in use", async () => {
    const tenant = await createTenant();
    const first = await vapid().then((v) => v.public_key);
    // made while `first` signs; one of them from before keys were bound (NULL)
    const early = await pushService.subscriber({ kind: "accept" }, first);
    const legacy = await pushService.subscriber({ kind: "accept" }, first);
    await registerSubscriber(tenant, "k", early);
    await registerSubscriber(tenant, "k", legacy);
    expect(await keyOf(early.endpoint)).toBe(first);
    await env.DB.prepare("UPDATE subscriptions SET vapid_public_key = NULL WHERE identifier = ?").bind(legacy.endpoint).run();

    const second = await rotate();
    // the rotation message reached both, signed with their own (outgoing) key; the unbound one is bound to it
    for (const s of [early, legacy]) expect((await pushService.wait(s.id, 1)).received[0].xml).toBe(ROTATION_XML);
    expect(await keyOf(legacy.endpoint)).toBe(first);
    // re-registering the same push resource keeps its key; a new one gets the current key
    await registerSubscriber(tenant, "k", early);
    expect(await keyOf(early.endpoint)).toBe(first);
    const middle = await pushService.subscriber({ kind: "accept" }, second);
    await registerSubscriber(tenant, "k", middle);
    expect(await keyOf(middle.endpoint)).toBe(second);

    const third = await rotate();
    expect((await pushService.wait(middle.id, 1)).received[0].xml).toBe(ROTATION_XML);
    const late = await pushService.subscriber({ kind: "accept" }, third);
    await registerSubscriber(tenant, "k", late);
    const retired = (await vapid()).retired;
    expect(retired.map((r) => r.public_key)).toEqual(expect.arrayContaining([first, second]));
    expect(retired.find((r) => r.public_key === second)!.subscriptions).toBe(1);

    await notify(tenant.id, tenant.notify_token, "k");
    for (const [s, count] of [[early, 3], [legacy, 3], [middle, 2], [late, 1]] as const) {
      const { received } = await pushService.wait(s.id, count);
      expect(received.at(-1)!.xml).toContain("<topic>k</topic>");
    }
    expect(await pushService.errors()).toEqual([]);

    // the cron drops a retired key once nothing is bound to it
    await env.DB.prepare("UPDATE subscriptions SET vapid_public_key = ? WHERE vapid_public_key = ?").bind(third, second).run();
    await purge(env);
    expect((await vapid()).retired.map((r) => r.public_key)).not.toContain(second);
  }, 30_000);

  it("resends once with the current key when a subscription on a retired key is refused with 401/403, and rebinds it if accepted", async () => {
    const tenant = await createTenant();
    const { public_key: current, retired } = await vapid();
    const moved = await pushService.subscriber({ kind: "accept", wrongKey: 403 }, current);
    const registration = await registerSubscriber(tenant, "r", moved);
    await env.DB.prepare("UPDATE subscriptions SET vapid_public_key = ? WHERE identifier = ?").bind(retired[0].public_key, moved.endpoint).run();
    const job: DeliveryJob = {
      tenantId: tenant.id,
      message: { xml: "<push-message/>", ttl: 60, urgency: "normal", topic: null },
      targets: [await queuedTarget(registration.id)],
      attempt: 1,
    };
    expect(await deliver([job], env, transportsFor(env))).toEqual([null]);
    expect(await pushService.received(moved.id)).toMatchObject({ attempts: 2, received: [{ xml: "<push-message/>" }] });
    expect(await keyOf(moved.endpoint)).toBe(current);
  });
});
