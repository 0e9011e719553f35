import { DurableObject } from "cloudflare:workers";
import { credentialStillValid } from "../auth/credential";
import { readConfig } from "../config";
import { nowSeconds } from "../expiry";
import { HubSockets, quotaRefusal, slotQuotaRefusal, type SocketLimits, type SocketQuota } from "../limits/socket-slots";
import { tenantLimiter } from "../limits/tenant-limiter";
import { variantFor, type Triggered } from "../queues/recipients";
import { tenantConnections } from "../store/connections";
import type { Trigger } from "../store/registrations";
import { tenantWebSocketTopics } from "../store/websocket-topics";
import type { Change } from "./change";
import { CLOSE, pushFrame, type Frame, type PushFrame } from "./frames";
import { mergeChanges } from "./merge";
import { fitsQueueMessage } from "../queues/jobs";
import { errorFields, log } from "../log";
import { meteredObject, tracked } from "../meter";
import { topicHasRegistrations } from "../store/registrations";

/** What the `fanout` queue carries: one topic's message, to be expanded into deliveries. */
export interface FanoutJob {
  tenantId: string;
  /** The hub's sequence number of this message (per topic, increasing). */
  seq: number;
  change: Change;
  /** Keyset cursor: registrations after this id are still to be fanned out. */
  after?: string;
  /** Unix seconds of the flush: the message lives until this plus its TTL (absent on older jobs: when fanned out). */
  flushedAt?: number;
  /**
   * A continuation's FCM groups sent one topic message by the job that started the fan-out
   * (src/queues/fcm-topics.ts): triggers key → FCM topic name; their members are skipped.
   */
  fcmTopics?: Record<string, string>;
}

interface Pending {
  tenantId: string;
  change: Change;
}

/** Per-socket state, kept across hibernation (≤ 16 KiB). */
interface SocketState extends SocketQuota {
  connectionId: string;
  /** The grant's `sub`, or null for the tenant's own token. */
  owner: string | null;
  /** When the grant expires (Unix seconds); null for the tenant's token. */
  expiresAt: number | null;
}

interface LogEntry {
  at: number;
  frame: PushFrame;
}

/**
 * The hub's record, one storage key (HUB_KEY): everything but the replay log. Durable Objects bill
 * each row written (issue 15's COSTS.md: a hub's rows were the largest cost of a sparse topic), so
 * what changes together is written together: an `accept` is one row, a flush one row and its log
 * entry, the queue send's acknowledgement one row.
 */
interface HubRecord {
  /** The last flushed message's number. */
  seq: number;
  pending?: Pending;
  /** When the open merge window closes (ms); absent: none open. */
  flushAt?: number;
  /** Flushed jobs not yet handed to the fan-out queue (kept before sending: a failed send is retried). */
  outbox?: FanoutJob[];
}

/** What a TopicHub keeps in memory of its storage (see `load`). */
interface HubState {
  pending: Pending | undefined;
  /** When the open merge window closes (ms), or undefined: none open. */
  flushAt: number | undefined;
  /** The last flushed message's number. */
  seq: number;
  outbox: FanoutJob[];
  /** The alarm as this object set it (ms), or null: none set. */
  alarmAt: number | null;
  /** The replay log: each message's number → when it was flushed (ms), oldest first. */
  log: Map<number, number>;
  /**
   * Whether the topic has held a socket (`remembered`): only then is a replay log kept. Only a
   * socket's client can know a message number to ask `?since=` for (the hello and push frames
   * carry it, Web Push messages do not), so a topic of Web Push alone writes no log entry and
   * deletes none: two of a sparse topic's six rows per notify (COSTS.md).
   */
  replays: boolean;
  /** Keys of the layout before HubRecord still in storage: the next write deletes them. */
  legacy: string[];
}

const HUB_KEY = "hub";
/** The keys a hub wrote before HubRecord (one row each), read once and then deleted. */
const LEGACY_KEYS = ["pending", "flushAt", "seq", "outbox"] as const;

/**
 * What the Worker hands the hub with an authorised WebSocket upgrade. It travels as JSON in the
 * URL (`?connect=`), never as header values, which HTTP trims and which cannot carry CR/LF: the
 * topic and `sub` must reach the hub byte-exact.
 */
