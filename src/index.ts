import { app } from "./app";
import { errorFields, log } from "./log";
import { queue } from "./queues";
import { purge, wakePollers } from "./scheduled";

export { GatewayPoller } from "./gateway/poller";
export { ConnectionHub } from "./hub/connection-hub";
export { TopicHub } from "./hub/topic-hub";
export { AuthFailures } from "./limits/auth-failures";
export { TenantLimiter } from "./limits/tenant-limiter";

export default {
  fetch: app.fetch,
  queue,
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(
      purge(env).then(
        (purged) => log(env, "info", "purge", purged),
        (error: unknown) => log(env, "error", "purge_failed", errorFields(error)),
      ),
    );
    ctx.waitUntil(
      wakePollers(env).then(
        (gateways) => log(env, "info", "pollers_woken", { gateways }),
        (error: unknown) => log(env, "error", "pollers_wake_failed", errorFields(error)),
      ),
    );
  },
} satisfies ExportedHandler<Env>;
