import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      /** migrations/, handed in by vitest.config.ts. */
      TEST_MIGRATIONS: D1Migration[];
      /** schema.sql as one migration. */
      TEST_SCHEMA_SQL: D1Migration[];
      /** Built from schema.sql (test/schema.test.ts). */
      SCHEMA_DB: D1Database;
      /** Built from an old migration, filled, then upgraded (test/schema.test.ts). */
      UPGRADE_DB: D1Database;
      /** Base URL of the stand-in push service (test/support/push-service.ts) for this run. */
      TEST_PUSH_SERVICE: string;
      /** Base URL of the OAuth + FCM stand-in (test/support/fcm-service.ts). */
      TEST_FCM_SERVICE: string;
      /** Base URL of the OAuth + Push Kit stand-in (test/support/hms-service.ts), and the app it knows. */
      TEST_HMS_SERVICE: string;
      TEST_HMS_APP_ID: string;
      TEST_HMS_CLIENT_SECRET: string;
      /** Base URL of the WebDAV origin stand-in (test/support/dav-origin.ts), which serves /base/. */
      TEST_DAV_ORIGIN: string;
      /** Base URL of a real Radicale (test/support/radicale.ts): users alice and bob, each owning /<user>/. */
      TEST_RADICALE: string;
      /** The draft's XML samples by file name (../shared/spec/xml beside the checkout). */
      TEST_SPEC_SAMPLES: Record<string, string>;
      /** Other servers' push-register bodies by file name, bytes as stored (../shared/interop/servers). */
      TEST_INTEROP_BODIES: Record<string, string>;
      /** The early draft with its sample requests (../shared/seeds/002_*.txt). */
      TEST_SEED_002: string;
    }
  }
}
