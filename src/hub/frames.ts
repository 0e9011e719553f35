/**
 * The JSON frames of the WebSocket transport (DESIGN.md: hello, push, reset, error), for topic
 * sockets (`?topic=`) and for connections (the early draft's connection-ID flow).
 */
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

/** A connection's first frame: its id (to name in `push_services.websocket`) and the topics attached to it. */
export interface ConnectionHelloFrame {
  type: "hello";
  /** 128 random bits; names the connection in subscriptions and in `?connection_id=` after a reconnect. */
  connection_id: string;
  /** The topics attached (live registrations); empty on a new connection. */
  topics: string[];
}

/** The same frame whether it reaches a topic socket or a connection: one serialisation per flush. */
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

/** A connection missed more pushes than WS_REPLAY_SIZE while closed: these topics lost some; sync them in full. */
export interface ConnectionResetFrame {
  type: "reset";
  topics: string[];
}

export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
}

export type Frame = HelloFrame | ConnectionHelloFrame | PushFrame | ResetFrame | ConnectionResetFrame | ErrorFrame;

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
  /** Another socket reconnected to the same connection (`?connection_id=`) and holds it now. */
  takenOver: 4002,
  tenantDisabled: 4003,
  /** RFC 6455 §7.4.1, a policy violation: frames beyond the allowance (WS_FRAME_BURST at once, then WS_FRAMES_PER_SECOND). */
  tooManyFrames: 1008,
} as const;

/** The subprotocol a client offers (and is answered with) on `/v1/ws`, named in discovery too. */
export const SUBPROTOCOL = "webdav-push";
