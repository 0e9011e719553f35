#!/usr/bin/env node
// `npm run deploy`: brings a Cloudflare account to a running director in one idempotent command.
// Finds what exists (D1 database, queues, the Worker's secrets), plans with scripts/deploy-plan.ts,
// then: creates the D1 database if missing, applies migrations/ to it, creates missing queues,
// generates secrets that are absent (handed to `wrangler deploy --secrets-file` in a 0600 temp
// file, never argv), deploys, and checks GET /healthz on the new URL. The first failed step stops
// it (exit 1). Writes no tracked file; never reads or uploads `.dev.vars`.
//
// `--dry-run`: no account, credentials or network. Prints what would happen, applies migrations/ to
// a throw-away local D1 and runs `wrangler deploy --dry-run` (bindings, Total Upload).
// Environment: PUSH_DIRECTOR_URL (where to check /healthz when the Worker has no workers.dev URL).
import { spawnSync } from "node:child_process";
import { randomBytes, webcrypto } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DATABASE, planDeploy, QUEUES, SECRETS } from "./deploy-plan.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const wrangler = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
// No telemetry, no colours in tables we parse, no prompts (CI): every answer comes from this script.
const childEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0", CI: "true" };
const dryRun = process.argv.includes("--dry-run");
const TOTAL = 6;
const temp = mkdtempSync(path.join(tmpdir(), "push-director-deploy-"));
process.on("exit", () => rmSync(temp, { recursive: true, force: true }));

/** Runs wrangler with its output captured; never given a secret. */
function run(args) {
  const result = spawnSync(process.execPath, [wrangler, ...args], { cwd: root, encoding: "utf8", env: childEnv, maxBuffer: 64 << 20 });
  return { ok: result.status === 0, out: `${result.stdout ?? ""}${result.stderr ?? ""}`, stdout: result.stdout ?? "" };
}

const line = (n, what, result) => console.log(`[${n}/${TOTAL}] ${what}: ${result}`);

/** Stops the deploy at step n, showing wrangler's words. */
function fail(n, what, why, output = "") {
  if (output.trim()) process.stderr.write(`${output.trim()}\n`);
  line(n, what, `FAILED: ${why}`);
  process.exit(1);
}

const indent = (text) => text.trim().split("\n").map((l) => `      ${l}`).join("\n");

async function vapidPair() {
  const pair = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const publicKey = Buffer.from(await webcrypto.subtle.exportKey("raw", pair.publicKey)).toString("base64url");
  const { d } = await webcrypto.subtle.exportKey("jwk", pair.privateKey);
  return { VAPID_PUBLIC_KEY: publicKey, VAPID_PRIVATE_KEY: d };
}

async function generate(names) {
  const values = {};
  if (names.includes("VAPID_PUBLIC_KEY")) Object.assign(values, await vapidPair());
  for (const name of ["ADMIN_TOKEN", "SECRETS_KEY"]) if (names.includes(name)) values[name] = randomBytes(32).toString("base64url");
  return values;
}

const migrationFiles = () => readdirSync(path.join(root, "migrations")).filter((f) => f.endsWith(".sql")).sort();

if (dryRun) {
  const plan = planDeploy({ database: false, queues: [], workerExists: false, secrets: [] });
  const secrets = plan.find((s) => s.step === "secrets");
  line(1, "D1 database", `would create ${DATABASE} (binding DB) if missing; wrangler deploy binds it by name`);
  const state = path.join(temp, "d1");
  const applied = run(["d1", "migrations", "apply", "DB", "--local", "--persist-to", state]);
  if (!applied.ok) fail(2, "migrations", "applying migrations/ to a throw-away local D1 failed", applied.out);
  line(2, "migrations", `would apply to ${DATABASE} those not applied yet of ${migrationFiles().join(", ")} (all applied to a throw-away local D1)`);
  line(3, "queues", `would create ${QUEUES.join(", ")} if missing`);
  line(4, "secrets", `would generate ${secrets.generate.join(", ")} where absent (VAPID pair only when the Worker does not exist or has neither half)`);
  const built = run(["deploy", "--dry-run", "--outdir", path.join(temp, "dist")]);
  if (!built.ok) fail(5, "deploy", "wrangler deploy --dry-run failed", built.out);
  console.log(indent(built.out));
  const total = /Total Upload: ([^\n]+)/.exec(built.out)?.[1] ?? "?";
  line(5, "deploy", `would upload the Worker (Total Upload: ${total})`);
  line(6, "health", "would check GET /healthz on the deployed URL (503: exit 1)");
  process.exit(0);
}

// ── What exists ────────────────────────────────────────────────────────────────────────────────
const d1List = run(["d1", "list", "--json"]);
if (!d1List.ok) fail(1, "D1 database", "wrangler d1 list failed (logged in? `npx wrangler login` or CLOUDFLARE_API_TOKEN)", d1List.out);
let databases;
try {
  databases = JSON.parse(d1List.stdout.slice(d1List.stdout.indexOf("[")));
} catch {
  fail(1, "D1 database", "could not read wrangler d1 list --json", d1List.out);
}

