// Delivery end to end (issue 11), through `npm start`: a flaky push service (seeded: 30 % of tries
// 503, 10 % 429 + Retry-After: 1) still gets every message exactly once, gone subscriptions are
// pruned, nothing is dead-lettered; a refusing (403) push service is asked once per message and its
// registration says so; a Retry-After past the TTL is a dead letter at once, and its retry arrives;
// after a VAPID key rotation each subscription is signed with its own key, and a test push answers.
import { describe, it, vi } from "vitest";
import { flakyAnswer, PushService, type Attempt, type Behaviour, type SubscriberInfo } from "../support/push-service";
import { api, startDirector, type Director } from "./director";

type Tenant = { id: string; notify_token: string };

async function newTenant(director: Director, name: string): Promise<Tenant> {
  const created = await api(director, "/v1/admin/tenants", director.adminToken, { json: { name } });
  if (created.status !== 201) throw new Error(`creating a tenant: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body;
}

/** Registers a push resource for a topic with the notify token; answers the registration JSON. */
async function subscribe(director: Director, tenant: Tenant, topic: string, s: SubscriberInfo) {
  const response = await api(director, "/v1/subscriptions", tenant.notify_token, {
    json: { topic, push_services: { web_push: { endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } } } },
  });
  if (response.status !== 201) throw new Error(`subscribing to ${topic}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

/** Every live registration of the tenant, page by page. */
async function allRegistrations(director: Director, tenant: Tenant): Promise<Array<Record<string, any>>> {
  const rows: Array<Record<string, any>> = [];
  let cursor: string | null = null;
  do {
    const page = await api(director, `/v1/registrations?limit=100${cursor === null ? "" : `&cursor=${cursor}`}`, tenant.notify_token);
    if (page.status !== 200) throw new Error(`listing registrations: ${page.status} ${JSON.stringify(page.body)}`);
    rows.push(...page.body.registrations);
    cursor = page.body.next_cursor;
  } while (cursor !== null);
  return rows;
}

const deadLetters = async (director: Director, tenant: Tenant) =>
  (await api(director, `/v1/admin/dead-letters?tenant=${tenant.id}`, director.adminToken)).body.dead_letters as Array<Record<string, any>>;

const topicOf = (xml: string) => /<topic>([^<]*)<\/topic>/.exec(xml)?.[1] ?? null;

const syncMessage = (topic: string, syncToken: string) =>
  '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:">' +
  `<topic>${topic}</topic><content-update><D:sync-token>${syncToken}</D:sync-token></content-update></push-message>`;

/** The retry schedule's backoff before jitter, after failed attempt n (1-based): 1, 5, 15, 30, 60, 120, 240, 300 … */
const backoff = (n: number) => (n <= 4 ? [1, 5, 15, 30][n - 1] : Math.min(300, 30 * 2 ** (n - 4)));

/**
 * 47 flaky subscribers × 3 topics, subscriber i seeded FLAKY_SEED + i. With this seed the worst
 * message meets 503 six times (the planned answers are checked below): tries at ≈ 0, 1, 6, 21, 51,
 * 111, 231 s, the whole schedule of issue 11. Some seeds need an 8th try (≈ 471 s): not this one.
 */
const FLAKY_SEED = 19_000;
const JITTER = 0.2;

/** A flaky message's planned answers until accepted, and when the last comes on the nominal schedule. */
function plan(behaviour: Extract<Behaviour, { kind: "flaky" }>, xml: string): { statuses: number[]; seconds: number } {
  const statuses: number[] = [];
  let seconds = 0;
  for (let n = 0; statuses.at(-1) !== 201; n++) {
    const answer = flakyAnswer(behaviour, xml, n);
    statuses.push(answer.status);
    if (answer.status !== 201) seconds += answer.retryAfter ?? backoff(n + 1);
  }
  return { statuses, seconds };
}

describe("delivery through wrangler dev", () => {
  it.concurrent(
    "a flaky push service gets every message exactly once; gone subscriptions are pruned; no dead letters",
    async ({ expect }) => {
      const [director, service] = await Promise.all([startDirector(), new PushService().start()]);
      try {
        service.vapidPublicKey = director.vars.VAPID_PUBLIC_KEY;
        const tenant = await newTenant(director, "flaky");
        const topics = ["flaky-a", "flaky-b", "flaky-c"];
        const gone = Array.from({ length: 3 }, () => service.addSubscriber({ kind: "gone" }));
        const behaviours = Array.from({ length: 47 }, (_, i) => ({ kind: "flaky", seed: FLAKY_SEED + i }) as const);
        const live = behaviours.map((behaviour) => service.addSubscriber(behaviour));
        const planned = new Map(
          live.flatMap((s, i) => topics.map((topic) => [`${s.id} ${topic}`, plan(behaviours[i], syncMessage(topic, `https://dav.example/${topic}/1`))] as const)),
        );
        const worstPlanned = Math.max(...[...planned.values()].map((p) => p.seconds));
        // the worst message's whole schedule at +20 % jitter, and a little for the queues
        const waitMs = (worstPlanned * (1 + JITTER) + 30) * 1000;
        console.log(
          `flaky plan (seed ${FLAKY_SEED}): ${[...planned.values()].reduce((n, p) => n + p.statuses.length, 0)} tries, at most ${Math.max(...[...planned.values()].map((p) => p.statuses.length))} for a message, the last due at ≈ ${worstPlanned} s (waiting up to ${waitMs / 1000} s)`,
        );
        await Promise.all([...gone, ...live].map(async (s) => {
          for (const topic of topics) await subscribe(director, tenant, topic, s);
        }));
        expect((await api(director, `/v1/admin/tenants/${tenant.id}`, director.adminToken)).body.counts).toEqual({ subscriptions: 50, registrations: 150 });

        const started = Date.now();
        for (const topic of topics) {
          const notified = await api(director, "/v1/notify", tenant.notify_token, { json: { topic, content_update: { sync_token: `https://dav.example/${topic}/1` } } });
          expect(notified.status).toBe(202);
        }

        const total = live.length * topics.length;
        const delivered = () => live.reduce((n, s) => n + service.received(s.id).length, 0);
        const waited = await service
          .waitUntil(() => delivered() >= total && gone.every((s) => service.attempts(s.id) >= 1), waitMs)
          .then(() => null, (error: Error) => error);

        // the figures, also when the wait ran out
        const tries = new Map<string, Attempt[]>(); // by subscriber and topic
        let lastArrival = started;
        for (const s of live) {
          for (const attempt of service.history(s.id)) {
            const key = `${s.id} ${topicOf(attempt.message?.xml ?? "")}`;
            tries.set(key, [...(tries.get(key) ?? []), attempt]);
            if (attempt.status === 201) lastArrival = Math.max(lastArrival, attempt.at);
          }
        }
        const perMessage = [...tries.values()].map((list) => list.length);
        const distribution: Record<number, number> = {};
        for (const n of perMessage) distribution[n] = (distribution[n] ?? 0) + 1;
        const duplicates = [...tries.values()].reduce((n, list) => n + Math.max(0, list.filter((a) => a.status === 201).length - 1), 0);
        // how long each failure held its message back: 429 + Retry-After: 1 vs the 503 backoff by attempt number
        const gaps: Record<string, number[]> = {};
        for (const list of tries.values()) {
          list.slice(0, -1).forEach((attempt, i) => {
            const label = attempt.status === 429 ? "429" : `503 #${i + 1}`;
            (gaps[label] ??= []).push((list[i + 1].at - attempt.at) / 1000);
          });
        }
        const worst = [...tries.values()].reduce((a, b) => (b.length > a.length ? b : a), []);
        console.log(
          [
            `flaky run (seed ${FLAKY_SEED}): delivered ${delivered()}/${total} in ${((lastArrival - started) / 1000).toFixed(1)} s to the last arrival`,
            `requests: ${service.requests}; tries per message: ${JSON.stringify(distribution)}; max ${Math.max(...perMessage)}; duplicates ${duplicates}`,
            `worst message: ${worst.map((a) => `${a.status}@${((a.at - worst[0].at) / 1000).toFixed(1)}s`).join(", ")}`,
            ...Object.entries(gaps)
              .sort()
              .map(([label, list]) => `  after ${label}: ${list.length} retries, ${Math.min(...list).toFixed(1)}–${Math.max(...list).toFixed(1)} s`),
          ].join("\n"),
        );
        if (waited !== null) throw waited;

        expect(service.errors).toEqual([]);
        for (const s of live) {
          const received = service.received(s.id);
          expect(received.map((m) => m.xml).sort()).toEqual(topics.map((topic) => syncMessage(topic, `https://dav.example/${topic}/1`)));
          // each retry carries the time the message has left, never more than the default day
          for (const m of received) expect(m.ttl).toBeLessThanOrEqual(86_400);
        }
        expect(duplicates).toBe(0);
        // each message met exactly its planned answers: retried after every temporary failure, never once more
        for (const [key, list] of tries) expect(list.map((a) => a.status), key).toEqual(planned.get(key as `${string} ${string}`)!.statuses);
        // a 429's Retry-After (1 s) is honoured, a 503 waits its backoff (±20 % jitter): neither early, nor forgotten (10 s of slack for a loaded machine)
        for (const [label, list] of Object.entries(gaps)) {
          const base = label === "429" ? 1 : backoff(Number(label.slice(5)));
          expect(Math.min(...list), label).toBeGreaterThanOrEqual(label === "429" ? 1 : base * (1 - JITTER) - 0.5);
          expect(Math.max(...list), label).toBeLessThanOrEqual((label === "429" ? 1 : base * (1 + JITTER)) + 10);
        }
        // a gone push resource is asked at most once per topic: the three messages may be under way before its first 410 is recorded
        for (const s of gone) {
          const asked = service.history(s.id);
          expect(asked.map((a) => a.status)).toEqual(asked.map(() => 410));
          expect(new Set(asked.map((a) => topicOf(a.message!.xml))).size).toBe(asked.length);
        }
        console.log(`gone subscribers were asked ${gone.map((s) => service.attempts(s.id)).join(", ")} times`);

        expect(await deadLetters(director, tenant)).toEqual([]);
        const goneEndpoints = new Set(gone.map((s) => s.endpoint));
        await vi.waitFor(
          async () => {
            const rows = await allRegistrations(director, tenant);
            expect(rows.filter((r) => goneEndpoints.has(r.push_resource))).toEqual([]);
            expect(rows).toHaveLength(150 - 9);
          },
          { timeout: 10_000, interval: 200 },
        );
        expect((await api(director, `/v1/admin/tenants/${tenant.id}`, director.adminToken)).body.counts).toEqual({ subscriptions: 47, registrations: 141 });
      } finally {
        await Promise.all([director.stop(), service.stop()]);
      }
    },
    420_000,
  );

  it.concurrent("a refusing push service is asked once per message; a Retry-After past the TTL is a dead letter at once, and its retry arrives", async ({ expect }) => {
    const [director, service] = await Promise.all([startDirector(), new PushService().start()]);
    try {
      service.vapidPublicKey = director.vars.VAPID_PUBLIC_KEY;
      const tenant = await newTenant(director, "refusals");

      // 403: recorded on the registration, never retried
      const refusing = service.addSubscriber({ kind: "status", status: 403, body: "subscription revoked by the user" });
      const registration = await subscribe(director, tenant, "refused", refusing);
      for (const n of [1, 2]) {
        const notified = await api(director, "/v1/notify", tenant.notify_token, { json: { topic: "refused", content_update: { sync_token: `https://dav.example/refused/${n}` } } });
        expect(notified.status).toBe(202);
        await service.waitUntil(() => service.attempts(refusing.id) >= n, 20_000);
      }
      const noRetry = await service.waitUntil(() => service.attempts(refusing.id) > 2, 8_000).then(() => "retried", () => "not retried");
      expect(noRetry).toBe("not retried");
      expect(service.history(refusing.id).map((a) => [a.status, a.message?.xml])).toEqual([
        [403, syncMessage("refused", "https://dav.example/refused/1")],
        [403, syncMessage("refused", "https://dav.example/refused/2")],
      ]);
      let delivery: Record<string, any> = {};
      await vi.waitFor(
        async () => {
          const shown = await api(director, `/v1/registrations/${registration.id}`, tenant.notify_token);
          expect(shown.status).toBe(200);
          delivery = shown.body.delivery;
          expect(delivery).toMatchObject({ consecutive_failures: 2, last_failure: { status: 403 }, last_success_at: null, next_attempt_at: null });
        },
        { timeout: 10_000, interval: 200 },
      );
      console.log(`403 registration's delivery: ${JSON.stringify(delivery)}`);
      expect(delivery.last_failure.reason).toContain("subscription revoked by the user");
      expect(delivery.failing_since).toEqual(expect.any(Number));

      // 503 + Retry-After: 3600 on a 60 s message: a dead letter at once, saying why
      const unavailable = service.addSubscriber({ kind: "unavailable", times: 1_000, retryAfter: 3600 });
      await subscribe(director, tenant, "short-lived", unavailable);
      const notifiedAt = Date.now();
      const notified = await api(director, "/v1/notify", tenant.notify_token, { json: { topic: "short-lived", content_update: { sync_token: "https://dav.example/short/1" }, ttl: 60 } });
      expect(notified.status).toBe(202);
      let letters: Array<Record<string, any>> = [];
      await vi.waitFor(
        async () => {
          letters = await deadLetters(director, tenant);
          expect(letters).toHaveLength(1);
        },
        { timeout: 10_000, interval: 200 },
      );
      console.log(`dead letter after ${((Date.now() - notifiedAt) / 1000).toFixed(1)} s: ${JSON.stringify(letters[0].reason)}`);
      expect(letters[0].reason).toMatch(/^503; Retry-After 3600 s is past the TTL \(\d+ s left\)$/);
      expect(service.attempts(unavailable.id)).toBe(1);

      service.setBehaviour(unavailable.id, { kind: "accept" });
      const retried = await api(director, `/v1/admin/dead-letters/${letters[0].id}/retry`, director.adminToken, { method: "POST" });
      expect(retried).toMatchObject({ status: 202, body: { id: letters[0].id, queued: 1 } });
      await service.waitUntil(() => service.received(unavailable.id).length >= 1, 20_000);
      const [arrived] = service.received(unavailable.id);
      expect(arrived.xml).toBe(syncMessage("short-lived", "https://dav.example/short/1"));
      // a fresh lifetime of its TTL
      expect(arrived.ttl).toBeGreaterThan(50);
      expect(arrived.ttl).toBeLessThanOrEqual(60);
      expect(await deadLetters(director, tenant)).toEqual([]);
      expect(service.errors).toEqual([]);
    } finally {
      await Promise.all([director.stop(), service.stop()]);
    }
  });

  it.concurrent("after a VAPID key rotation each subscription is signed with its own key; a test push answers", async ({ expect }) => {
    // no service-wide key: each subscriber accepts only the key it was made with (anything else is an error)
    const [director, service] = await Promise.all([startDirector(), new PushService().start()]);
    try {
      const tenant = await newTenant(director, "rotation");
      const before = (await api(director, "/v1/admin/vapid", director.adminToken)).body;
      const oldKey: string = before.public_key;
      expect(oldKey).toBe(director.vars.VAPID_PUBLIC_KEY);

      const early = service.addSubscriber({ kind: "accept" }, oldKey);
      const earlyRegistration = await subscribe(director, tenant, "rotating", early);
      expect(earlyRegistration.vapid_public_key).toBe(oldKey);

      const rotated = await api(director, "/v1/admin/vapid/rotate", director.adminToken, { method: "POST" });
      expect(rotated.status).toBe(202);
      const newKey: string = rotated.body.pending_public_key;
      expect(newKey).not.toBe(oldKey);
      let vapid: Record<string, any> = {};
      await vi.waitFor(
        async () => {
          vapid = (await api(director, "/v1/admin/vapid", director.adminToken)).body;
          expect(vapid).toMatchObject({ public_key: newKey, pending_public_key: null });
        },
        { timeout: 30_000, interval: 200 },
      );
      console.log(`after the rotation: ${JSON.stringify(vapid)}`);
      expect(vapid.retired).toEqual([{ public_key: oldKey, subscriptions: 1 }]);

      const late = service.addSubscriber({ kind: "accept" }, newKey);
      const lateRegistration = await subscribe(director, tenant, "rotating", late);
      expect(lateRegistration.vapid_public_key).toBe(newKey);

      const notified = await api(director, "/v1/notify", tenant.notify_token, { json: { topic: "rotating", content_update: { sync_token: "https://dav.example/rotating/1" } } });
      expect(notified.status).toBe(202);
      await service.waitUntil(() => service.received(early.id).length >= 2 && service.received(late.id).length >= 1, 30_000);

      const message = syncMessage("rotating", "https://dav.example/rotating/1");
      const earlyXml = service.received(early.id).map((m) => m.xml);
      const rotation = earlyXml.filter((xml) => xml !== message);
      expect(earlyXml.filter((xml) => xml === message)).toHaveLength(1);
      expect(rotation).toHaveLength(1);
      expect(rotation[0]).toContain("transports");
      expect(topicOf(rotation[0])).toBeNull();
      expect(service.received(late.id).map((m) => m.xml)).toEqual([message]);
      // every try passed the push service's key check: the early one signed with the old key, the late one with the new
      expect(service.errors).toEqual([]);
      expect([...service.history(early.id), ...service.history(late.id)].map((a) => a.status)).toEqual([201, 201, 201]);

      for (const [name, s, registration] of [["early (old key)", early, earlyRegistration], ["late (new key)", late, lateRegistration]] as const) {
        const tested = await api(director, `/v1/registrations/${registration.id}/test`, tenant.notify_token, { method: "POST" });
        console.log(`test push to the ${name} subscription: ${tested.status} ${JSON.stringify(tested.body)}`);
        expect(tested).toMatchObject({ status: 200, body: { outcome: "delivered", status: 201, ms: expect.any(Number) } });
        const last = service.received(s.id).at(-1)!;
        expect(last.xml).toBe(
          '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:"><topic>rotating</topic><content-update/></push-message>',
        );
        expect([last.ttl, last.topic]).toEqual([60, null]);
      }
      expect(service.errors).toEqual([]);
    } finally {
      await Promise.all([director.stop(), service.stop()]);
    }
  });
});
