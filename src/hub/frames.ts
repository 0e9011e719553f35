/** The JSON frames of the WebSocket transport (DESIGN.md: hello, push, reset, error). */
import { pushMessageXml } from "../xml/push-message";
import type { Change } from "./change";

export interface HelloFrame {
  type: "hello";
  /** Random per connection, as the early draft's WebSocket flow asks. */
  connection_id: string;
  topic: string;
  /** The topic's latest message number; pass it back as `?since=` after a reconnect. */
  seq: number;
}

export interface PushFrame {
  type: "push";
  seq: number;
  topic: string;
  content_update: { sync_token: string | null } | null;
  property_update: { props: string[] | null } | null;
  /** The same change as the draft's push-message XML. */
  xml: string;
}

/** The replay buffer no longer reaches back to `since`: the client should sync in full. */
export interface ResetFrame {
  type: "reset";
  seq: number;
}

export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
}

export type Frame = HelloFrame | PushFrame | ResetFrame | ErrorFrame;

export function pushFrame(seq: number, change: Change): PushFrame {
  return {
    type: "push",
    seq,
    topic: change.topic,
    content_update: change.contentUpdate === null ? null : { sync_token: change.contentUpdate.syncToken },
    property_update: change.propertyUpdate === null ? null : { props: change.propertyUpdate.props },
    xml: pushMessageXml({
      topic: change.topic,
      contentUpdate: change.contentUpdate === null ? null : { syncToken: change.contentUpdate.syncToken },
      propertyUpdate: change.propertyUpdate === null ? null : { transports: false },
    }),
  };
}

/** WebSocket close codes (4000–4999 are the application's, RFC 6455 §7.4.2). */
export const CLOSE = {
  /** The credential the socket opened with is no longer valid: the grant expired, tokens were rotated, its key was removed. */
  credentialInvalid: 4001,
  tenantDisabled: 4003,
} as const;
