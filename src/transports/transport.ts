/**
 * What every push service shares: the one contract (`PushService`), a message to send and the
 * outcome of sending it.
 */
import type { z } from "zod";
import type { Keyring } from "../crypto/sealed";
import type { Urgency } from "../hub/change";
import type { RecipientRow } from "../store/registrations";
import type { FcmPlatform, PushServiceName, SubscriptionInput, Transport } from "../store/subscriptions";

/** A push message as the transports send it: the draft's XML plus RFC 8030 delivery hints. */
export interface PushMessage {
  xml: string;
  /** RFC 8030 §5.2, seconds (> 0). */
  ttl: number;
  /** RFC 8030 §5.3. */
  urgency: Urgency;
  /** RFC 8030 §5.4 `Topic`: ≤ 32 base64url characters; null for none. */
  topic: string | null;
  /** The message as string fields, for transports that carry data rather than the XML alone (FCM). */
  data?: { topic?: string; sync_token?: string };
  /**
   * The smallest form of the same message (the topic and an empty `<content-update/>` or
   * `<property-update/>`), resent at once when a push service answers 413.
   */
  smallestXml?: string;
}

/**
 * What one send came to (issue 11's outcome table; FCM maps onto it). `status` is the push
 * service's HTTP status, null when there was no answer.
 */
export type Outcome =
  | { kind: "delivered"; status: number }
  /** The subscription no longer exists (404/410): remove it. */
  | { kind: "gone"; status: number; reason: string }
  /**
   * Worth another try (429, 408, 5xx, network error, no answer in time): after `afterSeconds` when
   * the service said so, else with backoff. `timeout`: no answer in time, so the origin is slow.
   * `director`: the fault is the director's own (a secret missing), not the subscription's.
   */
  | { kind: "retry"; status: number | null; afterSeconds: number | null; reason: string; timeout?: boolean; director?: boolean }
  /** 413: the message is too large for this push service; the smallest form may pass. */
  | { kind: "too_large"; status: 413; reason: string }
  /**
   * Refused (400, 401, 403, other 4xx, any 3xx): trying again unchanged would not help; recorded
   * on the subscription, never a dead letter. `director`: our fault (FCM not configured).
   */
  | { kind: "failed"; status: number | null; reason: string; director?: boolean };

/** A push service's body quoted in a reason: at most this many characters. */
export const MAX_QUOTED_BODY = 200;

/** `reason` with ≤ MAX_QUOTED_BODY characters of the push service's body, when it said anything. */
export const withBody = (reason: string, body: string | null | undefined): string => {
  const text = (body ?? "").replace(/\s+/g, " ").trim();
  return text === "" ? reason : `${reason}: ${[...text].slice(0, MAX_QUOTED_BODY).join("")}`;
};

/**
 * The outcome table by HTTP status (issue 11): 2xx delivered; 404/410 gone; 429, 408 and 5xx
 * temporary; 413 too large; 3xx (never followed, never a success), 400, 401, 403 and every other
 * 4xx refused. `who` starts the reason ("push service answered", "FCM answered").
 */
export function outcomeOfStatus(status: number, retryAfter: string | null, reason: string, body: string | null = null): Outcome {
  if (status >= 200 && status < 300) return { kind: "delivered", status };
  if (status >= 300 && status < 400) return { kind: "failed", status, reason: `${reason} (redirects are not followed)` };
  if (status === 404 || status === 410) return { kind: "gone", status, reason };
  if (status === 429 || status === 408 || status >= 500) return { kind: "retry", status, afterSeconds: retryAfterSeconds(retryAfter), reason: withBody(reason, body) };
  if (status === 413) return { kind: "too_large", status, reason: withBody(reason, body) };
  return { kind: "failed", status, reason: withBody(reason, body) };
}

/**
 * An Android delivery priority (FCM's `android.priority`, Push Kit's `android.urgency`): HIGH for
 * RFC 8030 urgency `high`, NORMAL for the rest.
 */
export const androidPriority = (urgency: PushMessage["urgency"]): "HIGH" | "NORMAL" => (urgency === "high" ? "HIGH" : "NORMAL");

/** How long a push service's answer may take (its token endpoint's too). */
export const REQUEST_TIMEOUT_MS = 15_000;

/** A request that never got an answer: temporary; `timeout` when it ran out of time. */
export function unansweredOutcome(error: unknown, label: string): Outcome {
  const timeout = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
  return { kind: "retry", status: null, afterSeconds: null, reason: `${label}: ${timeout ? `no answer in ${REQUEST_TIMEOUT_MS / 1000} s` : (error as Error).message}`, ...(timeout ? { timeout: true } : {}) };
}

/** One named push service, whichever syntax named it (a JSON `push_services` entry, or the draft's XML). */
export type ServiceEntry =
  | {
      service: "web_push" | "unified_push";
      endpoint: string;
      /** RFC 8291 keys; null: a keyless UnifiedPush endpoint. */
      keys: { p256dh: string; auth: string } | null;
      contentEncoding: string | null;
    }
  | { service: "fcm"; registrationToken: string; platform: FcmPlatform }
  | { service: "hms"; token: string }
  | { service: "websocket"; connectionId: string };

/** The transports a delivery job is sent through (a WebSocket's frames leave from its TopicHub). */
export type DeliveredTransport = Exclude<Transport, "websocket">;

/**
 * What this director sends to: each service by `transport`, true when it is configured (absent:
 * not); `plain`: keyless Web Push too, unless REQUIRE_ENCRYPTION refuses plain messages.
 */
