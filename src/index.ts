import { app } from "./app";
import { errorFields, log } from "./log";
import { bodyBytes, metered } from "./meter";
import { queue } from "./queues";
import { purge, wakePollers } from "./scheduled";

export { GatewayPoller } from "./gateway/poller";
export { ConnectionHub } from "./hub/connection-hub";
export { TopicHub } from "./hub/topic-hub";
export { AuthFailures } from "./limits/auth-failures";
export { TenantLimiter } from "./limits/tenant-limiter";

export default {
  // METER=true: each invocation counted and logged as one `meter` line (src/meter.ts)
  fetch: (request, env, ctx) => metered(env, "fetch", { worker_requests: 1 }, async (metered) => app.fetch(request, metered, ctx)),
  queue: (batch, env) =>
    metered(
      env,
      `queue:${batch.queue}`,
      {
        worker_requests: 1,
        queue_messages_consumed: batch.messages.length,
        queue_bytes_consumed: batch.messages.reduce((sum, message) => sum + bodyBytes(message.body), 0),
      },
      (metered) => queue(batch, metered),
    ),
  async scheduled(_controller, env, _ctx) {
    // awaited, not left to waitUntil, so the meter line counts the work
    await metered(env, "scheduled", { worker_requests: 1 }, (env) =>
      Promise.all([
        purge(env).then(
          (purged) => log(env, "info", "purge", purged),
          (error: unknown) => log(env, "error", "purge_failed", errorFields(error)),
        ),
        wakePollers(env).then(
          (gateways) => log(env, "info", "pollers_woken", { gateways }),
          (error: unknown) => log(env, "error", "pollers_wake_failed", errorFields(error)),
        ),
      ]),
    );
  },
} satisfies ExportedHandler<Env>;
