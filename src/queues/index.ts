import type { FanoutJob } from "../hub/topic-hub";
import { consumeDeliveries } from "./deliveries";
import { consumeFanout } from "./fanout";
import { insertDeadLetters } from "../store/dead-letters";
import { nowSeconds } from "../expiry";
import { errorFields, log } from "../log";
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
      // Each message is acked once written, and only one whose write failed is retried.
      for (const message of batch.messages) {
        const body = message.body as { tenantId?: string; reason?: unknown };
        try {
          await insertDeadLetters(
            env.DB,
            [{ tenantId: body.tenantId ?? "", queue: DEAD_LETTER_QUEUE, body, reason: typeof body.reason === "string" ? body.reason : null }],
            nowSeconds(),
          );
          message.ack();
          log(env, "warn", "dead_letter", { tenant: body.tenantId || null, reason: typeof body.reason === "string" ? body.reason : null });
        } catch (error) {
          log(env, "error", "dead_letter_not_written", { tenant: body.tenantId || null, message_id: message.id, ...errorFields(error) });
          message.retry({ delaySeconds: 30 });
        }
      }
      return;
    default:
      // A queue this code does not know yet: leave the messages for a version that does.
      log(env, "error", "no_consumer", { queue: batch.queue, messages: batch.messages.length });
      batch.retryAll({ delaySeconds: 60 });
  }
}
