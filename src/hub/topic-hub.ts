import { DurableObject } from "cloudflare:workers";
import type { Change } from "./change";

/** What the `fanout` queue carries: one topic's message, to be expanded into deliveries. */
export interface FanoutJob {
  tenantId: string;
  /** The hub's sequence number of this message (per topic, increasing). */
  seq: number;
  change: Change;
}

/** The name of the TopicHub that owns a topic: one per (tenant, topic). */
export const topicHubName = (tenantId: string, topic: string) => `${tenantId}\n${topic}`;

/**
 * One Durable Object per (tenant, topic). It is where a topic's changes meet, so it numbers
 * them and (later) merges bursts and holds WebSocket clients; for now each change goes straight
 * to fan-out.
 */
export class TopicHub extends DurableObject<Env> {
  /** Numbers the changes and enqueues them; returns the last sequence number used. */
  async accept(tenantId: string, changes: Change[]): Promise<number> {
    const first = ((await this.ctx.storage.get<number>("seq")) ?? 0) + 1;
    const jobs = changes.map((change, i): { body: FanoutJob } => ({ body: { tenantId, seq: first + i, change } }));
    await this.env.FANOUT.sendBatch(jobs);
    const last = first + changes.length - 1;
    await this.ctx.storage.put("seq", last);
    return last;
  }
}
