import { env, exports } from "cloudflare:workers";
import { app } from "../src/app";
import type { Change } from "../src/hub/change";
import type { QueuedWebPushTarget } from "../src/transports/web-push";
import type { Keyring } from "../src/crypto/sealed";
import { resealPage, SEALED_TABLES } from "../src/store/sealed-columns";
import { PUSH_NS } from "../src/xml/escape";
import { SignJWT } from "jose";

export const ORIGIN = "https://director.test";
export const ADMIN = { Authorization: "Bearer test-admin-token" };

/** Calls the Worker under test (its real fetch handler, bindings and all). */
export function call(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  }
  return exports.default.fetch(new Request(`${ORIGIN}${path}`, { ...init, headers, body }));
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

export interface TestTenant {
  id: string;
  name: string;
  notify_token: string;
  grant_secret: string;
}

export async function createTenant(name = "caldav.example"): Promise<TestTenant> {
  const response = await call("/v1/admin/tenants", { method: "POST", headers: ADMIN, json: { name } });
  if (response.status !== 201) throw new Error(`tenant creation answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/** A client grant as a tenant mints it: HS256 with the tenant's grant secret. */
export function grant(
  tenant: Pick<TestTenant, "id" | "grant_secret">,
  claims: Record<string, unknown> = {},
  options: { expiresIn?: string | number; secret?: string; sub?: string } = {},
): Promise<string> {
  const jwt = new SignJWT({ topics: ["topic-1"], ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(tenant.id)
    .setSubject(options.sub ?? "alice")
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "1h");
  return jwt.sign(new TextEncoder().encode(options.secret ?? tenant.grant_secret));
}

const b64url = (bytes: ArrayBuffer | Uint8Array) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** A user agent's Web Push keys (RFC 8291 §3): a fresh P-256 public key and a 16-byte auth secret. */
export async function userAgentKeys(): Promise<{ p256dh: string; auth: string }> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
  const raw = (await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer;
  return { p256dh: b64url(raw), auth: b64url(crypto.getRandomValues(new Uint8Array(16))) };
}

let counter = 0;
/** A Web Push subscription body for the JSON Subscription API. */
export async function webPushBody(topic = "topic-1", extra: Record<string, unknown> = {}) {
  return {
    client_id: "client-1",
    topic,
    push_services: {
      web_push: { endpoint: `https://push.example.net/push/${++counter}-${crypto.randomUUID()}`, keys: await userAgentKeys() },
    },
    ...extra,
  };
}

/** The stand-in push service of this run (test/support/push-service.ts), over its control API. */
export const pushService = {
  async subscriber(behaviour: unknown = { kind: "accept" }, vapidPublicKey?: string): Promise<{ id: string; endpoint: string; p256dh: string; auth: string }> {
    const response = await fetch(`${env.TEST_PUSH_SERVICE}/_subscribers`, { method: "POST", body: JSON.stringify({ behaviour, vapidPublicKey }) });
    return response.json();
  },
  /** Waits (long poll) until the subscriber has `count` messages and `attempts` requests. */
  async wait(id: string, count = 1, attempts = 0): Promise<{ received: ReceivedMessage[]; attempts: number }> {
    return (await fetch(`${env.TEST_PUSH_SERVICE}/_wait?id=${id}&count=${count}&attempts=${attempts}`)).json();
  },
  async received(id: string): Promise<{ received: ReceivedMessage[]; attempts: number }> {
    return (await fetch(`${env.TEST_PUSH_SERVICE}/_received?id=${id}`)).json();
  },
  async errors(): Promise<string[]> {
    return ((await (await fetch(`${env.TEST_PUSH_SERVICE}/_errors`)).json()) as { errors: string[] }).errors;
  },
};

/** A message the FCM stand-in accepted (test/support/fcm-service.ts): its data, and the platform block it carried. */
export type FcmReceivedMessage =
  | { platform: "android"; data: Record<string, string>; android: Record<string, string> }
  | { platform: "ios"; data: Record<string, string>; apns: { headers: Record<string, string>; payload: unknown } }
  | { platform: "topic"; topic: string; data: Record<string, string>; android: Record<string, string>; apns: { headers: Record<string, string>; payload: unknown } };

/** The OAuth + FCM stand-in of this run (test/support/fcm-service.ts), over its control API. */
export const fcmService = {
  /** A registration token it answers as `behaviour` says (accept, unregistered, invalid, …). */
  async token(behaviour = "accept"): Promise<string> {
    return ((await (await fetch(`${env.TEST_FCM_SERVICE}/_tokens`, { method: "POST", body: JSON.stringify({ behaviour }) })).json()) as { token: string }).token;
  },
  async state(): Promise<{
    received: Record<string, FcmReceivedMessage[]>;
    attempts: Record<string, number>;
    redirected: Record<string, number>;
    errors: string[];
    tokensIssued: number;
    /** Each FCM topic's members. */
    topics: Record<string, string[]>;
    membershipRequests: { action: "batchAdd" | "batchRemove"; topic: string; tokens: string[] }[];
    /** messages:send requests answered so far, per token and per topic. */
    sendRequests: number;
    topicMessages: Record<string, number>;
  }> {
    return (await fetch(`${env.TEST_FCM_SERVICE}/_state`)).json();
  },
  revoke: () => fetch(`${env.TEST_FCM_SERVICE}/_revoke`, { method: "POST" }),
};

/** The env with HMS configured against its stand-in (test/support/hms-service.ts). */
export const hmsEnv = (): Env => ({ ...env, HMS_APP_ID: env.TEST_HMS_APP_ID, HMS_CLIENT_SECRET: env.TEST_HMS_CLIENT_SECRET });

