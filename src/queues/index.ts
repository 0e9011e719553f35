import type { FanoutJob } from "../hub/topic-hub";
import { consumeDeliveries } from "./deliveries";
import { consumeFanout } from "./fanout";
import { insertDeadLetters } from "../store/dead-letters";
import { nowSeconds } from "../expiry";
import { DEAD_LETTER_QUEUE, DELIVERIES_QUEUE, FANOUT_QUEUE, type DeliveryJob, type SecretsRotationJob, type VapidRotationJob } from "./jobs";

/** The Worker's `queue` handler: one consumer per queue named in wrangler.toml. */
export async function queue(batch: MessageBatch, env: Env): Promise<void> {
  switch (batch.queue) {
    case FANOUT_QUEUE:
      return consumeFanout(batch as MessageBatch<FanoutJob | VapidRotationJob | SecretsRotationJob>, env);
    case DELIVERIES_QUEUE:
      return consumeDeliveries(batch as MessageBatch<DeliveryJob>, env);
    case DEAD_LETTER_QUEUE:
      // Jobs that ran out of retries (sent here by the deliveries consumer, or by the queue after
      // max_retries) are kept in D1 for the operator.
      await insertDeadLetters(
        env.DB,
        batch.messages.map((m) => ({ tenantId: (m.body as { tenantId?: string }).tenantId ?? "", queue: DEAD_LETTER_QUEUE, body: m.body })),
        nowSeconds(),
      );
      batch.ackAll();
      return;
    default:
      // A queue this code does not know yet: leave the messages for a version that does.
      console.error(`no consumer for queue ${batch.queue}; retrying ${batch.messages.length} messages`);
      batch.retryAll({ delaySeconds: 60 });
  }
}
