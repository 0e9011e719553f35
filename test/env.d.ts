import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      /** schema.sql split into statements, handed in by vitest.config.ts. */
      TEST_SCHEMA: D1Migration[];
      /** Base URL of the stand-in push service (test/support/push-service.ts) for this run. */
      TEST_PUSH_SERVICE: string;
      /** Base URL of the OAuth + FCM stand-in (test/support/fcm-service.ts). */
      TEST_FCM_SERVICE: string;
      /** The draft's XML samples by file name (test/fixtures/spec). */
      TEST_SPEC_SAMPLES: Record<string, string>;
    }
  }
}
