/**
 * The one `subscriptionOf`: a named push service (a JSON `push_services` entry, or the draft's XML
 * `web-push-subscription`) checked and turned into the subscription the store keeps.
 */
import { ApiError } from "../errors";
import type { SubscriptionInput } from "../store/subscriptions";
import { serviceNamed } from "../transports";
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
  // whose connection it is, and whether it exists, is register's to ask the hub
  if (entry.service === "websocket") return { transport: "websocket", service: "websocket", identifier: entry.connectionId, keys: null };
  const service = serviceNamed(entry.service);
  if (service === undefined) throw new Error(`no push service registers ${entry.service}`);
  return checked(() => service.subscription(env, entry));
}
