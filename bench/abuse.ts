// `node bench/abuse.ts [--limits R,RU,N,S,SU] [--var KEY:VALUE]… [--json FILE]`: what one abusive
// caller gets away with. Starts the director as a user does (`npm start`, insecure push resources
// on), creates a tenant "abuse" and, with --limits, asks for per-tenant limits
// (`PUT /v1/admin/tenants/{id}/limits` {registrations, registrations_per_user, notify_per_minute,
// sockets, sockets_per_user}; its status is printed, a 404 means the route does not exist and the
// runs go on with the director's defaults). --var passes `--var KEY:VALUE` to wrangler dev. Four runs:
//   registrations  2,000 POST /v1/subscriptions by one user (grant sub "mallory"), each a distinct
//                  http://127.0.0.1:9/push/<i> Web Push resource, 25 at a time
//   notifies       1,000 POST /v1/notify with the notify token over 50 topics, 25 at a time;
//                  refusals are checked for Retry-After
//   sockets        one user opens a socket on each of 300 topics (10 at a time) and keeps them all
//                  open until the run ends; refusals are read for their JSON error code
//   frames         one socket (notify token) sends 10,000 text frames "x" as fast as it can
// How to read it: the outcome column counts answers as "status [error code] × n" (0 = no answer in
// 15 s or a dropped connection). A director that limits abuse shows 429s (with Retry-After for
// notifies) after the limit, and closes (or throttles) a socket that floods it; one that does not
// shows 2xx/101 throughout, and one error frame per frame sent. It is a measurement: it exits 0
// whatever the director answers (2 if the whole run passes its deadline). 127.0.0.1 only; nothing
// listens on port 9, so deliveries to the registrations fail and are retried in the background.
import { createECDH, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import WebSocket from "ws";
import { api, mintGrant, startDirector, type Director } from "../test/e2e/director.ts";

const REQUEST_TIMEOUT_MS = 15_000;
const RUN_DEADLINE_MS = 10 * 60_000;
const CLOSE_WAIT_MS = 5_000;

interface Tenant {
  id: string;
  notify_token: string;
  grant_secret: string;
}
interface Answer {
  status: number;
  code: string | null;
  retryAfter: string | null;
}
interface Run {
  run: string;
  sent: number;
  seconds: number;
  outcome: string;
  detail: Record<string, unknown>;
}

let director: Director;

function errorCode(body: string): string | null {
  try {
    return JSON.parse(body)?.error?.code ?? null;
  } catch {
    return null;
  }
}

/** One JSON request; never throws (status 0 when there was no answer). */
async function call(path: string, token: string, json: unknown, method = "POST"): Promise<Answer & { body: string }> {
  try {
    const response = await fetch(`${director.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify(json),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = await response.text();
    return { status: response.status, code: response.ok ? null : errorCode(body), retryAfter: response.headers.get("Retry-After"), body };
  } catch (error) {
    return { status: 0, code: null, retryAfter: null, body: (error as Error).message };
  }
}

/** Runs task(0 … count-1), `width` at a time, in index order. */
async function pool<T>(count: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  }));
  return results;
}

/** "201 × 20, 429 quota_exceeded × 280", in order of first appearance. */
function tally(labels: string[]): string {
  const counts = new Map<string, number>();
  for (const label of labels) counts.set(label, (counts.get(label) ?? 0) + 1);
  return [...counts].map(([label, n]) => `${label} × ${n}`).join(", ");
}
const label = (a: { status: number; code: string | null }) => (a.code ? `${a.status} ${a.code}` : String(a.status));
const refused = (a: { status: number }) => a.status < 200 || a.status >= 300;
const firstRefusal = (answers: { status: number }[]) => {
  const i = answers.findIndex(refused);
  return i < 0 ? null : i;
};
const seconds = (since: number) => (performance.now() - since) / 1000;

function webPushKeys() {
  const ecdh = createECDH("prime256v1");
  return { p256dh: ecdh.generateKeys().toString("base64url"), auth: randomBytes(16).toString("base64url") };
}

async function registrations(tenant: Tenant): Promise<Run> {
  const grant = await mintGrant(tenant, ["abuse-reg"], "mallory", "1h");
  const start = performance.now();
  const answers = await pool(2000, 25, (i) =>
    call("/v1/subscriptions", grant, { topic: "abuse-reg", push_services: { web_push: { endpoint: `http://127.0.0.1:9/push/${i}`, keys: webPushKeys() } } }),
  );
  const first = firstRefusal(answers);
  const outcome = tally(answers.map(label)) + (first === null ? "" : `; first refusal at #${first}`);
  return { run: "registrations", sent: answers.length, seconds: seconds(start), outcome, detail: { first_refusal: first, first_refusal_body: first === null ? null : answers[first].body.slice(0, 200) } };
}

async function notifies(tenant: Tenant): Promise<Run> {
  const start = performance.now();
  const answers = await pool(1000, 25, (i) => call("/v1/notify", tenant.notify_token, { topic: `abuse-n-${i % 50}` }));
  const first = firstRefusal(answers);
  const refusals = answers.filter(refused);
  const retryAfter = refusals.map((a) => a.retryAfter).filter((v): v is string => v !== null).map(Number);
  let outcome = tally(answers.map(label));
  if (first !== null) {
    outcome += `; first refusal at #${first}, Retry-After on ${retryAfter.length}/${refusals.length}`;
    if (retryAfter.length > 0) outcome += ` (${Math.min(...retryAfter)}–${Math.max(...retryAfter)} s)`;
  }
  const detail = { first_refusal: first, refusals: refusals.length, with_retry_after: retryAfter.length, retry_after_min: retryAfter.length ? Math.min(...retryAfter) : null, retry_after_max: retryAfter.length ? Math.max(...retryAfter) : null };
  return { run: "notifies", sent: answers.length, seconds: seconds(start), outcome, detail };
}

/** Opens one socket: 101 with the open socket, or the refusal's status and JSON error code. */
function openSocket(path: string, token: string): Promise<{ status: number; code: string | null; ws: WebSocket | null }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${director.url.replace("http:", "ws:")}${path}`, { headers: { Authorization: `Bearer ${token}` }, handshakeTimeout: REQUEST_TIMEOUT_MS });
    let settled = false;
    const done = (status: number, code: string | null, open: WebSocket | null) => {
      if (!settled) (settled = true), resolve({ status, code, ws: open });
    };
    ws.once("open", () => done(101, null, ws));
    ws.once("unexpected-response", (request, response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => (done(response.statusCode ?? 0, errorCode(body), null), request.destroy()));
      response.on("error", () => (done(response.statusCode ?? 0, null, null), request.destroy()));
    });
    ws.on("error", (error) => done(0, `error: ${error.message}`, null));
  });
}

async function sockets(tenant: Tenant): Promise<Run> {
  const topics = Array.from({ length: 300 }, (_, i) => `abuse-s-${i}`);
  const grant = await mintGrant(tenant, topics, "mallory", "1h");
  const start = performance.now();
  const answers = await pool(topics.length, 10, (i) => openSocket(`/v1/ws?topic=${topics[i]}`, grant));
  const open = answers.flatMap((a) => (a.ws ? [a.ws] : []));
  const closedEarly = open.filter((ws) => ws.readyState !== WebSocket.OPEN).length;
  const elapsed = seconds(start);
  await Promise.all(open.map((ws) => new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    const timer = setTimeout(() => (ws.terminate(), resolve()), 2000);
    ws.once("close", () => (clearTimeout(timer), resolve()));
    ws.close(1000, "bench done");
  })));
  const outcome = tally(answers.map(label)) + (closedEarly > 0 ? `; ${closedEarly} closed before the end` : "");
  return { run: "sockets", sent: answers.length, seconds: elapsed, outcome, detail: { opened: open.length, closed_before_end: closedEarly, first_refusal: firstRefusal(answers) } };
}

async function frames(tenant: Tenant): Promise<Run> {
  const total = 10_000;
  const opened = await openSocket("/v1/ws?topic=abuse-f", tenant.notify_token);
  if (!opened.ws) return { run: "frames", sent: 0, seconds: 0, outcome: `socket refused: ${label(opened)}`, detail: { status: opened.status, code: opened.code } };
  const ws = opened.ws;
  const errors = new Map<string, number>();
  let closed: { code: number; reason: string; at: number } | null = null;
  const closedPromise = new Promise<void>((resolve) => ws.once("close", (code, reason) => ((closed = { code, reason: reason.toString(), at: performance.now() }), resolve())));
  let lastError = 0;
  ws.on("message", (data) => {
    try {
      const frame = JSON.parse(data.toString());
      if (frame.type !== "error") return;
      errors.set(frame.code, (errors.get(frame.code) ?? 0) + 1);
      lastError = performance.now();
    } catch {
      // not JSON ("pong"): not an error frame
    }
  });
  ws.on("error", () => {});
  let sent = 0;
  const start = performance.now();
  // ws turns CLOSING when the server's close frame arrives (the 'close' event waits for the handshake)
  let closeFrameAt: number | null = null;
  const watch = setInterval(() => {
    if (closeFrameAt === null && ws.readyState !== WebSocket.OPEN) closeFrameAt = performance.now();
  }, 5);
  while (sent < total && ws.readyState === WebSocket.OPEN) {
    for (let k = 0; k < 500 && sent < total && ws.readyState === WebSocket.OPEN; k++, sent++) ws.send("x");
    await new Promise((resolve) => setImmediate(resolve));
  }
  const lastFrame = performance.now();
  // the server's close frame arrives long before the closing handshake ends: the server answers the
  // client's close only after the runtime has handed it every frame queued before it
  await Promise.race([closedPromise, new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS))]);
  const end = performance.now();
  clearInterval(watch);
  const stillArriving = closed === null && end - lastError < 500;
  const errorFrames = [...errors.values()].reduce((a, b) => a + b, 0);
  const close = closed as { code: number; reason: string; at: number } | null;
  const ending = close
    ? `closed ${close.code}${close.reason ? ` "${close.reason}"` : ""} ${((close.at - start) / 1000).toFixed(2)} s after the first frame`
    : closeFrameAt !== null
      ? `close frame after ${((closeFrameAt - start) / 1000).toFixed(2)} s, handshake not done ${CLOSE_WAIT_MS / 1000} s after the last frame`
      : `socket still open ${CLOSE_WAIT_MS / 1000} s after the last frame`;
  const outcome = `${errorFrames} error frames${errors.size ? ` (${[...errors.keys()].join(", ")})` : ""}${stillArriving ? " and still arriving" : ""}, ${ending}`;
  if (!close) ws.terminate();
  const detail = { error_frames: Object.fromEntries(errors), close_code: close?.code ?? null, close_reason: close?.reason ?? null, ms_to_close: close ? close.at - start : null, ms_to_close_frame: closeFrameAt === null ? null : closeFrameAt - start, ms_sending: lastFrame - start, still_arriving: stillArriving };
  return { run: "frames", sent, seconds: ((close?.at ?? end) - start) / 1000, outcome, detail };
}

function parseArgs(argv: string[]) {
  const vars: string[] = [];
  let jsonFile: string | undefined;
  let limits: number[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === "--json") (jsonFile = value), i++;
    else if (flag === "--var") (vars.push("--var", value), i++);
    else if (flag === "--limits") (limits = value.split(",").map(Number)), i++;
    else throw new Error(`unknown argument ${flag}`);
  }
  if (limits && (limits.length !== 5 || limits.some((n) => !Number.isInteger(n)))) throw new Error("--limits takes five integers: R,RU,N,S,SU");
  return { vars, jsonFile, limits };
}

async function main() {
  const { vars, jsonFile, limits } = parseArgs(process.argv.slice(2));
  const started = performance.now();
  director = await startDirector({}, vars);
  const startup = seconds(started);
  const deadline = setTimeout(() => {
    console.error(`abuse: the run passed ${RUN_DEADLINE_MS / 1000} s; stopping`);
    director.stop().finally(() => process.exit(2));
  }, RUN_DEADLINE_MS);
  try {
    console.log(`director ready on ${director.url} after ${startup.toFixed(1)} s${vars.length ? ` (${vars.filter((_, i) => i % 2).join(" ")})` : ""}`);
    const created = await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "abuse" } });
    if (created.status !== 201) throw new Error(`creating the tenant: ${created.status} ${JSON.stringify(created.body)}`);
    const tenant: Tenant = created.body;
    let limitsAnswer: { status: number; body: string } | null = null;
    if (limits) {
      const [registrations, registrations_per_user, notify_per_minute, sockets, sockets_per_user] = limits;
      const json = { registrations, registrations_per_user, notify_per_minute, sockets, sockets_per_user };
      const r = await call(`/v1/admin/tenants/${tenant.id}/limits`, director.adminToken, json, "PUT");
      limitsAnswer = { status: r.status, body: r.body.slice(0, 300) };
      console.log(`PUT /v1/admin/tenants/{id}/limits ${JSON.stringify(json)} → ${r.status} ${limitsAnswer.body.replace(/\s+/g, " ")}`);
    }
    const runs: Run[] = [];
    for (const run of [registrations, notifies, sockets, frames]) {
      const result = await run(tenant);
      console.log(`${result.run}: ${result.sent} sent in ${result.seconds.toFixed(1)} s: ${result.outcome}`);
      runs.push(result);
    }
    const header = ["run", "sent", "s", "outcome"];
    const rows = runs.map((r) => [r.run, String(r.sent), r.seconds.toFixed(1), r.outcome]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ").trimEnd();
    console.log(`\n${line(header)}\n${rows.map(line).join("\n")}\n`);
    console.log(`director ${director.url}: start-up ${startup.toFixed(1)} s, ${runs.map((r) => `${r.run} ${r.seconds.toFixed(1)} s`).join(", ")}; whole run ${seconds(started).toFixed(1)} s`);
    if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ date: new Date().toISOString(), url: director.url, vars, startup_seconds: startup, limits: limitsAnswer, runs }, null, 2));
  } finally {
    clearTimeout(deadline);
    await director.stop();
  }
}

await main();
