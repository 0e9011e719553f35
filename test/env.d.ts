import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      /** schema.sql split into statements, handed in by vitest.config.ts. */
      TEST_SCHEMA: D1Migration[];
    }
  }
}
