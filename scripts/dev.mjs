#!/usr/bin/env node
// `npm start`: runs the director locally on wrangler dev with local D1, Durable Objects and Queues.
// Creates the secrets file with a random admin token, fresh VAPID keys and a SECRETS_KEY when it is
// missing (and adds SECRETS_KEY to an older one), applies migrations/ to the local D1, prints how to
// create a tenant, then serves until stopped.
//
// Environment: PORT (default 8787), PUSH_DIRECTOR_DEV_VARS (secrets file, default .dev.vars),
// PUSH_DIRECTOR_STATE (local state folder, default .wrangler/state). Extra arguments go to wrangler dev.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes, webcrypto } from "node:crypto";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const port = process.env.PORT || "8787";
const devVars = path.resolve(root, process.env.PUSH_DIRECTOR_DEV_VARS || ".dev.vars");
const state = path.resolve(root, process.env.PUSH_DIRECTOR_STATE || ".wrangler/state");
const wrangler = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
// No telemetry: it would only fail on machines without internet access, and slow the start.
const childEnv = { ...process.env, WRANGLER_SEND_METRICS: "false" };

async function writeDevVars() {
  const pair = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const publicKey = Buffer.from(await webcrypto.subtle.exportKey("raw", pair.publicKey)).toString("base64url");
  const { d } = await webcrypto.subtle.exportKey("jwk", pair.privateKey);
  const lines = [
    "# Written by `npm start` for local use only. Delete it to get fresh secrets.",
    `ADMIN_TOKEN=${randomBytes(32).toString("base64url")}`,
    `VAPID_PUBLIC_KEY=${publicKey}`,
    `VAPID_PRIVATE_KEY=${d}`,
    // seals the secrets D1 keeps (grant secrets, Web Push auth, FCM tokens, rotated VAPID keys)
    `SECRETS_KEY=${randomBytes(32).toString("base64url")}`,
    // local push services are plain http: on loopback
    "ALLOW_INSECURE_PUSH_RESOURCES=true",
  ];
  writeFileSync(devVars, `${lines.join("\n")}\n`, { mode: 0o600 });
  console.log(`Created ${path.relative(root, devVars) || devVars} with a random ADMIN_TOKEN, fresh VAPID keys and a SECRETS_KEY.`);
}

if (!existsSync(devVars)) await writeDevVars();
else if (!/^SECRETS_KEY=./m.test(readFileSync(devVars, "utf8"))) {
  // a secrets file from before secrets were sealed at rest
  appendFileSync(devVars, `\n# Added by \`npm start\`: seals the secrets D1 keeps.\nSECRETS_KEY=${randomBytes(32).toString("base64url")}\n`);
  console.log(`Added a SECRETS_KEY to ${path.relative(root, devVars) || devVars}; run POST /v1/admin/secrets/rotate to seal rows stored before it.`);
}

// The local D1 is built and upgraded like a deployed one: the migrations not applied yet, in order.
// A state built from schema.sql before migrations began adopts 0001 (IF NOT EXISTS throughout).
const applied = spawnSync(process.execPath, [wrangler, "d1", "migrations", "apply", "DB", "--local", "--persist-to", state], {
  cwd: root,
  encoding: "utf8",
  env: { ...childEnv, CI: "true" },
  stdio: ["ignore", "pipe", "pipe"],
});
if (applied.status !== 0) {
  process.stderr.write(applied.stdout + applied.stderr);
  console.error("Applying migrations/ to the local D1 failed.");
  process.exit(1);
}
console.log("Applied migrations/ to the local D1 database.");

const adminTokenLine = readFileSync(devVars, "utf8").split("\n").find((line) => line.startsWith("ADMIN_TOKEN="));
const relVars = path.relative(process.cwd(), devVars) || devVars;
console.log(`
The admin token is ADMIN_TOKEN in ${relVars}${adminTokenLine ? "" : " (missing: add it)"}. Create a tenant with:

  curl -s -X POST http://localhost:${port}/v1/admin/tenants \\
    -H "Authorization: Bearer $(sed -n 's/^ADMIN_TOKEN=//p' ${relVars})" \\
    -H 'Content-Type: application/json' -d '{"name": "my-dav-server"}'

or sign in with it at http://localhost:${port}/admin. The API: http://localhost:${port}/docs
`);

const args = [wrangler, "dev", "--port", port, "--persist-to", state, "--env-file", devVars, ...process.argv.slice(2)];
if (!process.stdout.isTTY) args.push("--show-interactive-dev-session=false");
const child = spawn(process.execPath, args, { cwd: root, stdio: "inherit", env: childEnv });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
