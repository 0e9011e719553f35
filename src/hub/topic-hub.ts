import { DurableObject } from "cloudflare:workers";
import { readConfig } from "../config";
import type { Change } from "./change";
import { CLOSE, pushFrame, type Frame, type PushFrame } from "./frames";
import { mergeChanges } from "./merge";

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

/** Headers the Worker sets when it hands an authorised WebSocket upgrade to the hub. */
export const HUB_HEADERS = {
  tenant: "X-Hub-Tenant",
  topic: "X-Hub-Topic",
  owner: "X-Hub-Owner",
  expires: "X-Hub-Expires",
  protocol: "X-Hub-Protocol",
} as const;

/** The name of the TopicHub that owns a topic: one per (tenant, topic). */
const topicHubName = (tenantId: string, topic: string) => `${tenantId}\n${topic}`;

/** The stub of the TopicHub that owns a tenant's topic. */
export const topicHub = (env: Env, tenantId: string, topic: string) => env.TOPIC_HUB.get(env.TOPIC_HUB.idFromName(topicHubName(tenantId, topic)));

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

  /** A WebSocket upgrade the Worker has authorised (see routes/websocket.ts). */
  async fetch(request: Request): Promise<Response> {
    const header = (name: string) => request.headers.get(name) ?? "";
    const topic = header(HUB_HEADERS.topic);
    const owner = header(HUB_HEADERS.owner) || null;
    const expires = Number(header(HUB_HEADERS.expires));
    const since = new URL(request.url).searchParams.get("since");
    const limits = readConfig(this.env).websocket;

    if (this.ctx.getWebSockets().length >= limits.maxPerTopic) {
      return Response.json({ error: { code: "too_many_sockets", message: `this topic holds ${limits.maxPerTopic} sockets at most` } }, { status: 429 });
    }
    const clientTag = `client:${owner ?? ""}`;
    if (this.ctx.getWebSockets(clientTag).length >= limits.maxPerClient) {
      return Response.json(
        { error: { code: "too_many_sockets", message: `one client holds ${limits.maxPerClient} sockets on a topic at most` } },
        { status: 429 },
      );
    }
    await this.rememberTopic(header(HUB_HEADERS.tenant), topic);

    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server, [clientTag]);
    const state: SocketState = { connectionId: crypto.randomUUID(), owner, expiresAt: expires > 0 ? expires : null };
    server.serializeAttachment(state);
    const seq = (await this.ctx.storage.get<number>("seq")) ?? 0;
    send(server, { type: "hello", connection_id: state.connectionId, topic, seq });
    if (since !== null) await this.replay(server, Number(since), seq);
    await this.schedule();
    const protocol = header(HUB_HEADERS.protocol);
    return new Response(null, { status: 101, webSocket: client, headers: protocol ? { "Sec-WebSocket-Protocol": protocol } : {} });
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
      outbox.push({ tenantId: pending.tenantId, seq, change: pending.change });
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
      if (state?.expiresAt != null && state.expiresAt <= now) ws.close(CLOSE.grantExpired, "client grant expired");
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
