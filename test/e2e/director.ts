// Starts the director the way the README does (`npm start` = scripts/dev.mjs) in a child process,
// on free ports and a throw-away state folder, and stops it again.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Director {
  url: string;
  adminToken: string;
  output: () => string;
  stop: () => Promise<void>;
}

export async function startDirector(extraEnv: Record<string, string> = {}): Promise<Director> {
  const dir = mkdtempSync(path.join(tmpdir(), "push-director-e2e-"));
  const [port, inspectorPort] = [await freePort(), await freePort()];
  const devVars = path.join(dir, "dev.vars");
  const child: ChildProcess = spawn(process.execPath, [path.join(root, "scripts/dev.mjs"), "--inspector-port", String(inspectorPort)], {
    cwd: root,
    env: { ...process.env, ...extraEnv, PORT: String(port), PUSH_DIRECTOR_DEV_VARS: devVars, PUSH_DIRECTOR_STATE: path.join(dir, "state") },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/Ready on http/.test(output)) resolve();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`npm start exited (${code}) before it was ready:\n${output}`)));
  });
  const adminToken = /^ADMIN_TOKEN=(.+)$/m.exec(readFileSync(devVars, "utf8"))![1];
  return {
    url: `http://127.0.0.1:${port}`,
    adminToken,
    output: () => output,
    async stop() {
      if (child.exitCode === null) process.kill(-child.pid!, "SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
