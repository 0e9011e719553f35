import { app } from "./app";
import { queue } from "./queues";
import { purge } from "./scheduled";

export { ConnectionHub } from "./hub/connection-hub";
export { TopicHub } from "./hub/topic-hub";
export { AuthFailures } from "./limits/auth-failures";
export { TenantLimiter } from "./limits/tenant-limiter";

export default {
  fetch: app.fetch,
  queue,
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(purge(env).then((purged) => console.log("purged", JSON.stringify(purged))));
  },
} satisfies ExportedHandler<Env>;
