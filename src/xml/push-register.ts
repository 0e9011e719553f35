/** The draft's `push-register` request body (Subscription Registration), read leniently. */
import type { Document } from "@xmldom/xmldom";
import { badRequest } from "../errors";
import type { Depth } from "../depth";
import { PUSH_NS } from "./escape";
import { child, childElements, clarkName, DAV_NS, textOf } from "./parse";

export interface WebPushSubscriptionXml {
  pushResource: string | null;
  /** null when absent: older DAVx⁵ sends none, meaning aes128gcm */
  contentEncoding: string | null;
  publicKey: string | null;
  publicKeyType: string | null;
  authSecret: string | null;
}

/** A requested trigger; `depth` null when the element was absent or unreadable. */
export interface RequestedTriggers {
  contentUpdate: { depth: Depth | null } | null;
  propertyUpdate: { depth: Depth | null; props: string[] | null } | null;
}

export interface PushRegister {
  /** null: no `subscription` with exactly one `web-push-subscription` */
  subscription: WebPushSubscriptionXml | null;
  /** null: no `trigger` element at all (older clients) */
  trigger: RequestedTriggers | null;
  expires: string | null;
}

function depthOf(text: string | null): Depth | null {
  switch (text?.toLowerCase()) {
    case "0":
      return 0;
    case "1":
      return 1;
    case "infinity":
      return 2;
    default:
      return null;
  }
}

export function readPushRegister(doc: Document): PushRegister {
  const root = doc.documentElement!;
  if (root.namespaceURI !== PUSH_NS || root.localName !== "push-register") {
    throw badRequest("invalid_request", `the root element must be {${PUSH_NS}}push-register, not ${clarkName(root)}`);
  }
  const subscriptionElement = child(root, PUSH_NS, "subscription");
  const transports = subscriptionElement === null ? [] : childElements(subscriptionElement);
  const webPush = transports.length === 1 && transports[0].namespaceURI === PUSH_NS && transports[0].localName === "web-push-subscription" ? transports[0] : null;
  const publicKey = webPush === null ? null : child(webPush, PUSH_NS, "subscription-public-key");

  const triggerElement = child(root, PUSH_NS, "trigger");
  let trigger: RequestedTriggers | null = null;
  if (triggerElement !== null) {
    const content = child(triggerElement, PUSH_NS, "content-update");
    const property = child(triggerElement, PUSH_NS, "property-update");
    const prop = property === null ? null : child(property, DAV_NS, "prop");
    trigger = {
      contentUpdate: content === null ? null : { depth: depthOf(textOf(child(content, DAV_NS, "depth"))) },
      propertyUpdate:
        property === null
          ? null
          : { depth: depthOf(textOf(child(property, DAV_NS, "depth"))), props: prop === null ? null : childElements(prop).map(clarkName) },
    };
  }

  return {
    subscription:
      webPush === null
        ? null
        : {
            pushResource: textOf(child(webPush, PUSH_NS, "push-resource")),
            contentEncoding: textOf(child(webPush, PUSH_NS, "content-encoding")),
            publicKey: textOf(publicKey),
            publicKeyType: publicKey?.getAttribute("type") ?? null,
            authSecret: textOf(child(webPush, PUSH_NS, "auth-secret")),
          },
    trigger,
    expires: textOf(child(root, PUSH_NS, "expires")),
  };
}
