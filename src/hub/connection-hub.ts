/**
 * One Durable Object per connection of the early draft's connection-ID flow (`GET /v1/ws`
 * without a topic): holds the socket, the topics attached to it, and what it missed while closed.
 */
import { DurableObject } from "cloudflare:workers";
import { credentialStillValid } from "../auth/credential";
import { readConfig } from "../config";
import { nowSeconds } from "../expiry";
import { HubSockets, slotQuotaRefusal, type SlotGrant, type SocketLimits, type SocketQuota } from "../limits/socket-slots";
import { tenantLimiter } from "../limits/tenant-limiter";
import { deleteConnectionRegistrations, forgetConnection, rememberConnection } from "../store/connections";
import { meteredObject, tracked } from "../meter";
import { CLOSE, type Frame } from "./frames";
import { revoke, revokedMeanwhile, topicHub } from "./topic-hub";

/**
 * What the Worker hands the hub with an authorised WebSocket upgrade: JSON in the URL, never
 * header values, so `sub` arrives byte-exact (as with the TopicHub's `HubConnect`).
 */
export interface ConnectionConnect {
  tenantId: string;
  connectionId: string;
  /** false: a new connection, its id just picked by the Worker; true: `?connection_id=` (a reconnect). */
  resume: boolean;
  /** The grant's `sub`, or null for the tenant's own token. */
  owner: string | null;
  /** When the grant expires (Unix seconds); null for the tenant's token. */
  expiresAt: number | null;
  /** The credential's tag (src/auth/credential.ts): rotating or removing it closes the socket. */
  credential: string;
  /** The subprotocol to answer with, or null. */
  protocol: string | null;
  /** Random per socket: names its slot in the tenant's limiter (src/limits/socket-slots.ts). */
  socket: string;
  /** The tenant's socket limits in force, read by the Worker with the tenant. */
  limits: SocketLimits;
}

export const connectionConnectUrl = (connect: ConnectionConnect) =>
  `https://connection-hub/connect?connect=${encodeURIComponent(JSON.stringify(connect))}`;

/** What a frame handed over by a TopicHub became. */
export type Delivery =
  /** sent to the socket, or dropped as a `(topic, seq)` already sent */
  | "sent"
  /** kept for the reconnect: the connection is closed and within its grace */
  | "kept"
  /** the connection does not hold the topic (detached, expired) or is no more: detach it */
  | "gone";

interface Meta {
  tenantId: string;
  connectionId: string;
  /** The grant's `sub`, or null for the tenant's token: only the same principal reconnects. */
  owner: string | null;
  /** Number of the socket that holds the connection now, or null while it is closed. */
  current: number | null;
  /** Number of the last socket accepted. */
  sockets: number;
  /** While closed: when the grace ends (ms). */
  graceUntil: number | null;
  /** Tenant disabled or grace over: its registrations are being removed; the connection is no more. */
  ending: boolean;
}

/** Per-socket state, kept across hibernation. */
interface SocketState extends SocketQuota {
  number: number;
  /** When the grant expires (Unix seconds); null for the tenant's token. */
  expiresAt: number | null;
}

/** A push missed while closed, as the TopicHub serialised it. */
interface Missed {
  topic: string;
  seq: number;
  text: string;
}

const missedKey = (n: number) => `missed:${String(n).padStart(12, "0")}`;
const socketTag = (n: number) => `socket:${n}`;

/**
 * The connection's state lives in synchronous storage (`ctx.storage.kv`), so each step below
 * (accepting a socket and replaying, keeping a missed push, attaching) runs whole, with no other
 * event in between. Keys: `meta`, `topics` (topic → registration expiry), `sent` (topic → highest
 * seq sent or kept: what is at or below it is dropped; see `sent()`), `missed:N` (in order), `missedNext`,
 * `overflow` (topics that lost a push beyond WS_REPLAY_SIZE).
 */
