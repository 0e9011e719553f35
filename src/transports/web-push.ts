/**
 * The Web Push transport (RFC 8030), which UnifiedPush distributors speak too: encrypted (RFC 8291)
 * for subscriptions with keys, plain for keyless UnifiedPush endpoints (the early draft allows them).
 */
import { z } from "zod";
import { encryptWebPush } from "../crypto/ece";
import { encodeBase64url } from "../crypto/base64url";
import { vapidSigner, type VapidSigner } from "../crypto/vapid";
import type { VapidKeyPair } from "../store/vapid-keys";
import { originOf } from "../delivery/pacing";
import { readConfig } from "../config";
import { badRequest } from "../errors";
import { openAuth } from "../store/subscriptions";
import { checkPushResource, checkWebPushKeys } from "./push-resource";
import { oneAfterAnother, REQUEST_TIMEOUT_MS, outcomeOfStatus, unansweredOutcome, type Outcome, type PushMessage, type PushService, type Sender } from "./transport";

/** A Web Push subscription on the deliveries queue: its `auth` secret still sealed. */
export interface QueuedWebPushTarget {
  subscriptionId: number;
  /** Whose subscription: part of the row key its `auth` is sealed under. */
  tenantId: string;
  endpoint: string;
  p256dh: string;
  sealedAuth: string;
}

/** A keyless UnifiedPush endpoint: sent the push message plain, so there is nothing to open. */
export interface QueuedPlainWebPushTarget {
  subscriptionId: number;
  tenantId: string;
  endpoint: string;
  plain: true;
}

export interface WebPushTarget {
  subscriptionId: number;
  endpoint: string;
  /** RFC 8291 keys; both null for a keyless UnifiedPush endpoint, which gets the message plain. */
  p256dh: string | null;
  auth: string | null;
}

/** How long one push service may take to answer before the message is tried again later. */

/**
 * RFC 8030 §5.4 Topic from the director's topic: 24 bytes of SHA-256 are 32 base64url characters
 * (the maximum, and never a length ≡ 1 mod 4, which Apple refuses); the topic itself stays private.
 */