export type Deliverable = Partial<Record<DeliveredTransport, boolean>> & { plain: boolean };

/** A stored subscription as the fan-out reads it (with one of its registrations). */
export type QueueableRow = Pick<RecipientRow, "subscription_id" | "transport" | "identifier" | "p256dh" | "auth" | "sealed_token" | "platform">;

/** Sends one message to targets of one push service: an outcome per target, in their order. */
export interface Sender<Target> {
  send(targets: Target[], message: PushMessage): Promise<Outcome[]>;
}

/**
 * A sender that sends to one target after another, each with `sendOne` (the deliveries consumer
 * hands a per-target service one target at a time, paced per origin).
 */
export const oneAfterAnother = <Target>(sendOne: (target: Target, message: PushMessage) => Promise<Outcome>): Sender<Target> => ({
  async send(targets, message) {
    const outcomes: Outcome[] = [];
    for (const target of targets) outcomes.push(await sendOne(target, message));
    return outcomes;
  },
});

/** The sender of a service the operator did not set up: every target refused, the director's fault, saying why. */
export const notConfiguredSender = <Target>(reason: string): Sender<Target> => ({
  send: async (targets) => targets.map(() => ({ kind: "failed", status: null, reason, director: true })),
});

/** What a sender may need beyond the environment: Web Push signs with a VAPID key pair (null: unsigned). */
export interface SenderOptions {
  vapid?: { publicKey: string; privateKey: string } | null;
  fetcher?: typeof fetch;
}

/**
 * One push service the director sends to, the one contract every layer above sees (issue 16):
 * routes, fan-out, deliveries and discovery loop over the list in src/transports/index.ts and
 * never name a service, so a new one is a module and a line there. Callers guarantee that every
 * target handed to `sender(...).send` is one of this service's, opened (secrets in clear).
 */
export interface PushService<Target = unknown, Queued = unknown> {
  /** The `subscriptions.transport` it is stored under; a delivery job's `transport` (absent: web_push). */
  transport: DeliveredTransport;
  /** The early draft's `push_services` keys it registers, each with its entry's schema (a 400 names the field). */
  push_services: Partial<Record<PushServiceName, z.ZodType>>;
  /**
   * The early draft's unsubscribe: each `push_services` key's entry schema when it names a
   * subscription to forget (its identifier alone; keys and the like are ignored), and the
   * identifier the store finds it by.
   */
  forget: Partial<Record<PushServiceName, z.ZodType>>;
  identifierToForget(name: PushServiceName, entry: unknown): Promise<string>;
  /** Whether the operator set it up; a service that is not is never offered, registered or sent to. */
  configured(env: Env): boolean;
  /** A schema-checked `push_services[name]` entry as the service it names. */
  parse(name: PushServiceName, entry: unknown): ServiceEntry;
  /**
   * The subscription to store for one of its entries (the chosen one), checked: an entry that
   * cannot be used throws ApiError (400, with a code saying why).
   */
  subscription(env: Env, entry: ServiceEntry): SubscriptionInput | Promise<SubscriptionInput>;
  /**
   * A stored subscription of it as the deliveries queue carries it, its secret still sealed (the
   * consumer opens it just before sending, so neither the queue nor a dead letter holds it in
   * clear); null when it is not sent to from here, as `deliverable` says.
   */
  queued(row: QueueableRow, tenantId: string, deliverable: Deliverable): Queued | null;
  /** A queued target as its sender takes it, its secret opened (the keyring is asked only when one is sealed). */
  open(keyring: () => Promise<Keyring>, target: Queued): Promise<Target>;
  /** Its `transports` entries in discovery (`GET /.well-known/webdav-push`); none when not configured. */
  discovery(env: Env, context: { vapidPublicKey: string | null; requireEncryption: boolean }): Partial<Record<PushServiceName, unknown>>;
  /**
   * What one request to the push service carries, and so the unit the deliveries consumer paces:
   * `target` (Web Push, and FCM whose batch endpoint is gone) or a whole delivery `chunk`.
   */
  request: "target" | "chunk";
  /**
   * The pacing key of a request (src/delivery/pacing.ts), from its first target as queued (secrets
   * still sealed, so only what both forms share): its push resource's origin, or the service's name.
   */
  paceKey(target: Queued): string;
  /** Whether it signs with VAPID keys (RFC 8292), each subscription with the key bound to it. */
  vapid: boolean;
  /**
   * Why a subscription of it is not sent to from here, for the test push: not `configured` (naming
   * the settings it needs), or for Web Push a keyless one while REQUIRE_ENCRYPTION is on.
   */
  notConfigured: string;
  /** The host its requests go to, for the delivery log lines; null: each target's own (Web Push). */
  host(env: Partial<Env>): string | null;
  /** A registration's subscription as the JSON API shows it: the identifier (opened) under this service's name. */
  view(subscription: { identifier: string; platform: string | null }): Record<string, string>;
  sender(env: Env, options?: SenderOptions): Sender<Target>;
}

/**
 * Any service of the table, whatever its own target forms: each service's module types its own
 * (`PushService<Target, Queued>`), and callers hand a service only targets of its own jobs.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPushService = PushService<any, any>;

/** RFC 9110 §10.2.3 Retry-After: delay-seconds or an HTTP-date; null when absent or unreadable. */
export function retryAfterSeconds(value: string | null, nowMs = Date.now()): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - nowMs) / 1000));
}