/** The OAuth + Push Kit stand-in of this run (test/support/hms-service.ts), over its control API. */
export const hmsService = {
  /** A token it answers as `behaviour` says (accept, illegal, busy-once, unavailable-once). */
  async token(behaviour = "accept"): Promise<string> {
    return ((await (await fetch(`${env.TEST_HMS_SERVICE}/_tokens`, { method: "POST", body: JSON.stringify({ behaviour }) })).json()) as { token: string }).token;
  },
  async state(): Promise<{
    received: Record<string, { data: Record<string, string>; urgency: string; ttl: string }[]>;
    attempts: Record<string, number>;
    requests: string[][];
    errors: string[];
    tokensIssued: number;
  }> {
    return (await fetch(`${env.TEST_HMS_SERVICE}/_state`)).json();
  },
  revoke: () => fetch(`${env.TEST_HMS_SERVICE}/_revoke`, { method: "POST" }),
  /** The next send is answered so, whatever it holds. */
  answerNext: (status: number, body: string) => fetch(`${env.TEST_HMS_SERVICE}/_answer`, { method: "POST", body: JSON.stringify({ status, body }) }),
};

export interface ReceivedMessage {
  xml: string;
  ttl: number;
  urgency: string | null;
  topic: string | null;
  contentType: string | null;
  claims: Record<string, unknown>;
}

/** Registers a stand-in subscriber for a topic (insecure mode lets its http://127.0.0.1 URL in). */
export async function registerSubscriber(
  tenant: TestTenant,
  topic: string,
  subscriber: { endpoint: string; p256dh: string; auth: string },
  trigger?: unknown,
): Promise<{ id: string; url: string }> {
  const response = await app.fetch(
    new Request(`${ORIGIN}/v1/subscriptions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${tenant.notify_token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        topic,
        push_services: { web_push: { endpoint: subscriber.endpoint, keys: { p256dh: subscriber.p256dh, auth: subscriber.auth } } },
        ...(trigger === undefined ? {} : { trigger }),
      }),
    }),
    { ...env, ALLOW_INSECURE_PUSH_RESOURCES: "true" },
  );
  if (response.status !== 201) throw new Error(`registration answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/** A normalised change (src/hub/change.ts) with nothing set but what `over` says. */
export const change = (over: Partial<Change>): Change => ({
  topic: "t",
  contentUpdate: null,
  propertyUpdate: null,
  urgency: "normal",
  ttl: null,
  dontNotify: [],
  ...over,
});

/** A Web Push target as fan-out queues it: read from D1, its `auth` still sealed. */
export async function queuedTarget(registrationId: string): Promise<QueuedWebPushTarget> {
  const row = await env.DB.prepare(
    `SELECT s.id, s.tenant_id, s.identifier, s.p256dh, s.auth FROM registrations r JOIN subscriptions s ON s.id = r.subscription_id WHERE r.id = ?`,
  )
    .bind(registrationId)
    .first<{ id: number; tenant_id: string; identifier: string; p256dh: string; auth: string }>();
  if (row === null) throw new Error(`no registration ${registrationId}`);
  return { subscriptionId: row.id, tenantId: row.tenant_id, endpoint: row.identifier, p256dh: row.p256dh, sealedAuth: row.auth };
}

/** Re-seals every table at once, as the queued rotation does page by page. */
export async function resealAll(db: D1Database, keyring: Keyring): Promise<void> {
  for (const table of SEALED_TABLES) for (let after: string | null = ""; after !== null; ) after = (await resealPage(db, keyring, table, after)).next;
}

/** A keyless subscriber of the stand-in push service (a UnifiedPush endpoint without keys): it takes plain messages only. */
export async function keylessSubscriber(behaviour: unknown = { kind: "accept" }): Promise<{ id: string; endpoint: string }> {
  const response = await fetch(`${env.TEST_PUSH_SERVICE}/_subscribers`, { method: "POST", body: JSON.stringify({ behaviour, keyless: true }) });
  return response.json();
}

/** A plain message as a keyless subscriber received it, with what the draft's RELAX NG schema says of it (null: valid). */
export interface PlainReceivedMessage extends ReceivedMessage {
  schemaError: string | null;
}

/** The JSON Subscription API called with `env` changed (say, `REQUIRE_ENCRYPTION`), as the Worker would run with those vars. */
export function subscribeWith(over: Partial<Env>, token: string, json: unknown, path = "/v1/subscriptions"): Promise<Response> {
  return Promise.resolve(
    app.fetch(
      new Request(`${ORIGIN}${path}`, { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify(json) }),
      { ...env, ...over },
    ),
  );
}

/**
 * The draft's push-register for a Web Push subscription at `endpoint` (keys made up unless
 * given), asking for content updates at depth 1 unless `trigger` (the inner XML of <trigger>,
 * DAV: as D) says otherwise.
 */
export async function pushRegisterXml(endpoint: string, known?: { p256dh: string; auth: string }, trigger = "<content-update><D:depth>1</D:depth></content-update>"): Promise<string> {
  const keys = known ?? (await userAgentKeys());
  return (
    `<?xml version="1.0" encoding="utf-8"?><push-register xmlns="${PUSH_NS}" xmlns:D="DAV:"><subscription><web-push-subscription>` +
    `<push-resource>${endpoint}</push-resource><content-encoding>aes128gcm</content-encoding>` +
    `<subscription-public-key type="p256dh">${keys.p256dh}</subscription-public-key><auth-secret>${keys.auth}</auth-secret>` +
    `</web-push-subscription></subscription><trigger>${trigger}</trigger></push-register>`
  );
}
