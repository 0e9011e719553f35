/** The draft's Push Properties, ready to embed in a PROPFIND answer, and its error bodies. */
import { depthToJson, type Depth } from "../depth";
import { escapeXml, PUSH_NS, XML_DECLARATION } from "./escape";

const depthText = (depth: Depth) => String(depthToJson(depth));

/** `{…webdav-push}transports`: Web Push with the VAPID public key (draft: VAPID). */
export function transportsXml(vapidPublicKey: string | null, declarations = ` xmlns:P="${PUSH_NS}"`): string {
  const key = vapidPublicKey === null ? "" : `<P:vapid-public-key type="p256ecdsa">${escapeXml(vapidPublicKey)}</P:vapid-public-key>`;
  return `<P:transports${declarations}><P:web-push>${key}</P:web-push></P:transports>`;
}

export interface SupportedTriggers {
  contentUpdate: Depth | null;
  propertyUpdate: Depth | null;
}

export function supportedTriggersXml(supported: SupportedTriggers): string {
  const content = supported.contentUpdate === null ? "" : `<P:content-update><D:depth>${depthText(supported.contentUpdate)}</D:depth></P:content-update>`;
  const property =
    supported.propertyUpdate === null ? "" : `<P:property-update><D:depth>${depthText(supported.propertyUpdate)}</D:depth></P:property-update>`;
  return `<P:supported-triggers>${content}${property}</P:supported-triggers>`;
}

/** A `{DAV:}prop` holding transports, topic and supported-triggers for one topic. */
export function topicPropertiesXml(vapidPublicKey: string | null, topic: string, supported: SupportedTriggers): string {
  return (
    `${XML_DECLARATION}<D:prop xmlns:D="DAV:" xmlns:P="${PUSH_NS}">` +
    transportsXml(vapidPublicKey, "") +
    `<P:topic>${escapeXml(topic)}</P:topic>` +
    supportedTriggersXml(supported) +
    "</D:prop>"
  );
}

export type Precondition = "invalid-subscription" | "push-not-available" | "no-supported-trigger";

/** RFC 4918 §16 precondition body: `{DAV:}error` naming the draft's precondition, and why. */
export function preconditionXml(precondition: Precondition, description: string): string {
  return (
    `${XML_DECLARATION}<D:error xmlns:D="DAV:" xmlns:P="${PUSH_NS}"><P:${precondition}/>` +
    `<D:responsedescription>${escapeXml(description)}</D:responsedescription></D:error>`
  );
}
