/**
 * The one `subscriptionOf`: a named push service (a JSON `push_services` entry, or the draft's XML
 * `web-push-subscription`) checked and turned into the subscription the store keeps.
 */
import { readConfig } from "../config";
import { ApiError } from "../errors";
import type { SubscriptionInput } from "../store/subscriptions";
import { checkPushResource, checkWebPushKeys } from "../transports/push-resource";
import type { WebPushSubscriptionXml } from "../xml/push-register";
import type { ServiceEntry } from "./services";

/**
 * The subscription cannot be used: the JSON API answers 400 with `code`, push-register 403 with
 * the draft's `invalid-subscription` precondition.
 */
export class InvalidSubscription extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "InvalidSubscription";
  }
}

/**
 * The draft's `web-push-subscription`, as a Web Push entry. push-register always carries keys: the
 * draft requires message encryption (only the early draft's JSON knows keyless UnifiedPush).
 */
export function entryOfXml(xml: WebPushSubscriptionXml | null): ServiceEntry {
  if (xml === null) throw new InvalidSubscription("invalid_request", "the subscription must hold exactly one web-push-subscription");
  if (!xml.pushResource) throw new InvalidSubscription("invalid_request", "web-push-subscription has no push-resource");
  if (xml.publicKeyType !== null && xml.publicKeyType !== "p256dh") {
    throw new InvalidSubscription("invalid_subscription_key", `subscription-public-key type ${xml.publicKeyType} is not supported; use p256dh`);
  }
  if (!xml.publicKey || !xml.authSecret) {
    throw new InvalidSubscription("invalid_subscription_key", "message encryption needs subscription-public-key and auth-secret (RFC 8291)");
  }
  return {
    service: "web_push",
    endpoint: xml.pushResource,
    keys: { p256dh: xml.publicKey, auth: xml.authSecret },
    contentEncoding: xml.contentEncoding,
  };
}

/** A check of src/transports/push-resource.ts, its refusal as InvalidSubscription. */
async function checked<T>(check: () => T | Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    if (error instanceof ApiError) throw new InvalidSubscription(error.code, error.message);
    throw error;
  }
}

/** The subscription to store for a chosen entry; throws InvalidSubscription when it cannot be used. */
export async function subscriptionOf(env: Env, entry: ServiceEntry): Promise<SubscriptionInput> {
  switch (entry.service) {
    case "fcm":
      return { transport: "fcm", service: "fcm", identifier: entry.registrationToken, keys: null, platform: entry.platform };
    case "hms":
      // sealed and found by its digest, as an FCM token (src/store/subscriptions.ts)
      return { transport: "hms", service: "hms", identifier: entry.token, keys: null };
    case "websocket":
      // whose connection it is, and whether it exists, is register's to ask the hub
      return { transport: "websocket", service: "websocket", identifier: entry.connectionId, keys: null };
    case "web_push":
    case "unified_push": {
      const config = readConfig(env);
      // a missing content-encoding means aes128gcm (older DAVx⁵ sends none); RFC 8291 is the only one the draft allows
      if (entry.keys !== null && entry.contentEncoding !== null && entry.contentEncoding !== "aes128gcm") {
        throw new InvalidSubscription("invalid_request", `content encoding ${JSON.stringify(entry.contentEncoding)} is not supported: use aes128gcm (RFC 8291)`);
      }
      if (entry.keys === null && entry.service === "web_push") throw new InvalidSubscription("invalid_request", "web_push needs keys {p256dh, auth} (RFC 8291)");
      if (entry.keys === null && config.requireEncryption) {
        throw new InvalidSubscription("encryption_required", "this director requires message encryption (REQUIRE_ENCRYPTION): give keys {p256dh, auth} (RFC 8291)");
      }
      const identifier = await checked(() => checkPushResource(entry.endpoint, config.allowInsecurePushResources));
      const keys = entry.keys === null ? null : await checked(() => checkWebPushKeys(entry.keys!.p256dh, entry.keys!.auth));
      return { transport: "web_push", service: entry.service, identifier, keys };
    }
  }
}
