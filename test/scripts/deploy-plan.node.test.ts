// scripts/deploy-plan.ts (what `npm run deploy` does, given what exists) and the dry run of
// scripts/deploy.mjs, which needs no account, credentials or network.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { planDeploy, QUEUES, SECRETS, type Existing, type Step } from "../../scripts/deploy-plan.ts";

const root = path.resolve(import.meta.dirname, "../..");
const nothing: Existing = { database: false, queues: [], workerExists: false, secrets: [] };
const everything: Existing = { database: true, queues: [...QUEUES, "someone-elses"], workerExists: true, secrets: [...SECRETS, "FCM_SERVICE_ACCOUNT"] };
const secretsOf = (existing: Existing) => planDeploy(existing).find((s) => s.step === "secrets") as Extract<Step, { step: "secrets" }>;

describe("planDeploy", () => {
  it("creates everything on an empty account, in order", () => {
    expect(planDeploy(nothing)).toEqual([
      { step: "database", create: true, name: "push-director" },
      { step: "migrations" },
      { step: "queues", create: ["push-fanout", "push-deliveries", "push-dead-letters"], existing: [] },
      { step: "secrets", generate: ["ADMIN_TOKEN", "VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY", "SECRETS_KEY"], existing: [], refuse: null },
      { step: "deploy" },
      { step: "health" },
    ]);
  });

  it("creates and generates nothing when all exists (a rerun)", () => {
    const steps = planDeploy(everything);
    expect(steps[0]).toMatchObject({ create: false });
    expect(steps[2]).toEqual({ step: "queues", create: [], existing: QUEUES });
    expect(steps[3]).toEqual({ step: "secrets", generate: [], existing: SECRETS, refuse: null });
  });

  it("creates only what is missing", () => {
    const steps = planDeploy({ ...everything, queues: ["push-fanout"], secrets: ["ADMIN_TOKEN", "VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY"] });
    expect(steps[2]).toMatchObject({ create: ["push-deliveries", "push-dead-letters"] });
    // an older deployment, from before secrets were sealed at rest
    expect(steps[3]).toMatchObject({ generate: ["SECRETS_KEY"], refuse: null });
  });

  it("generates the VAPID pair only when truly absent, never because the listing failed", () => {
    // "Worker not found": a first deploy
    expect(secretsOf({ ...everything, workerExists: false, secrets: [] }).generate).toContain("VAPID_PRIVATE_KEY");
    // the listing failed with an error: stop, generate nothing
    const failed = secretsOf({ ...everything, secrets: null });
    expect(failed.generate).toEqual([]);
    expect(failed.refuse).toMatch(/could not be listed/);
    // the Worker exists and has neither half: a pair is generated
    expect(secretsOf({ ...everything, secrets: ["ADMIN_TOKEN", "SECRETS_KEY"] }).generate).toEqual(["VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY"]);
    // half a pair is never completed with a new half
    const half = secretsOf({ ...everything, secrets: ["ADMIN_TOKEN", "VAPID_PUBLIC_KEY"] });
    expect(half.generate).toEqual([]);
    expect(half.refuse).toMatch(/VAPID_PUBLIC_KEY/);
  });
});

describe("npm run deploy -- --dry-run", () => {
  it("needs no account or credentials, names every step and shows the upload", { timeout: 90_000 }, () => {
    const home = mkdtempSync(path.join(tmpdir(), "deploy-home-"));
    try {
      const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CLOUDFLARE_")));
      const result = spawnSync(process.execPath, ["scripts/deploy.mjs", "--dry-run"], {
        cwd: root,
        encoding: "utf8",
        env: { ...env, HOME: home },
        timeout: 80_000,
      });
      expect(result.status, result.stdout + result.stderr).toBe(0);
      const out = result.stdout;
      const would = out.split("\n").filter((line) => /^\[\d\/6\] .*would /.test(line));
      expect(would).toHaveLength(6);
      expect(out).toMatch(/would create push-director/);
      expect(out).toMatch(/0001_initial\.sql.*0008_tenants_by_created\.sql/);
      for (const name of [...QUEUES, ...SECRETS]) expect(out).toContain(name);
      expect(out).toMatch(/\[5\/6\] deploy: would upload the Worker \(Total Upload: [\d.]+ KiB/);
      expect(out).toMatch(/env\.DB \(push-director\)\s+D1 Database/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