export class ConnectionHub extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    [this.ctx, this.env] = meteredObject(this.ctx, this.env);
    // answered by the runtime without waking the object
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /** Credentials revoked while this hub was awake: a handshake racing the revocation is refused. */
  private readonly revoked = new Set<string>();

  /** The sockets' slots in the tenant's limiter, and those being opened. */
  private readonly sockets = new HubSockets(this.ctx, "connection", (tenantId) => tenantLimiter(this.env, tenantId));

  private get kv(): SyncKvStorage {
    return this.ctx.storage.kv;
  }

  private meta(): Meta | null {
    return this.kv.get<Meta>("meta") ?? null;
  }

  /** The meta of a connection that is open, or closed within its grace. */
  private live(): Meta | null {
    const meta = this.meta();
    if (meta === null || meta.ending) return null;
    if (meta.current === null && meta.graceUntil !== null && meta.graceUntil <= Date.now()) return null;
    return meta;
  }

  private topics(): Map<string, number> {
    return this.kv.get<Map<string, number>>("topics") ?? new Map();
  }

  /** The holder's socket while it is open. */
  private socket(meta: Meta): WebSocket | null {
    const ws = meta.current === null ? undefined : this.ctx.getWebSockets(socketTag(meta.current))[0];
    return ws !== undefined && ws.readyState === WebSocket.OPEN ? ws : null;
  }

  /** A WebSocket upgrade the Worker has authorised (see src/hub/connections.ts). */
  fetch(request: Request): Promise<Response> {
    return tracked(this.ctx, "ConnectionHub.connect", () => this.upgrade(request));
  }

  private async upgrade(request: Request): Promise<Response> {
    const connect = JSON.parse(new URL(request.url).searchParams.get("connect") ?? "null") as ConnectionConnect | null;
    if (connect === null) return refusal(404, "not_found", "no such hub route");
    const refused = this.refusal(connect);
    if (refused !== null) return refused;
    if (!connect.resume) await rememberConnection(this.env.DB, connect.tenantId, connect.connectionId, nowSeconds());
    // Checked after the connection is on record: a rotation either finds it (and closes the
    // socket, or marks the credential revoked here first) or changed D1 before this read.
    if (!(await credentialStillValid(this.env, connect.tenantId, connect.credential)) || this.revoked.has(connect.credential)) {
      if (!connect.resume) await forgetConnection(this.env.DB, connect.tenantId, connect.connectionId);
      return revokedMeanwhile();
    }
    // A slot in the tenant's limiter, last: a refused handshake never holds one. A reconnect
    // taking over an open socket hands that socket's slot on in the same step, so a user at the
    // limit may still take over their own connection.
    this.sockets.opening.set(connect.socket, connect.owner);
    let grant: SlotGrant;
    try {
      grant = await this.sockets.take(connect.tenantId, connect.socket, connect.owner, connect.limits, this.holderSlot());
    } finally {
      this.sockets.opening.delete(connect.socket);
    }
    if (!grant.ok) {
      if (!connect.resume) await forgetConnection(this.env.DB, connect.tenantId, connect.connectionId);
      return slotQuotaRefusal(grant);
    }
    // again, in the same step as accepting: the connection may have ended (or been opened), or
    // the credential been revoked, while D1 and the limiter answered
    const ended = this.refusal(connect);
    const refusedNow = ended ?? (this.revoked.has(connect.credential) ? revokedMeanwhile() : null);
    if (refusedNow !== null) {
      await this.sockets.releaseSlots([{ id: connect.socket, tenantId: connect.tenantId }]);
      // a new connection refused for its credential leaves nothing on record (as above)
      if (ended === null && !connect.resume) await forgetConnection(this.env.DB, connect.tenantId, connect.connectionId);
      return refusedNow;
    }

    const [client, server] = Object.values(new WebSocketPair());
    const previous = this.accept(connect, server);
    if (previous !== null) await this.sockets.release([previous]);
    await this.schedule();
    return new Response(null, { status: 101, webSocket: client, headers: connect.protocol ? { "Sec-WebSocket-Protocol": connect.protocol } : {} });
  }

  /** The slot of the socket holding the connection now, or null. */
  private holderSlot(): string | null {
    const meta = this.meta();
    const ws = meta === null ? null : this.socket(meta);
    return (ws?.deserializeAttachment() as SocketState | null | undefined)?.slot?.id ?? null;
  }

  /** Why this handshake is refused, or null: a reconnect needs a live connection of the same principal. */
  private refusal(connect: ConnectionConnect): Response | null {
    if (!connect.resume) {
      return this.meta() === null ? null : refusal(409, "conflict", "this connection id is taken");
    }
    const meta = this.live();
    if (meta === null) return refusal(404, "not_found", "no such connection (unknown, or its reconnect grace is over)");
    if (meta.owner !== connect.owner) return refusal(403, "connection_not_yours", "this connection belongs to another client");
    return null;
  }

  /**
   * Takes the socket as the connection's holder (a previous one closes with 4002), greets it,
   * then sends what the connection missed, in order; from here on, live frames follow. One
   * synchronous step: no frame can slip in between. Answers the socket taken over, whose slot
   * is to be given back (if it was not handed on already).
   */
  private accept(connect: ConnectionConnect, ws: WebSocket): WebSocket | null {
    const meta: Meta = this.meta() ?? {
      tenantId: connect.tenantId,
      connectionId: connect.connectionId,
      owner: connect.owner,
      current: null,
      sockets: 0,
      graceUntil: null,
      ending: false,
    };
    const previous = this.socket(meta);
    const number = meta.sockets + 1;
    this.ctx.acceptWebSocket(ws, [socketTag(number), connect.credential]);
    ws.serializeAttachment({ number, expiresAt: connect.expiresAt, slot: { id: connect.socket, tenantId: connect.tenantId } } satisfies SocketState);
    this.kv.put("meta", { ...meta, current: number, sockets: number, graceUntil: null } satisfies Meta);
    if (previous !== null) close(previous, CLOSE.takenOver, "another socket took over this connection");

    const now = nowSeconds();
    const topics = [...this.topics()].filter(([, expiresAt]) => expiresAt > now).map(([topic]) => topic);
    send(ws, { type: "hello", connection_id: meta.connectionId, topics });
    const overflow = this.kv.get<string[]>("overflow") ?? [];
    if (overflow.length > 0) send(ws, { type: "reset", topics: overflow });
    this.kv.delete("overflow");
    for (const [key, missed] of this.kv.list<Missed>({ prefix: "missed:" })) {
      ws.send(missed.text);
      this.kv.delete(key);
    }
    return previous;
  }

  /** Who opened the connection, or null when it is unknown or no more (src/hub/connections.ts `connectionOwner`). */
  async owner(): Promise<{ owner: string | null } | null> {
    const meta = this.live();
    return meta === null ? null : { owner: meta.owner };
  }

  /** Notes a topic attached (its registration lives until `expiresAt`); false when the connection is no more. */
  async attach(topic: string, expiresAt: number): Promise<boolean> {
    if (this.live() === null) return false;
    const topics = this.topics();
    topics.set(topic, expiresAt);
    this.kv.put("topics", topics);
    return true;
  }

  /** Forgets a topic: its frames are refused from now on, and those kept for the reconnect dropped. */
  async detach(topic: string): Promise<void> {
    const topics = this.topics();
    if (!topics.delete(topic)) return;
    this.kv.put("topics", topics);
    const sent = this.sent();
    if (sent.delete(topic)) this.kv.put("sent", sent);
    for (const [key, missed] of this.kv.list<Missed>({ prefix: "missed:" })) if (missed.topic === topic) this.kv.delete(key);
    const overflow = this.kv.get<string[]>("overflow");
    if (overflow?.includes(topic)) this.kv.put("overflow", overflow.filter((t) => t !== topic));
  }

  /**
   * A push frame from the TopicHub of `topic` (serialised there, once for all its holders). Sent
   * at once while a socket holds the connection; kept while it is closed (the newest
   * WS_REPLAY_SIZE; the topics of older ones go into the reset frame). A `(topic, seq)` already
   * sent or kept is dropped: a TopicHub hands frames in seq order, and retries.
   */
  deliver(topic: string, seq: number, text: string): Promise<Delivery> {
    return tracked(this.ctx, "ConnectionHub.deliver", () => this.send(topic, seq, text));
  }

  private async send(topic: string, seq: number, text: string): Promise<Delivery> {
    const meta = this.live();
    const expiresAt = this.topics().get(topic);
    if (meta === null || expiresAt === undefined || expiresAt <= nowSeconds()) return "gone";
    const sent = this.sent();
    if (seq <= (sent.get(topic) ?? 0)) return "sent";
    sent.set(topic, seq);
    const ws = this.socket(meta);
    if (ws !== null) {
      try {
        ws.send(text);
        return "sent";
      } catch {
        // closing right now: kept for the reconnect instead
      }
    }
    this.keep({ topic, seq, text });
    return "kept";
  }

  /**
   * Topic → the highest seq sent or kept. Written to storage when a frame is kept and when the
   * socket goes, not with every live frame: a write holds the socket's next send until it is
   * durable (the output gate), which tripled the p99 of 200 connections (BENCHMARKS.md, part 4).
   */
  private sentBySeq: Map<string, number> | null = null;

  private sent(): Map<string, number> {
    return (this.sentBySeq ??= this.kv.get<Map<string, number>>("sent") ?? new Map());
  }

  private keep(missed: Missed): void {
    this.kv.put("sent", this.sent());
    const next = this.kv.get<number>("missedNext") ?? 0;
    this.kv.put(missedKey(next), missed);
    this.kv.put("missedNext", next + 1);
    const kept = [...this.kv.list<Missed>({ prefix: "missed:" })];
    const excess = kept.length - readConfig(this.env).websocket.replaySize;
    if (excess <= 0) return;
    const overflow = new Set(this.kv.get<string[]>("overflow") ?? []);
    for (const [key, dropped] of kept.slice(0, excess)) {
      overflow.add(dropped.topic);
      this.kv.delete(key);
    }
    this.kv.put("overflow", [...overflow]);
  }

  /** The limiter's re-check (src/limits/tenant-limiter.ts): which of these sockets are still open here. */
  openSocketIds(ids: string[]): string[] {
    return this.sockets.openIds(ids);
  }

  /** A client's frame: spent from its allowance (beyond it, closed 1008; the grace applies), then answered with an error frame. */
  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // what arrives after we closed it (a flood's tail, a socket taken over) is not answered
    if (ws.readyState !== WebSocket.OPEN) return;
    const { frameBurst, framesPerSecond } = readConfig(this.env).websocket;
    if (!this.sockets.spendFrame(ws, frameBurst, framesPerSecond)) return this.drop(ws, CLOSE.tooManyFrames, "too many frames");
    const text = typeof message === "string" ? message : "(binary)";
    send(ws, {
      type: "error",
      code: "unexpected_frame",
      message: `this socket only receives; topics are attached through the Subscription API; send "ping" to keep it alive (got ${text.slice(0, 40)})`,
    });
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // complete the closing handshake (1005/1006 cannot be sent back)
    close(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
    await this.sockets.release([ws]);
    await this.released(ws);
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    await this.sockets.release([ws]);
    await this.released(ws);
  }

  /** The holder's socket went away: the grace begins (a socket that was taken over changes nothing). */
  private async released(ws: WebSocket): Promise<void> {
    const meta = this.meta();
    const state = ws.deserializeAttachment() as SocketState | null;
    if (meta === null || meta.ending || state === null || meta.current !== state.number) return;
    this.beginGrace(meta);
    await this.schedule();
  }

  private beginGrace(meta: Meta): void {
    const graceMs = readConfig(this.env).websocket.reconnectGraceSeconds * 1000;
    this.kv.put("meta", { ...meta, current: null, graceUntil: Date.now() + graceMs } satisfies Meta);
    this.kv.put("sent", this.sent());
  }

  /** Closes the holder's socket; the grace applies (a grant expired, credentials revoked, a frame flood). */
  private async drop(ws: WebSocket, code: number, reason: string): Promise<void> {
    close(ws, code, reason);
    await this.sockets.release([ws]);
    await this.released(ws);
  }

  /** The tenant was disabled: closes the socket and ends the connection at once, no grace. */
  async closeAll(code: number, reason: string): Promise<number> {
    const meta = this.meta();
    if (meta === null) return 0;
    const sockets = this.ctx.getWebSockets();
    for (const ws of sockets) close(ws, code, reason);
    this.kv.put("meta", { ...meta, current: null, ending: true } satisfies Meta);
    await this.sockets.release(sockets);
    await this.end();
    return sockets.length;
  }

  /** Closes the socket opened with any of these credentials (revoked), and refuses them from now on; the grace applies. */
  async closeCredentials(tags: string[], code: number, reason: string): Promise<number> {
    const closing = revoke(this.ctx, this.revoked, tags);
    for (const ws of closing) await this.drop(ws, code, reason);
    return closing.size;
  }

  /** The holder's grant expired (4001, the grace begins), or the grace is over (the connection ends). */
  alarm(): Promise<void> {
    return tracked(this.ctx, "ConnectionHub.alarm", () => this.wake());
  }

  private async wake(): Promise<void> {
    let meta = this.meta();
    if (meta === null) return;
    if (meta.ending) return this.end();
    const ws = this.socket(meta);
    if (ws === null && meta.current !== null) {
      // its socket went without a close event reaching us: closed from now on, its slot given back
      await this.sockets.release(this.ctx.getWebSockets(socketTag(meta.current)));
      this.beginGrace(meta);
      meta = this.meta()!;
    }
    const state = ws?.deserializeAttachment() as SocketState | null | undefined;
    if (ws !== null && state?.expiresAt != null && state.expiresAt * 1000 <= Date.now()) {
      await this.drop(ws, CLOSE.credentialInvalid, "client grant expired");
    } else if (ws === null) {
      // while closed, the one alarm set is the grace's end
      this.kv.put("meta", { ...meta, ending: true } satisfies Meta);
      return this.end();
    }
    await this.schedule();
  }

  /**
   * Ends the connection: its registrations leave D1, its topics' hubs detach it, then its state
   * goes (it is unknown from then on). Marked `ending` first, so it is already gone for
   * reconnects and attaches; a failure leaves the alarm to try again.
   */
  private async end(): Promise<void> {
    const meta = this.meta();
    if (meta === null) return;
    await this.ctx.storage.setAlarm(Date.now() + 10_000);
    await deleteConnectionRegistrations(this.env.DB, meta.tenantId, meta.connectionId);
    await Promise.all([...this.topics().keys()].map((topic) => topicHub(this.env, meta.tenantId, topic).detach(meta.connectionId)));
    await forgetConnection(this.env.DB, meta.tenantId, meta.connectionId);
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.sentBySeq = null;
  }

  /** One alarm serves the holder's grant expiry and the end of the grace. */
  private async schedule(): Promise<void> {
    const meta = this.meta();
    if (meta === null) return;
    const ws = this.socket(meta);
    const state = ws?.deserializeAttachment() as SocketState | null | undefined;
    // a holder whose socket is not open any more is looked at again by the alarm
    const at = ws === null ? (meta.graceUntil ?? Date.now()) : state?.expiresAt == null ? null : state.expiresAt * 1000;
    if (at === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(at);
  }
}

function refusal(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status });
}

function send(ws: WebSocket, frame: Frame): void {
  ws.send(JSON.stringify(frame));
}

function close(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // closed meanwhile
  }
}
