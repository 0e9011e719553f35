import type { FanoutJob } from "../hub/topic-hub";

/**
 * `fanout` consumer. Expanding a topic message into deliveries comes with the Web Push
 * transport; until then a job is acknowledged and logged so the queue does not back up.
 */
export async function consumeFanout(batch: MessageBatch<FanoutJob>, _env: Env): Promise<void> {
  for (const message of batch.messages) {
    console.log(`fanout: topic ${JSON.stringify(message.body.change.topic)} of tenant ${message.body.tenantId} (no transport yet)`);
    message.ack();
  }
}