/** Every queue name on the account: `wrangler queues list` prints a table, a page at a time. */
function listQueues() {
  const names = new Set();
  for (let page = 1; page <= 100; page++) {
    const listed = run(["queues", "list", "--page", String(page)]);
    if (!listed.ok) return null;
    const rows = listed.stdout
      .split("\n")
      .filter((l) => l.startsWith("│"))
      .map((l) => l.split("│").map((cell) => cell.trim()))
      .filter((cells) => cells[2] && cells[2] !== "name");
    const before = names.size;
    for (const cells of rows) names.add(cells[2]);
    if (rows.length === 0 || names.size === before) break;
  }
  return [...names];
}
const queues = listQueues();
if (queues === null) fail(3, "queues", "wrangler queues list failed", run(["queues", "list"]).out);

// "Worker not found" is the only answer that lets secrets (the VAPID pair above all) be generated.
const secretList = run(["secret", "list", "--format", "json"]);
const workerMissing = !secretList.ok && /Worker "[^"]+"[^\n]* not found/.test(secretList.out);
let secretNames = null;
if (secretList.ok) {
  try {
    secretNames = JSON.parse(secretList.stdout.slice(secretList.stdout.indexOf("["))).map((s) => s.name);
  } catch {
    secretNames = null;
  }
}

const [database, , queueStep, secretStep] = planDeploy({
  database: databases.some((db) => db.name === DATABASE),
  queues,
  workerExists: !workerMissing,
  secrets: workerMissing ? [] : secretNames,
});

// ── 1. D1 ──────────────────────────────────────────────────────────────────────────────────────
if (database.create) {
  const created = run(["d1", "create", DATABASE]);
  if (!created.ok) fail(1, "D1 database", `wrangler d1 create ${DATABASE} failed`, created.out);
  line(1, "D1 database", `created ${DATABASE}`);
} else line(1, "D1 database", `${DATABASE} exists`);

// ── 2. Migrations: nothing after a failed one ─────────────────────────────────────────────────
const migrated = run(["d1", "migrations", "apply", "DB", "--remote"]);
if (!migrated.ok) fail(2, "migrations", "wrangler d1 migrations apply DB --remote failed; nothing deployed", migrated.out);
const fresh = migrationFiles().filter((file) => new RegExp(`${file.replace(/\./g, "\\.")}.*✅`).test(migrated.out));
line(2, "migrations", fresh.length ? `applied ${fresh.join(", ")}` : "none to apply");

// ── 3. Queues ──────────────────────────────────────────────────────────────────────────────────
for (const name of queueStep.create) {
  const created = run(["queues", "create", name]);
  if (!created.ok) fail(3, "queues", `wrangler queues create ${name} failed`, created.out);
}
line(3, "queues", [queueStep.create.length && `created ${queueStep.create.join(", ")}`, queueStep.existing.length && `${queueStep.existing.join(", ")} exist`].filter(Boolean).join("; "));

// ── 4. Secrets: generated only when absent, uploaded with the deploy from a 0600 file ──────────
if (secretStep.refuse) fail(4, "secrets", secretStep.refuse, secretNames === null && !workerMissing ? secretList.out : "");
const generated = await generate(secretStep.generate);
const deployArgs = ["deploy"];
if (secretStep.generate.length) {
  const file = path.join(temp, "secrets.json");
  writeFileSync(file, JSON.stringify(generated), { mode: 0o600 });
  deployArgs.push("--secrets-file", file);
}
line(
  4,
  "secrets",
  [
    secretStep.generate.length && `generated ${secretStep.generate.join(", ")} (uploaded with the deploy)`,
    secretStep.existing.length && `${secretStep.existing.join(", ")} kept`,
  ]
    .filter(Boolean)
    .join("; "),
);

// ── 5. Deploy ──────────────────────────────────────────────────────────────────────────────────
const deployed = run(deployArgs);
rmSync(path.join(temp, "secrets.json"), { force: true });
if (generated.ADMIN_TOKEN) {
  // shown once, here only: the Worker keeps it as a secret nobody can read back
  console.log(`\n  ADMIN_TOKEN=${generated.ADMIN_TOKEN}\n  Keep it: it is shown only now${deployed.ok ? "" : " (the deploy failed: it may not have been stored)"}.\n`);
}
if (generated.SECRETS_KEY && secretStep.existing.length) {
  console.log("  A new SECRETS_KEY was set: call POST /v1/admin/secrets/rotate once to seal rows stored before it.\n");
}
if (!deployed.ok) fail(5, "deploy", "wrangler deploy failed", deployed.out);
const url = process.env.PUSH_DIRECTOR_URL || /https:\/\/[^\s]+\.workers\.dev/.exec(deployed.out)?.[0];
line(5, "deploy", `deployed${url ? ` to ${url}` : ""}`);

// ── 6. Health ──────────────────────────────────────────────────────────────────────────────────
if (!url) fail(6, "health", "no workers.dev URL in wrangler's output: set PUSH_DIRECTOR_URL and rerun", deployed.out);
// a first workers.dev deploy can take a little while to answer; 503 is the director's own answer
const deadline = Date.now() + 90_000;
for (;;) {
  let status = 0;
  let body = "";
  try {
    const response = await fetch(new URL("/healthz", url), { signal: AbortSignal.timeout(10_000) });
    status = response.status;
    body = await response.text();
  } catch (error) {
    body = String(error);
  }
  if (status === 200) {
    line(6, "health", `GET ${new URL("/healthz", url)}: 200 ${body.slice(0, 200)}`);
    break;
  }
  if (status === 503 || Date.now() > deadline) fail(6, "health", `GET /healthz answered ${status || "nothing"}: ${body.slice(0, 500)}`);
  await new Promise((resolve) => setTimeout(resolve, 3000));
}
