// VAPID key rotation (the draft's Key Rotation) through the real queues to the stand-in push
// service, which only accepts each subscription's own key. In a file of its own: it changes the
// key for everything else in the same storage.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { topicHub } from "../../src/hub/topic-hub";
import { ADMIN, bearer, call, createTenant, pushService, registerSubscriber } from "../helpers";

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
      async () => expect(await (await call("/v1/admin/vapid", { headers: ADMIN })).json()).toEqual({ public_key: newKey, pending_public_key: null }),
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
