/** The draft's `push-message` (section Push Message): what a client receives. */
import { escapeXml, PUSH_NS, XML_DECLARATION } from "./escape";

export interface PushMessageContent {
  /** Absent only in a VAPID key-rotation message. */
  topic: string | null;
  contentUpdate: { syncToken: string | null } | null;
  /** The draft: usually empty; a key-rotation message names `{…webdav-push}transports`. */
  propertyUpdate: { transports: boolean } | null;
}

export function pushMessageXml(message: PushMessageContent): string {
  const parts = [XML_DECLARATION, `<push-message xmlns="${PUSH_NS}" xmlns:D="DAV:">`];
  if (message.topic !== null) parts.push(`<topic>${escapeXml(message.topic)}</topic>`);
  if (message.contentUpdate !== null) {
    const token = message.contentUpdate.syncToken;
    parts.push(token === null ? "<content-update/>" : `<content-update><D:sync-token>${escapeXml(token)}</D:sync-token></content-update>`);
  }
  if (message.propertyUpdate !== null) {
    parts.push(message.propertyUpdate.transports ? "<property-update><D:prop><transports/></D:prop></property-update>" : "<property-update/>");
  }
  parts.push("</push-message>");
  return parts.join("");
}
