import { DurableObject } from "cloudflare:workers";
import { readConfig } from "../config";
import type { Change } from "./change";
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

/** The name of the TopicHub that owns a topic: one per (tenant, topic). */
export const topicHubName = (tenantId: string, topic: string) => `${tenantId}\n${topic}`;

/**
 * One Durable Object per (tenant, topic), where a topic's changes meet. Changes arriving within
 * COALESCE_MS are merged into one pending message (the draft's Rate Limiting); an alarm flushes
 * it as one numbered fan-out job. Nothing waits for delivery.
 */
export class TopicHub extends DurableObject<Env> {
  async accept(tenantId: string, changes: Change[]): Promise<void> {
    const storage = this.ctx.storage;
    let pending = await storage.get<Pending>("pending");
    for (const change of changes) {
      pending = { tenantId, change: pending === undefined ? change : mergeChanges(pending.change, change) };
    }
    await storage.put("pending", pending);
    const coalesceMs = readConfig(this.env).coalesceMs;
    if (coalesceMs === 0) return this.flush();
    if ((await storage.getAlarm()) === null) await storage.setAlarm(Date.now() + coalesceMs);
  }

  async alarm(): Promise<void> {
    await this.flush();
  }

  /**
   * Moves the pending message to an outbox (one storage transaction) before sending it, so a
   * change that arrives while the send is under way starts a new pending message instead of
   * being lost, and a failed send is retried with the alarm.
   */
  private async flush(): Promise<void> {
    const storage = this.ctx.storage;
    const pending = await storage.get<Pending>("pending");
    if (pending !== undefined) {
      const seq = ((await storage.get<number>("seq")) ?? 0) + 1;
      const outbox = (await storage.get<FanoutJob[]>("outbox")) ?? [];
      outbox.push({ tenantId: pending.tenantId, seq, change: pending.change });
      await storage.put({ seq, outbox });
      await storage.delete("pending");
    }
    const outbox = (await storage.get<FanoutJob[]>("outbox")) ?? [];
    if (outbox.length === 0) return;
    await this.env.FANOUT.sendBatch(outbox.map((job) => ({ body: job })));
    // only what was sent leaves the outbox; a flush that ran meanwhile may have added more
    const now = (await storage.get<FanoutJob[]>("outbox")) ?? [];
    const sent = new Set(outbox.map((job) => job.seq));
    const rest = now.filter((job) => !sent.has(job.seq));
    if (rest.length === 0) await storage.delete("outbox");
    else await storage.put("outbox", rest);
  }
}
