/**
 * The Web Push transport (RFC 8030), which UnifiedPush distributors speak too: encrypted (RFC 8291)
 * for subscriptions with keys, plain for keyless UnifiedPush endpoints (the early draft allows them).
 */
import { encryptWebPush } from "../crypto/ece";
import { encodeBase64url } from "../crypto/base64url";
import { vapidSigner, type VapidSigner } from "../crypto/vapid";
import type { VapidKeyPair } from "../store/vapid-keys";
import { outcomeOfStatus, unansweredOutcome, type Outcome, type PushMessage, type Transport } from "./transport";

export interface WebPushTarget {
  subscriptionId: number;
  endpoint: string;
  /** RFC 8291 keys; both null for a keyless UnifiedPush endpoint, which gets the message plain. */
  p256dh: string | null;
  auth: string | null;
}

/** How long one push service may take to answer before the message is tried again later. */
const REQUEST_TIMEOUT_MS = 15_000;

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

/** Web Push signed with `keys` (RFC 8292), or unsigned when the director has no VAPID key. */
export function webPushTransport(env: Env, keys: VapidKeyPair | null, fetcher: typeof fetch = fetch): Transport<WebPushTarget> {
  const signer = keys === null ? null : vapidSigner({ ...keys, subject: env.VAPID_SUBJECT });
  return {
    async send(target, message) {
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
    },
  };
}
