import { DurableObject } from "cloudflare:workers";
import { credentialStillValid } from "../auth/credential";
import { readConfig } from "../config";
import { sha256Hex } from "../crypto/secrets";
import { tenantWebSocketTopics } from "../store/websocket-topics";
import type { Change } from "./change";
import { CLOSE, pushFrame, type Frame, type PushFrame } from "./frames";
import { mergeChanges } from "./merge";
import { fitsQueueMessage } from "../queues/jobs";

/** What the `fanout` queue carries: one topic's message, to be expanded into deliveries. */
export interface FanoutJob {
  tenantId: string;
  /** The hub's sequence number of this message (per topic, increasing). */
  seq: number;
  change: Change;
  /** Keyset cursor: registrations after this id are still to be fanned out. */
  after?: string;
}

interface Pending {
  tenantId: string;
  change: Change;
}

/** Per-socket state, kept across hibernation (≤ 16 KiB). */
interface SocketState {
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
}

export const hubConnectUrl = (connect: HubConnect) => `https://topic-hub/connect?connect=${encodeURIComponent(JSON.stringify(connect))}`;

/** The name of the TopicHub that owns a topic: one per (tenant, topic). */
const topicHubName = (tenantId: string, topic: string) => `${tenantId}\n${topic}`;

/** The stub of the TopicHub that owns a tenant's topic. */
export const topicHub = (env: Env, tenantId: string, topic: string) => env.TOPIC_HUB.get(env.TOPIC_HUB.idFromName(topicHubName(tenantId, topic)));

type HubStub = ReturnType<typeof topicHub>;

/**
 * Runs `action` on every hub of the tenant that has held sockets, one call per hub, all at once;
 * answers the sum (sockets closed).
 */
export async function onTenantSockets(env: Env, tenantId: string, action: (hub: HubStub) => Promise<number>): Promise<number> {
  const topics = await tenantWebSocketTopics(env.DB, tenantId);
  const counts = await Promise.all(topics.map((topic) => action(topicHub(env, tenantId, topic))));
  return counts.reduce((a, b) => a + b, 0);
}

const logKey = (seq: number) => `log:${String(seq).padStart(12, "0")}`;

/**
 * One Durable Object per (tenant, topic), where a topic's changes meet. Changes arriving within
 * COALESCE_MS are merged into one pending message (the draft's Rate Limiting); the alarm flushes
 * it: numbered, kept in a bounded replay log, sent to every WebSocket client of the topic, and
 * queued as one fan-out job for Web Push. Sockets use the Hibernation API, so an idle topic costs
 * nothing while its clients stay connected.
 */
