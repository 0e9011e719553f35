// A stand-in push service (RFC 8030 §5) that does a receiving user agent's real work: checks
// TTL, Topic, Urgency and Content-Encoding, verifies the VAPID JWT with jose (ES256, aud, exp
// ≤ 24 h, sub) and decrypts the body with http_ece, an implementation independent of ours.
// A keyless subscriber (a UnifiedPush endpoint registered without keys) takes plain bodies only:
// no Content-Encoding, the push-message XML itself, checked against the draft's RELAX NG schema.
// Subscribers answer as told: accept, be gone (410), be unavailable (503 + Retry-After) for a
// number of tries, answer a fixed status, or redirect (a 3xx with a Location, such as another
// subscriber's endpoint, whose attempts then show whether the director followed; a fixed status may
// carry a body and last only the first n tries, then accept: 413-then-accept), or be flaky (a
// seeded share of tries answered 503 or 429 + Retry-After, the same on every run). Every try is
// kept in the subscriber's history (when, the answer, the message it carried). It has an HTTP
// control API (/_…) so tests running inside workerd can drive it too.
import { createECDH, randomBytes, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as ece from "http_ece";
import { importJWK, jwtVerify } from "jose";
import { seededRandom } from "../../src/delivery/schedule.ts";
import { StandIn } from "./stand-in.ts";

export type Behaviour =
  /** `wrongKey`: answer this status (a 401 or 403, as real push services do) to a VAPID key not the subscription's, rather than log an error. */
  | { kind: "accept"; wrongKey?: number }
  | { kind: "gone" }
  | { kind: "unavailable"; times: number; retryAfter?: number }
  /** Answers `status` (with `body`, quoted in refusals) to the first `times` tries (all when absent), then accepts. */
  | { kind: "status"; status: number; body?: string; times?: number }
  | { kind: "redirect"; status: number; location: string }
  /**
   * A push service under load: each try draws from a PRNG seeded with `seed`, the message and the
   * try's number for that message (`flakyAnswer`), so a message's n-th try answers alike on every
   * run, however the director interleaves them: `unavailable` of the tries (default 0.3) answer 503
   * without Retry-After, `tooMany` (default 0.1) 429 with `Retry-After: retryAfter` (default 1), the rest accept.
   */
  | { kind: "flaky"; seed: number; unavailable?: number; tooMany?: number; retryAfter?: number };

/** One try as the push service saw it. */
export interface Attempt {
  /** Date.now() when it was answered. */
  at: number;
  status: number;
  /** The message it carried, when it passed the checks (decrypted, or plain). */
  message: Received | null;
}

export interface SubscriberInfo {
  id: string;
  endpoint: string;
  p256dh: string;
  auth: string;
}

/** A keyless subscriber: it has no keys to give, so it is sent the message plain. */
export interface KeylessSubscriberInfo {
  id: string;
  endpoint: string;
}

export interface Received {
  xml: string;
  ttl: number;
  urgency: string | null;
  topic: string | null;
  contentType: string | null;
  claims: Record<string, unknown>;
  /** Plain messages: what the draft's RELAX NG schema (push-message) says of the XML; null = valid. */
  schemaError?: string | null;
}

interface Subscriber extends SubscriberInfo {
  /** null: keyless, takes plain bodies only. */
  ecdh: ReturnType<typeof createECDH> | null;
  /** The VAPID key this subscription is restricted to (RFC 8292 §4), when not the service's default. */
  vapidPublicKey: string | null;
  behaviour: Behaviour;
  attempts: number;
  received: Received[];
  history: Attempt[];
}

/** The first draw in [0, 1) of the director's own seedable generator, from a 32-bit seed. */
const draw = (seed: number): number => seededRandom(seed)();

/** FNV-1a, to fold a message into the seed. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}

/**
 * How a flaky subscriber answers try `n` (0-based) of the message `xml`: 503, 429 with Retry-After, or
 * accepted (201). A pure function of its arguments, so a test can tell in advance what a run will meet.
 */
export function flakyAnswer(behaviour: Extract<Behaviour, { kind: "flaky" }>, xml: string, n: number): { status: number; retryAfter?: number } {
  const value = draw((behaviour.seed ^ fnv1a(xml) ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0);
  const unavailable = behaviour.unavailable ?? 0.3;
  if (value < unavailable) return { status: 503 };
  if (value < unavailable + (behaviour.tooMany ?? 0.1)) return { status: 429, retryAfter: behaviour.retryAfter ?? 1 };
  return { status: 201 };
}

const MAX_VAPID_LIFETIME = 24 * 3600;
const WRONG_KEY = "VAPID k is not the key this subscription was made for";

export class PushService extends StandIn {
  private readonly subscribers = new Map<string, Subscriber>();
  /** Requests answered, successful or not. */
  requests = 0;
  /** When set, the VAPID `k` must be this key (base64url). */
  vapidPublicKey: string | null;
  /** Decrypt every n-th message that passed the other checks (1 = all); the rest are only counted. */
  decryptEvery = 1;
  private checked = 0;
  /** Signatures already verified, by JWT: a director reuses one JWT per origin for hours. */
  private readonly verified = new Map<string, Record<string, unknown>>();

  constructor(options: { vapidPublicKey?: string } = {}) {
    super();
    this.vapidPublicKey = options.vapidPublicKey ?? null;
  }

  addSubscriber(behaviour: Behaviour = { kind: "accept" }, vapidPublicKey: string | null = null): SubscriberInfo {
    const ecdh = createECDH("prime256v1");
    ecdh.generateKeys();
    const id = randomUUID();
    const subscriber: Subscriber = {
      id,
      endpoint: `${this.url}/push/${id}`,
      p256dh: ecdh.getPublicKey().toString("base64url"),
      auth: randomBytes(16).toString("base64url"),
      ecdh,
      vapidPublicKey,
      behaviour,
      attempts: 0,
      received: [],
      history: [],
    };
    this.subscribers.set(id, subscriber);
    return { id, endpoint: subscriber.endpoint, p256dh: subscriber.p256dh, auth: subscriber.auth };
  }

  addKeylessSubscriber(behaviour: Behaviour = { kind: "accept" }, vapidPublicKey: string | null = null): KeylessSubscriberInfo {
    const id = randomUUID();
    const endpoint = `${this.url}/push/${id}`;
    this.subscribers.set(id, { id, endpoint, p256dh: "", auth: "", ecdh: null, vapidPublicKey, behaviour, attempts: 0, received: [], history: [] });
    return { id, endpoint };
  }

  received(id: string): Received[] {
    return this.subscribers.get(id)?.received ?? [];
  }

  attempts(id: string): number {
    return this.subscribers.get(id)?.attempts ?? 0;
  }

  /** Every try at this subscriber, in the order answered. */
  history(id: string): Attempt[] {
    return this.subscribers.get(id)?.history ?? [];
  }

  /** Changes how a subscriber answers from its next try on (e.g. an unavailable one that now accepts). */
  setBehaviour(id: string, behaviour: Behaviour): void {
    const subscriber = this.subscribers.get(id);
    if (subscriber === undefined) throw new Error(`no subscriber ${id}`);
    subscriber.behaviour = behaviour;
  }

  protected async handle(req: IncomingMessage, body: Buffer, res: ServerResponse) {
    const url = new URL(req.url ?? "/", this.url);
    if (url.pathname.startsWith("/_")) return this.control(url, req.method ?? "GET", body, res);
    const match = /^\/push\/([\w-]+)$/.exec(url.pathname);
    const subscriber = match ? this.subscribers.get(match[1]) : undefined;
    if (req.method !== "POST" || subscriber === undefined) return this.answer(res, 404);
    subscriber.attempts++;
    const checked = await this.check(req, body, subscriber);
    const reply = this.reply(subscriber, checked);
    subscriber.history.push({ at: Date.now(), status: reply.status, message: typeof checked === "string" ? null : checked });
    this.answer(res, reply.status, reply.headers, reply.body);
  }

  /** How the subscriber answers a try that got past the push service's lookup. */
  private reply(subscriber: Subscriber, checked: string | Received): { status: number; headers?: Record<string, string>; body?: string } {
    if (checked === WRONG_KEY && subscriber.behaviour.kind === "accept" && subscriber.behaviour.wrongKey !== undefined) {
      return { status: subscriber.behaviour.wrongKey, headers: { "Content-Type": "text/plain" }, body: "VAPID key mismatch" };
    }
    if (typeof checked === "string") {
      this.errors.push(`${subscriber.id}: ${checked}`);
      return { status: 400 };
    }
    const behaviour = subscriber.behaviour;
    if (behaviour.kind === "gone") return { status: 410 };
    if (behaviour.kind === "status" && (behaviour.times === undefined || subscriber.attempts <= behaviour.times)) {
      return { status: behaviour.status, headers: behaviour.body === undefined ? {} : { "Content-Type": "text/plain" }, body: behaviour.body };
    }
    if (behaviour.kind === "redirect") return { status: behaviour.status, headers: { Location: behaviour.location } };
    if (behaviour.kind === "unavailable" && subscriber.attempts <= behaviour.times) {
      return { status: 503, headers: behaviour.retryAfter === undefined ? {} : { "Retry-After": String(behaviour.retryAfter) } };
    }
    if (behaviour.kind === "flaky") {
      const earlier = subscriber.history.filter((attempt) => attempt.message?.xml === checked.xml).length;
      const { status, retryAfter } = flakyAnswer(behaviour, checked.xml, earlier);
      if (status !== 201) return { status, headers: retryAfter === undefined ? {} : { "Retry-After": String(retryAfter) } };
    }
    subscriber.received.push(checked);
    return { status: 201, headers: { Location: `${this.url}/message/${randomUUID()}` } };
  }

  private answer(res: ServerResponse, status: number, headers: Record<string, string> = {}, body?: string) {
    this.requests++;
    res.writeHead(status, headers).end(body);
  }

  /** The receiver's checks; returns what is wrong, or the decrypted message. */
  private async check(req: IncomingMessage, body: Buffer, subscriber: Subscriber): Promise<string | Received> {
    const ttl = req.headers["ttl"];
    if (typeof ttl !== "string" || !/^\d+$/.test(ttl) || Number(ttl) <= 0) return `TTL must be a positive integer, got ${ttl}`;
    const encoding = req.headers["content-encoding"];
    if (subscriber.ecdh === null ? encoding !== undefined : encoding !== "aes128gcm") {
      return `Content-Encoding ${encoding} (${subscriber.ecdh === null ? "a keyless subscription has no key to decrypt with" : "aes128gcm expected"})`;
    }
    const topic = req.headers["topic"];
    if (topic !== undefined && (typeof topic !== "string" || !/^[A-Za-z0-9_-]{1,32}$/.test(topic) || topic.length % 4 === 1)) {
      return `Topic ${topic} is not ≤ 32 base64url characters (or its length is 1 mod 4)`;
    }
    const urgency = req.headers["urgency"];
    if (urgency !== undefined && !["very-low", "low", "normal", "high"].includes(urgency as string)) return `Urgency ${urgency}`;
    if (body.length > 4096) return `body of ${body.length} bytes exceeds 4096`;

    const match = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(req.headers["authorization"] ?? "");
    if (!match) return `Authorization ${req.headers["authorization"]} is not RFC 8292 vapid t=…, k=…`;
    const [, jwt, k] = match;
    const expected = subscriber.vapidPublicKey ?? this.vapidPublicKey;
    if (expected !== null && k !== expected) return WRONG_KEY;
    let claims = this.verified.get(`${k} ${jwt}`);
    if (claims === undefined) {
      const point = Buffer.from(k, "base64url");
      const key = await importJWK(
        { kty: "EC", crv: "P-256", x: point.subarray(1, 33).toString("base64url"), y: point.subarray(33).toString("base64url") },
        "ES256",
      );
      try {
        ({ payload: claims } = await jwtVerify(jwt, key, { algorithms: ["ES256"], audience: this.url }));
      } catch (error) {
        return `VAPID JWT: ${(error as Error).message}`;
      }
      this.verified.set(`${k} ${jwt}`, claims);
    }
    const exp = claims.exp as number;
    if (exp <= Date.now() / 1000) return "VAPID JWT has expired";
    if (exp - Date.now() / 1000 > MAX_VAPID_LIFETIME) return "VAPID exp is more than 24 h ahead";
    if (typeof claims.sub !== "string" || !/^(mailto:[^@\s]+@[^@\s]+|https:\/\/\S+)$/.test(claims.sub)) return `VAPID sub ${claims.sub}`;

    const base = { ttl: Number(ttl), urgency: (urgency as string) ?? null, topic: (topic as string) ?? null, contentType: req.headers["content-type"] ?? null, claims };
    if (subscriber.ecdh === null) {
      if (!/^application\/xml\s*(;|$)/i.test(base.contentType ?? "")) return `Content-Type ${base.contentType} is not application/xml`;
      const xml = new TextDecoder("utf-8", { fatal: true }).decode(body);
      // loaded only here: reading the schema needs ../shared, which only these tests need
      const { validate } = await import("./relaxng.ts");
      return { ...base, xml, schemaError: validate(xml, "push-message") };
    }
    if (this.checked++ % this.decryptEvery !== 0) return { ...base, xml: "" };
    try {
      const plaintext = ece.decrypt(body, { version: "aes128gcm", privateKey: subscriber.ecdh, authSecret: subscriber.auth });
      return { ...base, xml: plaintext.toString("utf8") };
    } catch (error) {
      return `cannot decrypt: ${(error as Error).message}`;
    }
  }

  /** POST /_subscribers {behaviour, vapidPublicKey?, keyless?} · GET /_received?id= · GET /_wait?id=&count= · GET /_errors */
  private async control(url: URL, method: string, body: Buffer, res: ServerResponse) {
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(value));
    };
    const id = url.searchParams.get("id") ?? "";
    if (url.pathname === "/_subscribers" && method === "POST") {
      const { behaviour, vapidPublicKey, keyless } = JSON.parse(body.toString() || "{}") as { behaviour?: Behaviour; vapidPublicKey?: string; keyless?: boolean };
      return json(201, keyless ? this.addKeylessSubscriber(behaviour, vapidPublicKey ?? null) : this.addSubscriber(behaviour, vapidPublicKey ?? null));
    }
    if (url.pathname === "/_received") return json(200, { received: this.received(id), attempts: this.attempts(id) });
    if (url.pathname === "/_wait") {
      const count = Number(url.searchParams.get("count") ?? "1");
      const attempts = Number(url.searchParams.get("attempts") ?? "0");
      await this.waitUntil(() => this.received(id).length >= count && this.attempts(id) >= attempts, 20_000).catch(() => undefined);
      return json(200, { received: this.received(id), attempts: this.attempts(id) });
    }
    if (url.pathname === "/_errors") return json(200, { errors: this.errors });
    json(404, {});
  }
}