export interface HubConnect {
  tenantId: string;
  topic: string;
  /** The grant's `sub`, or null for the tenant's own token. */
  owner: string | null;
  /** When the grant expires (Unix seconds); null for the tenant's token. */
  expiresAt: number | null;
  /** The credential's tag (src/auth/credential.ts): rotating or removing it closes the socket. */
  credential: string;
  /** The subprotocol to answer with, or null. */
  protocol: string | null;
  /** `?since=`: replay what came after this message number. */
  since: number | null;
  /** Random per socket: names its slot in the tenant's limiter (src/limits/socket-slots.ts). */
  socket: string;
  /** The tenant's socket limits in force, read by the Worker with the tenant. */
  limits: SocketLimits;
}

/**
 * The tag of the notify token's sockets, capped per topic by WS_MAX_SOCKETS_PER_CLIENT. The
 * digest of an empty `sub`: the tag those sockets carried before users were counted across topics,
 * so sockets opened before a deploy still count.
 */
const NOTIFY_TOKEN_TAG = "client:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export const hubConnectUrl = (connect: HubConnect) => `https://topic-hub/connect?connect=${encodeURIComponent(JSON.stringify(connect))}`;

/** The name of the TopicHub that owns a topic: one per (tenant, topic). */
const topicHubName = (tenantId: string, topic: string) => `${tenantId}\n${topic}`;

/** The stub of the TopicHub that owns a tenant's topic. */
export const topicHub = (env: Env, tenantId: string, topic: string) => env.TOPIC_HUB.get(env.TOPIC_HUB.idFromName(topicHubName(tenantId, topic)));

/**
 * The stub of the ConnectionHub (src/hub/connection-hub.ts) that holds a tenant's connection: the
 * TopicHub hands it frames, so it is named here, where both hubs can reach it.
 */
export const connectionHub = (env: Env, tenantId: string, connectionId: string) =>
  env.CONNECTION_HUB.get(env.CONNECTION_HUB.idFromName(`${tenantId}\n${connectionId}`));

type HubStub = ReturnType<typeof topicHub> | ReturnType<typeof connectionHub>;

/**
 * Marks credentials revoked in a hub (so a handshake racing the revocation is refused) and answers
 * the hub's sockets opened with any of them; TopicHub and ConnectionHub close them their own way.
 */
export function revoke(ctx: DurableObjectState, revoked: Set<string>, tags: string[]): Set<WebSocket> {
  const closing = new Set<WebSocket>();
  for (const tag of tags) {
    revoked.add(tag);
    for (const ws of ctx.getWebSockets(tag)) closing.add(ws);
  }
  return closing;
}

/**
 * Runs `action` on every hub of the tenant that holds sockets: the topics' hubs that have held
 * some and the connections' hubs (open or within their grace), one call per hub, all at once;
 * answers the sum (sockets closed).
 */
