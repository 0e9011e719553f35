import { consumeFanout } from "./fanout";
import type { FanoutJob } from "../hub/topic-hub";

export const FANOUT_QUEUE = "push-fanout";
export const DELIVERIES_QUEUE = "push-deliveries";

/** The Worker's `queue` handler: one consumer per queue named in wrangler.toml. */
export async function queue(batch: MessageBatch, env: Env): Promise<void> {
  switch (batch.queue) {
    case FANOUT_QUEUE:
      return consumeFanout(batch as MessageBatch<FanoutJob>, env);
    default:
      // A queue this code does not know yet: leave the messages for a version that does.
      console.error(`no consumer for queue ${batch.queue}; retrying ${batch.messages.length} messages`);
      batch.retryAll({ delaySeconds: 60 });
  }
}
