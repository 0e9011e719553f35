// The PushService contract, once for every service of src/transports/index.ts (issue 16 item 1):
// an entry registered through the API is stored, queued in its service's form with its secret
// still sealed, opened, and sent by its sender to its stand-in, which accepts it. A service added
// to the table without an entry here fails the first test.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { openTarget } from "../../src/queues/deliveries";
import { targetFor } from "../../src/queues/fanout";
import { existingSubscriptions } from "../../src/store/subscriptions";
import { deliverableFor, PUSH_SERVICE_TABLE, serviceOf } from "../../src/transports";
import type { PushMessage } from "../../src/transports/transport";
import { keyringOf } from "../../src/crypto/sealed";
import { currentVapidKeys } from "../../src/store/vapid-keys";
import { createTenant, fcmService, hmsEnv, hmsService, ORIGIN, pushService } from "../helpers";

const message: PushMessage = { xml: "<push-message/>", ttl: 600, urgency: "normal", topic: null, data: { topic: "cal", sync_token: "s-1" } };

/** Per service: an entry its stand-in accepts, the secrets in it, and how many messages the stand-in then holds for it. */
interface Case {
  push_services: Record<string, unknown>;
  secrets: string[];
  received: () => Promise<number>;
}
const cases: Record<string, () => Promise<Case>> = {
  async web_push() {
    const s = await pushService.subscriber();
    return {
      push_services: { web_push: { endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } } },
      secrets: [s.auth],
      received: async () => (await pushService.received(s.id)).received.length,
    };
  },
  async fcm() {
    const token = await fcmService.token();
    return { push_services: { fcm: { registration_token: token, platform: "ios" } }, secrets: [token], received: async () => ((await fcmService.state()).received[token] ?? []).length };
  },
  async hms() {
    const token = await hmsService.token();
    return { push_services: { hms: { token } }, secrets: [token], received: async () => ((await hmsService.state()).received[token] ?? []).length };
  },
};

describe("the PushService contract", () => {
  it("has a case here for every service of the table, each configured in the test env", () => {
    expect(PUSH_SERVICE_TABLE.map((s) => s.transport).sort()).toEqual(Object.keys(cases).sort());
    for (const service of PUSH_SERVICE_TABLE) expect(service.configured(hmsEnv()), service.transport).toBe(true);
  });

  it.each(PUSH_SERVICE_TABLE.map((s) => [s.transport]))("%s: registered, queued sealed, opened and sent: accepted once", async (transport) => {
    const over = { ...hmsEnv(), ALLOW_INSECURE_PUSH_RESOURCES: "true" };
    const tenant = await createTenant();
    const given = await cases[transport]();
    const response = await app.fetch(
      new Request(`${ORIGIN}/v1/subscriptions`, {
        method: "POST",
        headers: { Authorization: `Bearer ${tenant.notify_token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ topic: "cal", push_services: given.push_services }),
      }),
      over,
    );
    expect(response.status).toBe(201);
    const registration = await response.json<{ id: string }>();
    const row = (await env.DB.prepare("SELECT subscription_id FROM registrations WHERE id = ?").bind(registration.id).first<{ subscription_id: number }>())!;
    const [stored] = await existingSubscriptions(env.DB, [row.subscription_id]);
    expect(stored.transport).toBe(transport);

    const queued = targetFor({ ...stored, subscription_id: stored.id }, tenant.id, deliverableFor(over));
    expect(queued).not.toBeNull();
    // nothing on the queue holds a secret in clear
    for (const secret of given.secrets) expect(JSON.stringify(queued)).not.toContain(secret);
    const opened = await openTarget(() => keyringOf(env), queued!, env, transport);
    if (!("opened" in opened)) throw new Error(`not opened: ${JSON.stringify(opened.outcome)}`);
    const service = serviceOf(transport);
    const sender = service.sender(over, service.vapid ? { vapid: await currentVapidKeys(env) } : undefined);
    const [outcome] = await sender.send([opened.opened], message);
    expect(outcome.kind).toBe("delivered");
    expect(await given.received()).toBe(1);
  });
});