export async function onTenantSockets(env: Env, tenantId: string, action: (hub: HubStub) => Promise<number>): Promise<number> {
  const [topics, connections] = await Promise.all([tenantWebSocketTopics(env.DB, tenantId), tenantConnections(env.DB, tenantId)]);
  const counts = await Promise.all([
    ...topics.map((topic) => action(topicHub(env, tenantId, topic))),
    ...connections.map((id) => action(connectionHub(env, tenantId, id))),
  ]);
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * A connection (the early draft's connection-ID flow) attached to this topic by a registration:
 * the hub hands it the topic's push frames as its registration's triggers ask.
 */
export interface ConnectionAttachment {
  tenantId: string;
  connectionId: string;
  registrationId: string;
  trigger: Trigger;
  /** The registration's expiry (Unix seconds): no frames after it. */
  expiresAt: number;
}

const attachmentKey = (connectionId: string) => `attached:${connectionId}`;

/** What `variantFor` reads of a registration, from an attachment. */
const recipientOf = (attachment: ConnectionAttachment): Triggered => ({
  id: attachment.registrationId,
  content_update_depth: attachment.trigger.contentUpdate,
  property_update_depth: attachment.trigger.propertyUpdate,
  property_update_props: attachment.trigger.props === null ? null : JSON.stringify(attachment.trigger.props),
});

const logKey = (seq: number) => `log:${String(seq).padStart(12, "0")}`;

/** How long a hub trusts what D1 said of its topic's registrations (see TopicHub.listeners). */
export const LISTENERS_KNOWN_MS = 60_000;

/**
 * One Durable Object per (tenant, topic), where a topic's changes meet. Changes arriving within
 * COALESCE_MS are merged into one pending message (the draft's Rate Limiting); the alarm flushes
 * it: numbered, kept in a bounded replay log, sent to every WebSocket client of the topic and to
 * every attached connection (the connection-ID flow), and queued as one fan-out job for Web Push.
 * Sockets use the Hibernation API, so an idle topic costs nothing while its clients stay connected.
 */
export class TopicHub extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    [this.ctx, this.env] = meteredObject(this.ctx, this.env);
    // answered by the runtime without waking the object
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /**
   * What the hub works from, read from storage once per wake-up and kept in step with it
   * (issue 15: every notify is an `accept`, and seven storage calls each cost more than the rest
   * of the request). Only this object writes its storage, so memory and storage cannot drift.
   */
  private state: Promise<HubState> | null = null;

  private load(): Promise<HubState> {
    this.state ??= (async () => {
      const kv = this.ctx.storage.kv;
      // the replay log's times, once: a flush then prunes by key without listing it
      const log = new Map<number, number>();
      for (const [key, entry] of kv.list<LogEntry>({ prefix: "log:" })) log.set(entry.frame?.seq ?? Number(key.slice(4)), entry.at);
      const record = kv.get<HubRecord>(HUB_KEY);
      // a hub last written before HubRecord: its keys, read this once
      const legacy = record === undefined ? LEGACY_KEYS.filter((key) => kv.get(key) !== undefined) : [];
      return {
        pending: record === undefined ? kv.get<Pending>("pending") : record.pending,
        flushAt: record === undefined ? kv.get<number>("flushAt") : record.flushAt,
        seq: (record === undefined ? kv.get<number>("seq") : record.seq) ?? 0,
        outbox: (record === undefined ? kv.get<FanoutJob[]>("outbox") : record.outbox) ?? [],
        alarmAt: await this.ctx.storage.getAlarm(),
        log,
        replays: kv.get<boolean>("remembered") === true,
        legacy,
      };
    })();
    return this.state;
  }

  /** Writes the hub's record as memory holds it: one row (and, once, the old layout's keys deleted). */
  private save(state: HubState): void {
    const kv = this.ctx.storage.kv;
    const record: HubRecord = { seq: state.seq };
    if (state.pending !== undefined) record.pending = state.pending;
    if (state.flushAt !== undefined) record.flushAt = state.flushAt;
    if (state.outbox.length > 0) record.outbox = state.outbox;
    kv.put(HUB_KEY, record);
    for (const key of state.legacy) kv.delete(key);
    state.legacy = [];
  }

  /**
   * Whether the topic has a live registration, as last asked of D1 (memory only), and until when
   * (ms) that answer holds. A topic nobody registered to is numbered, logged and sent to its
   * sockets and connections as always, but queues no fan-out job: with it, every notify of such a
   * topic cost a queue message and a consumer's read (issue 15). A registration tells the hub
   * (`registered`), so the answer is never stale past that; LISTENERS_KNOWN_MS bounds it should
   * the telling fail.
   */
  private listeners: { some: boolean; until: number } | null = null;

  /** A registration for this topic was written: fan out from the next flush on. */
  registered(): void {
    tracked(this.ctx, "TopicHub.registered", () => {
      this.listeners = { some: true, until: Date.now() + LISTENERS_KNOWN_MS };
    });
  }

  private async hasListeners(tenantId: string, topic: string): Promise<boolean> {
    const now = Date.now();
    if (this.listeners !== null && this.listeners.until > now) return this.listeners.some;
    let some = true;
    try {
      some = await topicHasRegistrations(this.env.DB, tenantId, topic, Math.floor(now / 1000));
    } catch (error) {
      // not known: queue it, as before
      log(this.env, "warn", "hub_listeners_unknown", errorFields(error));
      return true;
    }
    // a registration told meanwhile wins over what was read before it
    if (this.listeners === null || this.listeners.until <= now) this.listeners = { some, until: now + LISTENERS_KNOWN_MS };
    return this.listeners.some;
  }

  /**
   * Merges the changes into the pending message: one storage write (the hub's record: the message,
   * and the flush time when it opens the window), and the alarm set only when none is set for
   * earlier. When this resolves (the tenant's 202) the change is stored.
   */
  accept(tenantId: string, changes: Change[]): Promise<void> {
    return tracked(this.ctx, "TopicHub.accept", () => this.merge(tenantId, changes));
  }

  private async merge(tenantId: string, changes: Change[]): Promise<void> {
    const state = await this.load();
    let pending = state.pending;
    for (const change of changes) {
      pending = { tenantId, change: pending === undefined ? change : mergeChanges(pending.change, change) };
    }
    state.pending = pending;
    const coalesceMs = readConfig(this.env).coalesceMs;
    const opens = coalesceMs > 0 && state.flushAt === undefined;
    if (opens) state.flushAt = Date.now() + coalesceMs;
    this.save(state);
    if (coalesceMs === 0) return this.flush();
    if (opens) await this.schedule();
  }

  /** Flushes what is pending (at worst a little early, when a grant expiry woke the hub first). */
  alarm(): Promise<void> {
    return tracked(this.ctx, "TopicHub.alarm", async () => {
      // the alarm that fired is set no more
      (await this.load()).alarmAt = null;
      await this.flush();
      await this.closeExpired();
      await this.schedule();
    });
  }

  /** Credentials revoked while this hub was awake: a handshake racing the revocation is refused. */
  private readonly revoked = new Set<string>();

  /** The sockets' slots in the tenant's limiter, and those being opened. */
  private readonly sockets = new HubSockets(this.ctx, "topic", (tenantId) => tenantLimiter(this.env, tenantId));

  /** A WebSocket upgrade the Worker has authorised (see routes/websocket.ts). */
  fetch(request: Request): Promise<Response> {
    return tracked(this.ctx, "TopicHub.connect", () => this.upgrade(request));
  }

  private async upgrade(request: Request): Promise<Response> {
    const connect = JSON.parse(new URL(request.url).searchParams.get("connect") ?? "null") as HubConnect | null;
    if (connect === null) return Response.json({ error: { code: "not_found", message: "no such hub route" } }, { status: 404 });
    const { topic, owner, since } = connect;
    const limits = readConfig(this.env).websocket;

    // the handshakes under way count too, so concurrent ones cannot pass a cap together
    const opening = [...this.sockets.opening.values()];
    if (this.ctx.getWebSockets().length + opening.length >= limits.maxPerTopic) {
      return quotaRefusal("sockets_per_topic", limits.maxPerTopic, `this topic holds ${limits.maxPerTopic} sockets at most`);
    }
    if (owner === null && this.ctx.getWebSockets(NOTIFY_TOKEN_TAG).length + opening.filter((o) => o === null).length >= limits.maxPerClient) {
      return quotaRefusal(
        "notify_token_sockets_per_topic",
        limits.maxPerClient,
        `the notify token holds ${limits.maxPerClient} sockets on a topic at most (users' sockets are counted per user, across topics)`,
      );
    }
    this.sockets.opening.set(connect.socket, owner);
    let refused: Response | null;
    try {
      refused = await this.admit(connect);
    } finally {
      this.sockets.opening.delete(connect.socket);
    }
    if (refused !== null) return refused;
    // a revocation that reached this hub while the limiter answered
    if (this.revoked.has(connect.credential)) {
      await this.sockets.releaseSlots([{ id: connect.socket, tenantId: connect.tenantId }]);
      return revokedMeanwhile();
    }

    // in the same step as leaving `opening` (the limiter's re-check always finds it) and as the
    // credential check (a revocation either finds the socket or is seen above)
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server, owner === null ? [NOTIFY_TOKEN_TAG, connect.credential] : [connect.credential]);
    const state: SocketState = {
      connectionId: crypto.randomUUID(),
      owner,
      expiresAt: connect.expiresAt,
      slot: { id: connect.socket, tenantId: connect.tenantId },
    };
    server.serializeAttachment(state);
    const { seq } = await this.load();
    send(server, { type: "hello", connection_id: state.connectionId, topic, seq });
    if (since !== null) await this.replay(server, since, seq);
    await this.schedule();
    return new Response(null, { status: 101, webSocket: client, headers: connect.protocol ? { "Sec-WebSocket-Protocol": connect.protocol } : {} });
  }

  /**
   * After the caps: the topic goes on record, the credential is checked, and a slot is taken in
   * the tenant's limiter (the last step, so a refused handshake never holds one). Answers the
   * refusal, or null.
   */
  private async admit(connect: HubConnect): Promise<Response | null> {
    await this.rememberTopic(connect.tenantId, connect.topic);
    // Checked after the topic is on record: a rotation either finds this topic (and closes the
    // socket, or marks the credential revoked here first) or changed D1 before this read.
    if (!(await credentialStillValid(this.env, connect.tenantId, connect.credential)) || this.revoked.has(connect.credential)) {
      return revokedMeanwhile();
    }
    const grant = await this.sockets.take(connect.tenantId, connect.socket, connect.owner, connect.limits);
    return grant.ok ? null : slotQuotaRefusal(grant);
  }

  /** The limiter's re-check (src/limits/tenant-limiter.ts): which of these sockets are still open here. */
  openSocketIds(ids: string[]): string[] {
    return this.sockets.openIds(ids);
  }

  /** A client's frame: spent from its allowance (beyond it, closed 1008), then answered with an error frame. */
  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // what arrives after we closed it (a flood's tail) is not answered
    if (ws.readyState !== WebSocket.OPEN) return;
    const { frameBurst, framesPerSecond } = readConfig(this.env).websocket;
    if (!this.sockets.spendFrame(ws, frameBurst, framesPerSecond)) return this.close([ws], CLOSE.tooManyFrames, "too many frames");
    const text = typeof message === "string" ? message : "(binary)";
    send(ws, { type: "error", code: "unexpected_frame", message: `this socket only receives; send "ping" to keep it alive (got ${text.slice(0, 40)})` });
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // complete the closing handshake (1005/1006 cannot be sent back)
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
    await this.sockets.release([ws]);
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    await this.sockets.release([ws]);
  }

  /** Closes sockets from this side, then gives their slots back (no close event may follow). */
  private async close(sockets: Iterable<WebSocket>, code: number, reason: string): Promise<void> {
    for (const ws of sockets) {
      try {
        ws.close(code, reason);
      } catch {
        // closed meanwhile
      }
    }
    await this.sockets.release(sockets);
  }

  /** Closes every socket of the topic (the tenant was disabled). */
  async closeAll(code: number, reason: string): Promise<number> {
    const sockets = this.ctx.getWebSockets();
    await this.close(sockets, code, reason);
    return sockets.length;
  }

  /** Closes the sockets opened with any of these credentials (revoked), and refuses them from now on. */
  async closeCredentials(tags: string[], code: number, reason: string): Promise<number> {
    const closing = revoke(this.ctx, this.revoked, tags);
    await this.close(closing, code, reason);
    return closing.size;
  }

  /** Attaches a connection (or updates its registration's trigger and expiry): frames from the next flush on. */
  async attach(attachment: ConnectionAttachment): Promise<void> {
    const attachments = await this.attachments();
    await this.ctx.storage.put(attachmentKey(attachment.connectionId), attachment);
    attachments.set(attachment.connectionId, attachment);
  }

  /** Detaches a connection: no flush after this call hands it a frame. */
  async detach(connectionId: string): Promise<void> {
    const attachments = await this.attachments();
    attachments.delete(connectionId);
    this.stubs.delete(connectionId);
    await this.ctx.storage.delete(attachmentKey(connectionId));
  }

  /** The attached connections, read from storage once per wake-up. */
  private attached: Map<string, ConnectionAttachment> | null = null;

  private async attachments(): Promise<Map<string, ConnectionAttachment>> {
    if (this.attached === null) {
      const stored = await this.ctx.storage.list<ConnectionAttachment>({ prefix: "attached:" });
      this.attached ??= new Map([...stored.values()].map((attachment) => [attachment.connectionId, attachment]));
    }
    return this.attached;
  }

  /** Stubs of the attached connections' hubs, kept while awake: one per frame and holder made the hand-off of 200 slower. */
  private readonly stubs = new Map<string, ReturnType<typeof connectionHub>>();

  private holder(attachment: ConnectionAttachment): ReturnType<typeof connectionHub> {
    let stub = this.stubs.get(attachment.connectionId);
    if (stub === undefined) this.stubs.set(attachment.connectionId, (stub = connectionHub(this.env, attachment.tenantId, attachment.connectionId)));
    return stub;
  }

  /** Hand-offs run one after another, so each connection gets a topic's frames in seq order. */
  private handOffs: Promise<void> = Promise.resolve();

  /**
   * Hands a flushed frame to each attached connection whose registration it concerns (the same
   * rule as Web Push: `variantFor`, Push-Dont-Notify), one call per ConnectionHub, all at once;
   * never through the queues. A connection that answers "gone" (detached, grace over, tenant
   * disabled) is detached here too; a failed call is tried once more.
   */
  private async handOff(change: Change, frame: PushFrame, text: string): Promise<void> {
    const attachments = await this.attachments();
    if (attachments.size === 0 || change.dontNotify === "*") return;
    const spared = new Set(change.dontNotify);
    const now = nowSeconds();
    const holders: ConnectionAttachment[] = [];
    const gone: string[] = [];
    for (const attachment of attachments.values()) {
      if (attachment.expiresAt <= now) gone.push(attachment.connectionId);
      else if (variantFor(recipientOf(attachment), change, spared) !== null) holders.push(attachment);
    }
    const deliver = (attachment: ConnectionAttachment) => this.holder(attachment).deliver(frame.topic, frame.seq, text);
    const outcomes = await Promise.all(
      holders.map((attachment) =>
        deliver(attachment)
          .catch(() => {
            // a stub that failed may stay broken: the second try gets a fresh one
            this.stubs.delete(attachment.connectionId);
            return deliver(attachment);
          })
          .catch(() => "failed" as const),
      ),
    );
    for (const [i, outcome] of outcomes.entries()) if (outcome === "gone") gone.push(holders[i].connectionId);
    for (const connectionId of gone) await this.detach(connectionId);
  }

  /** `?since=SEQ`: what the client missed, or a reset when the log no longer reaches back. */
  private async replay(ws: WebSocket, since: number, seq: number): Promise<void> {
    if (since === seq) return;
    const log = await this.ctx.storage.list<LogEntry>({ prefix: "log:", start: logKey(since + 1), end: logKey(seq + 1) });
    const frames = [...log.values()].map((entry) => entry.frame);
    if (since > seq || frames.length === 0 || frames[0].seq !== since + 1) {
      send(ws, { type: "reset", seq });
      return;
    }
    for (const frame of frames) send(ws, frame);
  }

  /** Sends what is pending to the sockets and the attached connections, and queues its fan-out. */
  private async flush(): Promise<void> {
    const { handedOff } = await this.flushPending();
    try {
      await this.sendOutbox();
    } finally {
      await handedOff;
    }
  }

  /**
   * Moves the pending message to an outbox and the replay log (one storage transaction) before
   * anything is sent, so a change arriving meanwhile starts a new pending message instead of being
   * lost, and a failed queue send is retried with the alarm. Answers the hand-off to the attached
   * connections, running meanwhile (wrapped: awaiting it here would hold up the fan-out).
   */
  private async flushPending(): Promise<{ handedOff: Promise<void> }> {
    const state = await this.load();
    const peek = state.pending;
    if (peek === undefined) return { handedOff: Promise.resolve() };
    const fanOut = await this.hasListeners(peek.tenantId, peek.change.topic);
    // what is pending now: a change accepted while D1 answered is in it too; nothing, when a
    // flush that ran meanwhile took it
    const pending = state.pending;
    if (pending === undefined) return { handedOff: Promise.resolve() };
    const kv = this.ctx.storage.kv;
    const seq = state.seq + 1;
    const outbox = [...state.outbox];
    const job: FanoutJob = { tenantId: pending.tenantId, seq, change: pending.change, flushedAt: Math.floor(Date.now() / 1000) };
    // A job the queue would refuse must never sit in the outbox, where it would block every
    // later one: it becomes a dead letter (a summary; the job itself is too large to send).
    if (!fanOut) {
      // nobody to fan out to: numbered (and logged for replay, if the topic holds sockets) all the same
    } else if (fitsQueueMessage(job)) outbox.push(job);
    else {
      await this.env.DEAD_LETTERS.send({
        tenantId: pending.tenantId,
        seq,
        topic: pending.change.topic,
        reason: "fan-out job larger than a queue message (128 KB); the WebSocket clients got it",
      });
    }
    // a change accepted while the dead letter was sent is merged into what is flushed here (the
    // job itself was not queued: only that branch awaits)
    const flushed = state.pending ?? pending;
    const frame = pushFrame(seq, flushed.change);
    // one transaction, no await inside: the message numbered, queued in the outbox and no longer
    // pending (the hub's record, one row), logged for replay (one row); the log pruned by the keys
    // the hub knows, without listing it
    const at = Date.now();
    Object.assign(state, { seq, pending: undefined, flushAt: undefined, outbox });
    this.save(state);
    if (state.replays) {
      kv.put(logKey(seq), { at, frame } satisfies LogEntry);
      state.log.set(seq, at);
    }
    const { replaySize, replaySeconds } = readConfig(this.env).websocket;
    const oldest = at - replaySeconds * 1000;
    for (const [logged, loggedAt] of state.log) {
      if (logged > seq - replaySize && loggedAt >= oldest) continue;
      kv.delete(logKey(logged));
      state.log.delete(logged);
    }
    const text = JSON.stringify(frame);
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(text);
      } catch {
        // a socket closing right now; its client replays with ?since=
      }
    }
    // the same frame, in the same flush, to the attached connections (after the previous
    // flush's hand-off: in order); it never throws, so the chain never breaks
    const handedOff = (this.handOffs = this.handOffs.then(() => this.handOff(flushed.change, frame, text)).catch(() => undefined));
    return { handedOff };
  }

  /** Queues what the outbox holds as fan-out jobs (one `sendBatch`); only what was sent leaves it (one row). */
  private async sendOutbox(): Promise<void> {
    const state = await this.load();
    const outbox = state.outbox;
    if (outbox.length === 0) return;
    await this.env.FANOUT.sendBatch(outbox.map((job) => ({ body: job })));
    // only what was sent leaves the outbox; a flush that ran meanwhile may have added more
    const sent = new Set(outbox.map((job) => job.seq));
    state.outbox = state.outbox.filter((job) => !sent.has(job.seq));
    this.save(state);
  }

  /** Closes the sockets whose grant has expired (close code 4001). */
  private async closeExpired(): Promise<void> {
    const now = Date.now() / 1000;
    const expired = this.ctx.getWebSockets().filter((ws) => {
      const state = ws.deserializeAttachment() as SocketState | null;
      return state?.expiresAt != null && state.expiresAt <= now;
    });
    if (expired.length > 0) await this.close(expired, CLOSE.credentialInvalid, "client grant expired");
  }

  /** One alarm serves both the merge window and the earliest grant expiry; set only when none is set for earlier. */
  private async schedule(): Promise<void> {
    const state = await this.load();
    const times: number[] = [];
    if (state.flushAt !== undefined) times.push(state.flushAt);
    for (const ws of this.ctx.getWebSockets()) {
      const state = ws.deserializeAttachment() as SocketState | null;
      // past expiries are closed already (closeExpired), only future ones need the alarm
      if (state?.expiresAt != null && state.expiresAt * 1000 > Date.now()) times.push(state.expiresAt * 1000);
    }
    if (times.length === 0) return;
    const at = Math.min(...times);
    if (state.alarmAt === null || state.alarmAt > at) {
      state.alarmAt = at;
      await this.ctx.storage.setAlarm(at);
    }
  }

  /** Notes in D1 that this topic holds sockets, so disabling the tenant can close them. */
  private async rememberTopic(tenantId: string, topic: string): Promise<void> {
    if ((await this.ctx.storage.get<boolean>("remembered")) === true) return;
    await this.env.DB.prepare(
      "INSERT INTO websocket_topics (tenant_id, topic, updated_at) VALUES (?, ?, ?) ON CONFLICT (tenant_id, topic) DO UPDATE SET updated_at = excluded.updated_at",
    )
      .bind(tenantId, topic, Math.floor(Date.now() / 1000))
      .run();
    await this.ctx.storage.put("remembered", true);
    // from now on flushes keep the replay log (a socket's client may ask `?since=`)
    (await this.load()).replays = true;
  }
}

/** 401: the credential the Worker authorised was revoked before the socket was accepted. */
export const revokedMeanwhile = () =>
  Response.json({ error: { code: "unauthorized", message: "the credential was revoked while the socket opened" } }, { status: 401 });

function send(ws: WebSocket, frame: Frame): void {
  ws.send(JSON.stringify(frame));
}
