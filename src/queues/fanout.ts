import type { FanoutJob } from "../hub/topic-hub";

/**
 * `fanout` consumer. Expanding a topic message into deliveries comes with the Web Push
 * transport; until then a job is acknowledged so the queue does not back up.
 */
export async function consumeFanout(batch: MessageBatch<FanoutJob>, _env: Env): Promise<void> {
  batch.ackAll();
}
