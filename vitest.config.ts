import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: ["default", "./scripts/summary-reporter.ts"],
    // the director's own info lines (a request, a delivery: ~1,800 of them per run) are tested in
    // test/log.test.ts, not shown; nor are the `meter` lines (METER is on in workerd, so every
    // test runs through the metered bindings; test/meter.test.ts reads them); warnings and errors
    // still are
    onConsoleLog: (line) => (line.startsWith('{"level":"info"') || line.startsWith("meter {") ? false : undefined),
    projects: [
      {
        // Unit and integration tests inside workerd, with the real D1, Durable Objects and Queues.
        plugins: [
          cloudflareTest(async ({ inject }) => {
            const migrations = await readD1Migrations(path.resolve("migrations"));
            return {
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                // beside DB: a database built from schema.sql, and one upgraded from an old schema
                d1Databases: ["SCHEMA_DB", "UPGRADE_DB"],
                // the optional Analytics Engine dataset, as an operator binds it (local: written nowhere)
                analyticsEngineDatasets: { ANALYTICS: { dataset: "push_director" } },
                bindings: {
                  ADMIN_TOKEN: "test-admin-token",
                  ALLOW_INSECURE_PUSH_RESOURCES: "false",
                  VAPID_PUBLIC_KEY: inject("vapidPublicKey"),
                  VAPID_PRIVATE_KEY: inject("vapidPrivateKey"),
                  VAPID_SUBJECT: "mailto:ops@push-director.example",
                  TEST_MIGRATIONS: migrations,
                  // schema.sql as one migration, to compare with what migrations/ builds
                  TEST_SCHEMA_SQL: (await readD1Migrations(path.resolve("."))).filter((m) => m.name === "schema.sql"),
                  // a fixed key, so tests can seal and open as the director does
                  SECRETS_KEY: "dGVzdC1zZWNyZXRzLWtleS0zMi1ieXRlcy1sb25nISE",
                  TEST_PUSH_SERVICE: inject("pushServiceUrl"),
                  // third-party data from ../shared beside the checkout, never copied into the
                  // repository: read by the global setup, which stops the run if a folder is missing
                  TEST_SPEC_SAMPLES: inject("specSamples"),
                  TEST_INTEROP_BODIES: inject("interopBodies"),
                  TEST_SEED_002: inject("seed002"),
                  FCM_SERVICE_ACCOUNT: inject("fcmServiceAccount"),
                  FCM_API_BASE: inject("fcmServiceUrl"),
                  GOOGLE_OAUTH_TOKEN_URL: inject("fcmTokenUrl"),
                  // FCM topics' batchAdd/batchRemove go to the same stand-in (FCM_TOPIC_THRESHOLD stays
                  // at its default, 1000; tests of topic messaging lower it)
                  FCM_IID_API_BASE: inject("fcmServiceUrl"),
                  TEST_FCM_SERVICE: inject("fcmServiceUrl"),
                  // HMS's stand-in (test/support/hms-service.ts); HMS_APP_ID stays empty, so HMS is off
                  // unless a test configures it with TEST_HMS_APP_ID and TEST_HMS_CLIENT_SECRET
                  HMS_API_BASE: inject("hmsServiceUrl"),
                  HMS_TOKEN_URL: inject("hmsTokenUrl"),
                  TEST_HMS_SERVICE: inject("hmsServiceUrl"),
                  TEST_HMS_APP_ID: inject("hmsAppId"),
                  TEST_HMS_CLIENT_SECRET: inject("hmsClientSecret"),
                  // a WebDAV origin for the push gateway, under /base/ (test/support/dav-origin.ts)
                  TEST_DAV_ORIGIN: inject("davOriginUrl"),
                  // and a real one: Debian's Radicale, which .ci/run installs when it is missing
                  TEST_RADICALE: inject("radicaleUrl"),
                  // small WebSocket limits, so the tests reach them
                  WS_REPLAY_SIZE: "5",
                  // the notify token's sockets on one topic (users' come from each tenant's limits)
                  WS_MAX_SOCKETS_PER_CLIENT: "3",
                  AUTH_FAILURES_PER_MINUTE: "20",
                  // every binding counted (src/meter.ts): all tests run through the wrappers
                  METER: "true",
                },
              },
            };
          }),
        ],
        test: {
          name: "workers",
          include: ["test/**/*.test.ts"],
          exclude: ["test/e2e/**", "test/**/*.node.test.ts"],
          globalSetup: ["test/support/global-setup.ts"],
          setupFiles: ["test/setup.ts"],
        },
      },
      {
        // Node-side checks against independent implementations (http_ece, libxml2's RELAX NG).
        // The draft's schema and samples come from ../shared/spec/xml, checked once before any file.
        test: { name: "node", include: ["test/**/*.node.test.ts"], environment: "node", globalSetup: ["test/support/shared.ts"] },
      },
      {
        // End-to-end: `npm start` (wrangler dev) in a child process, driven over HTTP from Node.
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
