// A real WebDAV server for the push gateway (issue 14): Debian's Radicale (`apt-get install
// radicale`, as .ci/run does when it is missing; RADICALE names another executable), started on a
// free port with a throw-away storage folder, htpasswd users and `owner_only` rights, as an
// operator would run it behind the gateway.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./ports.ts";

export const RADICALE = process.env.RADICALE ?? "/usr/bin/radicale";

/** The users every Radicale started here knows (htpasswd, plain), each owning `/<user>/`. */
export const RADICALE_USERS = { alice: "alice-pw", bob: "bob-pw" } as const;

export const basicAuth = (user: keyof typeof RADICALE_USERS) => `Basic ${Buffer.from(`${user}:${RADICALE_USERS[user]}`).toString("base64")}`;

/** Start-up takes about a second; a busy machine gets more. */
const READY_TIMEOUT_MS = 30_000;

export interface Radicale {
  /** `http://127.0.0.1:<port>`, no trailing slash */
  url: string;
  stop: () => Promise<void>;
}


export async function startRadicale(): Promise<Radicale> {
  if (!existsSync(RADICALE)) {
    throw new Error(`no Radicale at ${RADICALE}: run \`apt-get install radicale\` (as .ci/run does) or set RADICALE to its path`);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(await freePort());
    } catch (error) {
      // the port was let go before Radicale bound it: another process may have taken it meanwhile
      if (!(error instanceof PortTaken) || attempt === 3) throw error;
    }
  }
}

class PortTaken extends Error {}

async function launch(port: number): Promise<Radicale> {
  const dir = mkdtempSync(path.join(tmpdir(), "push-director-radicale-"));
  writeFileSync(path.join(dir, "users"), Object.entries(RADICALE_USERS).map(([user, password]) => `${user}:${password}\n`).join(""));
  writeFileSync(
    path.join(dir, "config"),
    [
      "[server]",
      `hosts = 127.0.0.1:${port}`,
      "[auth]",
      "type = htpasswd",
      `htpasswd_filename = ${path.join(dir, "users")}`,
      "htpasswd_encryption = plain",
      // Radicale waits about this long after a failed login; the tests try wrong passwords on purpose
      "delay = 0",
      "[rights]",
      "type = owner_only",
      "[storage]",
      `filesystem_folder = ${path.join(dir, "collections")}`,
      "[web]",
      "type = none",
      "[logging]",
      "level = warning",
      "mask_passwords = True",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn(RADICALE, ["--config", path.join(dir, "config")], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  // ready once it answers; an early exit is a failure (a taken port among them)
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      const Failure = /Address already in use|address in use/i.test(output) ? PortTaken : Error;
      throw new Failure(`radicale exited (${child.exitCode}) before it answered:\n${output}`);
    }
    try {
      const answer = await fetch(`${url}/`, { method: "OPTIONS" });
      await answer.arrayBuffer();
      return { url, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`radicale did not answer within ${READY_TIMEOUT_MS / 1000} s:\n${output}`);
    }
    // the next poll waits for either the process to end or a short while, whichever comes first
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 100))]);
  }
}
