import { DurableObject } from "cloudflare:workers";
import type { Change } from "./change";

/** What the `fanout` queue carries: one topic's message, to be expanded into deliveries. */
export interface FanoutJob {
  tenantId: string;
  change: Change;
}

/** The name of the TopicHub that owns a topic: one per (tenant, topic). */
export const topicHubName = (tenantId: string, topic: string) => `${tenantId}\n${topic}`;

/**
 * One Durable Object per (tenant, topic). It is where a topic's changes meet, so it can later
 * merge bursts and hold WebSocket clients; for now it hands each change straight to fan-out.
 */
export class TopicHub extends DurableObject<Env> {
  async accept(tenantId: string, changes: Change[]): Promise<void> {
    await this.env.FANOUT.sendBatch(changes.map((change): { body: FanoutJob } => ({ body: { tenantId, change } })));
  }
}
