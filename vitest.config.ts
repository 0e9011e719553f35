import { webcrypto } from "node:crypto";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** A fresh VAPID key pair for the test run, in the forms the director reads. */
async function vapidKeys() {
  const pair = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const raw = Buffer.from(await webcrypto.subtle.exportKey("raw", pair.publicKey));
  const jwk = await webcrypto.subtle.exportKey("jwk", pair.privateKey);
  return { VAPID_PUBLIC_KEY: raw.toString("base64url"), VAPID_PRIVATE_KEY: jwk.d! };
}

export default defineConfig({
  test: {
    reporters: ["default", "./scripts/summary-reporter.ts"],
    projects: [
      {
        // Unit and integration tests inside workerd, with the real D1, Durable Objects and Queues.
        plugins: [
          cloudflareTest(async () => {
            const migrations = (await readD1Migrations(path.resolve("."))).filter((m) => m.name === "schema.sql");
            return {
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  ADMIN_TOKEN: "test-admin-token",
                  ALLOW_INSECURE_PUSH_RESOURCES: "false",
                  ...(await vapidKeys()),
                  TEST_SCHEMA: migrations,
                },
              },
            };
          }),
        ],
        test: {
          name: "workers",
          include: ["test/**/*.test.ts"],
          exclude: ["test/e2e/**"],
          setupFiles: ["test/setup.ts"],
        },
      },
      {
        // End-to-end: `wrangler dev` in a child process, driven over HTTP from Node.
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