export class TopicHub extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // answered by the runtime without waking the object
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  async accept(tenantId: string, changes: Change[]): Promise<void> {
    const storage = this.ctx.storage;
    let pending = await storage.get<Pending>("pending");
    for (const change of changes) {
      pending = { tenantId, change: pending === undefined ? change : mergeChanges(pending.change, change) };
    }
    await storage.put("pending", pending);
    const coalesceMs = readConfig(this.env).coalesceMs;
    if (coalesceMs === 0) return this.flush();
    if ((await storage.get<number>("flushAt")) === undefined) {
      await storage.put("flushAt", Date.now() + coalesceMs);
      await this.schedule();
    }
  }

  /** Flushes what is pending (at worst a little early, when a grant expiry woke the hub first). */
  async alarm(): Promise<void> {
    await this.flush();
    this.closeExpired();
    await this.schedule();
  }

  /** Credentials revoked while this hub was awake: a handshake racing the revocation is refused. */
  private readonly revoked = new Set<string>();

  /** A WebSocket upgrade the Worker has authorised (see routes/websocket.ts). */
  async fetch(request: Request): Promise<Response> {
    const connect = JSON.parse(new URL(request.url).searchParams.get("connect") ?? "null") as HubConnect | null;
    if (connect === null) return Response.json({ error: { code: "not_found", message: "no such hub route" } }, { status: 404 });
    const { topic, owner, since } = connect;
    const limits = readConfig(this.env).websocket;

    if (this.ctx.getWebSockets().length >= limits.maxPerTopic) {
      return Response.json({ error: { code: "too_many_sockets", message: `this topic holds ${limits.maxPerTopic} sockets at most` } }, { status: 429 });
    }
    // a digest: tags are short, and `sub` is the tenant's text, not ours to echo into them
    const clientTag = `client:${await sha256Hex(owner ?? "")}`;
    if (this.ctx.getWebSockets(clientTag).length >= limits.maxPerClient) {
      return Response.json(
        { error: { code: "too_many_sockets", message: `one client holds ${limits.maxPerClient} sockets on a topic at most` } },
        { status: 429 },
      );
    }
    await this.rememberTopic(connect.tenantId, topic);
    // Checked after the topic is on record: a rotation either finds this topic (and closes the
    // socket, or marks the credential revoked here first) or changed D1 before this read.
    if (!(await credentialStillValid(this.env, connect.tenantId, connect.credential)) || this.revoked.has(connect.credential)) {
      return Response.json({ error: { code: "unauthorized", message: "the credential was revoked while the socket opened" } }, { status: 401 });
    }

    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server, [clientTag, connect.credential]);
    const state: SocketState = { connectionId: crypto.randomUUID(), owner, expiresAt: connect.expiresAt };
    server.serializeAttachment(state);
    const seq = (await this.ctx.storage.get<number>("seq")) ?? 0;
    send(server, { type: "hello", connection_id: state.connectionId, topic, seq });
    if (since !== null) await this.replay(server, since, seq);
    await this.schedule();
    return new Response(null, { status: 101, webSocket: client, headers: connect.protocol ? { "Sec-WebSocket-Protocol": connect.protocol } : {} });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
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
  }

  /** Closes every socket of the topic (the tenant was disabled). */
  async closeAll(code: number, reason: string): Promise<number> {
    const sockets = this.ctx.getWebSockets();
    for (const ws of sockets) ws.close(code, reason);
    return sockets.length;
  }

  /** Closes the sockets opened with any of these credentials (revoked), and refuses them from now on. */
  async closeCredentials(tags: string[], code: number, reason: string): Promise<number> {
    const closing = new Set<WebSocket>();
    for (const tag of tags) {
      this.revoked.add(tag);
      for (const ws of this.ctx.getWebSockets(tag)) closing.add(ws);
    }
    for (const ws of closing) {
      try {
        ws.close(code, reason);
      } catch {
        // closed meanwhile
      }
    }
    return closing.size;
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

  /**
   * Moves the pending message to an outbox and the replay log (one storage transaction) before
   * anything is sent, so a change arriving meanwhile starts a new pending message instead of being
   * lost, and a failed queue send is retried with the alarm.
   */
  private async flush(): Promise<void> {
    const storage = this.ctx.storage;
    const pending = await storage.get<Pending>("pending");
    if (pending !== undefined) {
      const seq = ((await storage.get<number>("seq")) ?? 0) + 1;
      const outbox = (await storage.get<FanoutJob[]>("outbox")) ?? [];
      const job: FanoutJob = { tenantId: pending.tenantId, seq, change: pending.change };
      // A job the queue would refuse must never sit in the outbox, where it would block every
      // later one: it becomes a dead letter (a summary; the job itself is too large to send).
      if (fitsQueueMessage(job)) outbox.push(job);
      else {
        await this.env.DEAD_LETTERS.send({
          tenantId: pending.tenantId,
          seq,
          topic: pending.change.topic,
          reason: "fan-out job larger than a queue message (128 KB); the WebSocket clients got it",
        });
      }
      const frame = pushFrame(seq, pending.change);
      await storage.put({ seq, outbox, [logKey(seq)]: { at: Date.now(), frame } satisfies LogEntry });
      await storage.delete(["pending", "flushAt"]);
      const text = JSON.stringify(frame);
      for (const ws of this.ctx.getWebSockets()) {
        try {
          ws.send(text);
        } catch {
          // a socket closing right now; its client replays with ?since=
        }
      }
      await this.pruneLog(seq);
    }
    const outbox = (await storage.get<FanoutJob[]>("outbox")) ?? [];
    if (outbox.length === 0) return;
    await this.env.FANOUT.sendBatch(outbox.map((job) => ({ body: job })));
    // only what was sent leaves the outbox; a flush that ran meanwhile may have added more
    const sent = new Set(outbox.map((job) => job.seq));
    const rest = ((await storage.get<FanoutJob[]>("outbox")) ?? []).filter((job) => !sent.has(job.seq));
    if (rest.length === 0) await storage.delete("outbox");
    else await storage.put("outbox", rest);
  }

  /** Keeps the newest WS_REPLAY_SIZE messages, none older than WS_REPLAY_SECONDS. */
  private async pruneLog(seq: number): Promise<void> {
    const { replaySize, replaySeconds } = readConfig(this.env).websocket;
    const oldest = Date.now() - replaySeconds * 1000;
    const log = await this.ctx.storage.list<LogEntry>({ prefix: "log:", end: logKey(seq) });
    const stale = [...log].filter(([key, entry]) => key <= logKey(seq - replaySize) || entry.at < oldest).map(([key]) => key);
    for (let i = 0; i < stale.length; i += 128) await this.ctx.storage.delete(stale.slice(i, i + 128));
  }

  /** Closes the sockets whose grant has expired (close code 4001). */
  private closeExpired(): void {
    const now = Date.now() / 1000;
    for (const ws of this.ctx.getWebSockets()) {
      const state = ws.deserializeAttachment() as SocketState | null;
      if (state?.expiresAt != null && state.expiresAt <= now) ws.close(CLOSE.credentialInvalid, "client grant expired");
    }
  }

  /** One alarm serves both the merge window and the earliest grant expiry. */
  private async schedule(): Promise<void> {
    const times: number[] = [];
    const flushAt = await this.ctx.storage.get<number>("flushAt");
    if (flushAt !== undefined) times.push(flushAt);
    for (const ws of this.ctx.getWebSockets()) {
      const state = ws.deserializeAttachment() as SocketState | null;
      // past expiries are closed already (closeExpired), only future ones need the alarm
      if (state?.expiresAt != null && state.expiresAt * 1000 > Date.now()) times.push(state.expiresAt * 1000);
    }
    if (times.length === 0) return;
    const at = Math.min(...times);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
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
  }
}

function send(ws: WebSocket, frame: Frame): void {
  ws.send(JSON.stringify(frame));
}