export async function topicHeader(tenantId: string, topic: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${tenantId}\n${topic}`));
  return encodeBase64url(new Uint8Array(digest).subarray(0, 24));
}

/** A prepared push message: where to POST it, with which headers and body. */
export interface PreparedPush {
  url: string;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer>;
}

/** One fan-out chunk sends the same XML to every target: encode it once. */
let lastXml = "";
let lastPlaintext: Uint8Array<ArrayBuffer> = new Uint8Array(0);
function plaintextOf(xml: string): Uint8Array<ArrayBuffer> {
  if (xml !== lastXml) {
    lastPlaintext = new TextEncoder().encode(xml) as Uint8Array<ArrayBuffer>;
    lastXml = xml;
  }
  return lastPlaintext;
}

/**
 * What a push service receives for one target (RFC 8030 §5, RFC 8291 §4, RFC 8292 §3). A keyless
 * target gets the XML itself, without Content-Encoding (RFC 8030 §5 allows any body; there is no
 * key to encrypt for); TTL, Urgency, Topic and VAPID are the same either way.
 */
export async function prepareWebPush(target: WebPushTarget, message: PushMessage, signer: VapidSigner | null): Promise<PreparedPush> {
  const plaintext = plaintextOf(message.xml);
  const keys = target.p256dh !== null && target.auth !== null ? { p256dh: target.p256dh, auth: target.auth } : null;
  // a copy for the plain body: the cached bytes are shared by the chunk's other targets
  const body = keys === null ? plaintext.slice() : await encryptWebPush(plaintext, keys);
  const headers: Record<string, string> = {
    TTL: String(message.ttl),
    Urgency: message.urgency,
    ...(keys === null ? {} : { "Content-Encoding": "aes128gcm" }),
    // the draft's Push Message section
    "Content-Type": 'application/xml; charset="UTF-8"',
  };
  if (message.topic !== null) headers.Topic = message.topic;
  if (signer !== null) headers.Authorization = await signer.authorization(target.endpoint);
  return { url: target.endpoint, headers, body };
}

/**
 * RFC 8030 §5 / §8.4 answers onto the outcome table. A redirect is a refusal: the push resource is
 * the URL the user agent was given (RFC 8030 §5), and only its host passed `checkPushResource`, so
 * following a Location could carry the message to a private host.
 */
export function webPushOutcome(status: number, retryAfter: string | null, body: string | null = null): Outcome {
  return outcomeOfStatus(status, retryAfter, `push service answered ${status}`, body);
}

/** Reads at most a few KB of a refusal's body (to quote it), never a whole stream. */
async function bodyText(response: Response): Promise<string | null> {
  if (response.ok || response.body === null) {
    await response.body?.cancel();
    return null;
  }
  try {
    return (await response.text()).slice(0, 4096);
  } catch {
    return null;
  }
}

/**
 * Web Push signed with `keys` (RFC 8292), or unsigned when the director has no VAPID key. Targets
 * are sent one after another: the deliveries consumer hands one at a time, paced per origin.
 */
export function webPushTransport(env: Env, keys: VapidKeyPair | null, fetcher: typeof fetch = fetch): Sender<WebPushTarget> {
  const signer = keys === null ? null : vapidSigner({ ...keys, subject: env.VAPID_SUBJECT });
  const sendOne = async (target: WebPushTarget, message: PushMessage): Promise<Outcome> => {
    let prepared: PreparedPush;
    try {
      prepared = await prepareWebPush(target, message, signer);
    } catch (error) {
      // undecryptable keys or an oversize message: no retry can fix it
      return { kind: "failed", status: null, reason: `cannot prepare message: ${(error as Error).message}` };
    }
    try {
      const response = await fetcher(prepared.url, {
        method: "POST",
        headers: prepared.headers,
        body: prepared.body,
        // a 3xx comes back as it is, and webPushOutcome refuses it
        redirect: "manual",
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const body = await bodyText(response);
      return webPushOutcome(response.status, response.headers.get("Retry-After"), body);
    } catch (error) {
      return unansweredOutcome(error, "network");
    }
  };
  return oneAfterAnother(sendOne);
}

const keysSchema = z.object({ p256dh: z.string().min(1), auth: z.string().min(1) });
const webPushSchema = z.object({
  endpoint: z.string().min(1),
  keys: keysSchema,
  content_encoding: z.string().max(64).optional(),
});
/** A push resource to forget: its endpoint alone. */
const forgetSchema = z.object({ endpoint: z.string().min(1) });
type WebPushEntry = { endpoint: string; keys?: { p256dh: string; auth: string }; content_encoding?: string };

/**
 * Web Push, under both of the early draft's names: `web_push`, and `unified_push`, whose endpoint
 * is a Web Push resource too and may come without keys (then it is sent the message plain). Always
 * configured: with no VAPID key the director sends unsigned.
 */
export const webPushService = {
  transport: "web_push",
  push_services: { web_push: webPushSchema, unified_push: webPushSchema.extend({ keys: keysSchema.optional() }) },
  forget: { web_push: forgetSchema, unified_push: forgetSchema },
  async identifierToForget(_name, entry) {
    const { endpoint } = entry as z.infer<typeof forgetSchema>;
    // stored as checkPushResource left it: the URL's serialisation
    try {
      return new URL(endpoint).href;
    } catch {
      // not a URL: matches nothing stored, as it is
      return endpoint;
    }
  },
  configured: () => true,
  parse(name, entry) {
    const { endpoint, keys, content_encoding } = entry as WebPushEntry;
    return { service: name === "unified_push" ? "unified_push" : "web_push", endpoint, keys: keys ?? null, contentEncoding: content_encoding ?? null };
  },
  async subscription(env, entry) {
    if (entry.service !== "web_push" && entry.service !== "unified_push") throw new Error(`not a Web Push entry: ${entry.service}`);
    const config = readConfig(env);
    // a missing content-encoding means aes128gcm (older DAVx⁵ sends none); RFC 8291 is the only one the draft allows
    if (entry.keys !== null && entry.contentEncoding !== null && entry.contentEncoding !== "aes128gcm") {
      throw badRequest("invalid_request", `content encoding ${JSON.stringify(entry.contentEncoding)} is not supported: use aes128gcm (RFC 8291)`);
    }
    if (entry.keys === null && entry.service === "web_push") throw badRequest("invalid_request", "web_push needs keys {p256dh, auth} (RFC 8291)");
    if (entry.keys === null && config.requireEncryption) {
      throw badRequest("encryption_required", "this director requires message encryption (REQUIRE_ENCRYPTION): give keys {p256dh, auth} (RFC 8291)");
    }
    const identifier = await checkPushResource(entry.endpoint, config.allowInsecurePushResources);
    const keys = entry.keys === null ? null : await checkWebPushKeys(entry.keys.p256dh, entry.keys.auth);
    return { transport: "web_push", service: entry.service, identifier, keys };
  },
  queued(row, tenantId, deliverable): QueuedWebPushTarget | QueuedPlainWebPushTarget | null {
    const base = { subscriptionId: row.subscription_id, tenantId, endpoint: row.identifier };
    if (row.p256dh !== null && row.auth !== null) return { ...base, p256dh: row.p256dh, sealedAuth: row.auth };
    // keyless (both keys absent, never half a pair): plain, unless plain messages are refused
    if (row.p256dh === null && row.auth === null && deliverable.plain) return { ...base, plain: true };
    return null;
  },
  async open(keyring, target: QueuedWebPushTarget | QueuedPlainWebPushTarget): Promise<WebPushTarget> {
    if ("plain" in target) return { subscriptionId: target.subscriptionId, endpoint: target.endpoint, p256dh: null, auth: null };
    const auth = await openAuth(await keyring(), target.tenantId, target.endpoint, target.sealedAuth);
    return { subscriptionId: target.subscriptionId, endpoint: target.endpoint, p256dh: target.p256dh, auth };
  },
  discovery(_env, { vapidPublicKey, requireEncryption }) {
    if (vapidPublicKey === null) return {};
    return {
      web_push: { vapid_public_key: vapidPublicKey, content_encodings: ["aes128gcm"] },
      // UnifiedPush endpoints are Web Push resources; without keys the message goes plain, unless refused
      unified_push: { vapid_public_key: vapidPublicKey, content_encodings: ["aes128gcm"], unencrypted: !requireEncryption },
    };
  },
  request: "target",
  // RFC 8030 push services are many: one slow origin must hold only its own share (issue 11)
  paceKey: (target) => originOf(target.endpoint, "web_push"),
  vapid: true,
  notConfigured: "keyless push resources are not sent to while REQUIRE_ENCRYPTION is on",
  // many push services: the line names the target's own
  host: () => null,
  view: ({ identifier }) => ({ push_resource: identifier }),
  sender: (env, options) => webPushTransport(env, options?.vapid ?? null, options?.fetcher),
} satisfies PushService<WebPushTarget, QueuedWebPushTarget | QueuedPlainWebPushTarget>;
