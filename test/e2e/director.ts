// Starts the director the way the README does (`npm start` = scripts/dev.mjs) in a child process,
// on free ports and a throw-away state folder, and stops it again.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { SignJWT } from "jose";
import { freePort } from "../support/ports.ts";
export { freePort };

const root = path.resolve(import.meta.dirname, "../..");
/** Start-up took 12–18 s on a busy 2-core machine. */
const READY_TIMEOUT_MS = 90_000;
/** What `output()` keeps of the director's console: the last 4 MB. */
const OUTPUT_KEEP = 4_000_000;


export interface Director {
  url: string;
  adminToken: string;
  /** The secrets file `npm start` wrote (ADMIN_TOKEN, VAPID keys, …). */
  vars: Record<string, string>;
  output: () => string;
  /** The `meter` lines written so far (METER=true, src/meter.ts), each with when it arrived (performance.now()). */
  meters: () => MeterEntry[];
  /** Its local state folder (D1, Durable Objects, Queues), e.g. for `wrangler d1 execute --persist-to`. */
  stateDir: string;
  /** The process group's leader: `npm start`, with wrangler and workerd below it. */
  pid: number;
  stop: () => Promise<void>;
}

export interface MeterEntry {
  at: number;
  invocation: string;
  [count: string]: number | string;
}

/** Calls the director's JSON API; answers status, headers and the parsed body. */
export async function api(director: Director, path: string, token: string, init: { method?: string; json?: unknown } = {}) {
  const response = await fetch(`${director.url}${path}`, {
    method: init.method ?? (init.json === undefined ? "GET" : "POST"),
    headers: { Authorization: `Bearer ${token}`, ...(init.json === undefined ? {} : { "Content-Type": "application/json" }) },
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? null : JSON.parse(text) };
}

/** How often a start that lost its ports to another process is tried again with new ones. */
const PORT_ATTEMPTS = 3;

export interface StartOptions {
  /**
   * The folder to run in (its dev.vars and state/), left in place by `stop()`: a second director
   * started on a folder a stopped one used serves the same D1, Durable Objects and secrets (e.g.
   * after rows were written into its D1 with `wrangler d1 execute`). Default: a fresh throw-away one.
   */
  dir?: string;
  /**
   * Vars and secrets as the operator's own env file gives them (a stand-in's URLs, a service
   * account's JSON): written beside dev.vars and passed last, so they override both it and
   * wrangler.toml's [vars].
   */
  vars?: Record<string, string>;
}

export async function startDirector(extraEnv: Record<string, string> = {}, wranglerArgs: string[] = [], options: StartOptions = {}): Promise<Director> {
  // freePort() lets the port go before wrangler binds it, so another process (a director the next
  // test file starts, its inspector) can take it in between: CI once lost a run to "Address already
  // in use (socket "direct:1:default")", the inspector's port. Such a start is tried with new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(extraEnv, wranglerArgs, options);
    } catch (error) {
      if (!(error instanceof PortTaken) || attempt === PORT_ATTEMPTS) throw error;
    }
  }
}

class PortTaken extends Error {}

async function launch(extraEnv: Record<string, string>, wranglerArgs: string[], options: StartOptions): Promise<Director> {
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), "push-director-e2e-"));
  // a folder the caller gave is the caller's to remove
  const removeDir = () => options.dir === undefined && rmSync(dir, { recursive: true, force: true });
  const [port, inspectorPort] = [await freePort(), await freePort()];
  const devVars = path.join(dir, "dev.vars");
  const given: string[] = [];
  if (options.vars !== undefined) {
    const file = path.join(dir, "given.env");
    // single quotes keep a JSON value (a service account) whole
    writeFileSync(file, Object.entries(options.vars).map(([name, value]) => `${name}='${value}'`).join("\n"));
    given.push("--env-file", file);
  }
  const child: ChildProcess = spawn(process.execPath, [path.join(root, "scripts/dev.mjs"), "--inspector-port", String(inspectorPort), ...wranglerArgs, ...given], {
    cwd: root,
    env: { ...process.env, ...extraEnv, PORT: String(port), PUSH_DIRECTOR_DEV_VARS: devVars, PUSH_DIRECTOR_STATE: path.join(dir, "state") },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  // The director logs a line per request and delivery: a 10,000-push fan-out writes megabytes.
  // Keep the last OUTPUT_KEEP characters in chunks, and look for "Ready" only in what is new, so
  // the harness costs nothing per line (searching the whole text on every chunk was quadratic).
  const chunks: string[] = [];
  let kept = 0;
  // meter lines are kept apart, whole (a chunk may end inside a line)
  const meters: MeterEntry[] = [];
  let partial = "";
  let ready = false;
  const output = () => chunks.join("");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    // wrangler may report a start-up error and keep running without ever answering: give up, and
    // stop the whole process group, rather than wait forever
    const timer = setTimeout(() => {
      process.kill(-child.pid!, "SIGTERM");
      reject(new Error(`npm start was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${output()}`));
    }, READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      const seam = (chunks.at(-1) ?? "").slice(-32) + text;
      chunks.push(text);
      const lines = (partial + text).split("\n");
      partial = lines.pop()!;
      const at = performance.now();
      for (const line of lines) {
        const start = line.indexOf("meter {");
        if (start >= 0) meters.push({ at, ...JSON.parse(line.slice(start + "meter ".length)) });
      }
      kept += text.length;
      while (kept > OUTPUT_KEEP && chunks.length > 1) kept -= chunks.shift()!.length;
      if (!ready && /Ready on http/.test(seam)) {
        ready = true;
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      const text = output();
      try {
        process.kill(-child.pid!, "SIGTERM"); // whatever wrangler left of the group
      } catch {
        // none left
      }
      removeDir();
      const Failure = /Address already in use/.test(text) ? PortTaken : Error;
      reject(new Failure(`npm start exited (${code}) before it was ready:\n${text}`));
    });
  });
  const vars = Object.fromEntries(
    readFileSync(devVars, "utf8")
      .split("\n")
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    adminToken: vars.ADMIN_TOKEN,
    vars,
    output,
    meters: () => meters,
    stateDir: path.join(dir, "state"),
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) process.kill(-child.pid!, "SIGTERM");
      await exited;
      removeDir();
    },
  };
}

/** A client grant as a tenant mints it (HS256 with its grant secret). */
export function mintGrant(tenant: { id: string; grant_secret: string }, topics: string[], sub: string, expiresIn: string | number = "10m"): Promise<string> {
  return new SignJWT({ topics })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(tenant.id)
    .setSubject(sub)
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(tenant.grant_secret));
}
