// Notify throughput through `npm start`, against the runtime's floor in the same run: 20 keep-alive
// connections send `POST /v1/notify` (one change each, topics load-<i mod 200>, a tenant whose
// notify limit is raised by PUT so the limiter admits everything) for a phase, alternating with
// a phase of `GET /` (a route that touches no storage: the floor). Three rounds; the figures are
// medians, the ratio is the median of the per-round ratios. Part `notify` of `npm run bench`;
// `node bench/notify.ts` runs it alone. BENCH_CONNECTIONS (20), BENCH_SECONDS (phase length, 8;
// BENCH_NOTIFY_SECONDS as before) and BENCH_TOPICS (200) change the workload.
import http from "node:http";
import { api, startDirector } from "../test/e2e/director.ts";

const positive = (name: string, fallback: number) => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: a positive integer, not ${process.env[name]}`);
  return n;
};
const CONNECTIONS = positive("BENCH_CONNECTIONS", 20);
const TOPICS = positive("BENCH_TOPICS", 200);
const ROUNDS = 3;

export interface Phase {
  perSecond: number;
  p50: number;
  p99: number;
  /** answers other than 2xx */
  refused: number;
  /** requests that got no answer: socket errors and timeouts */
  errors: number;
}

export interface NotifyFigures {
  seconds: number;
  floor: Phase;
  notify: Phase;
  /** median over rounds of notify req/s ÷ floor req/s, and of notify p99 ÷ floor p99 */
  throughputRatio: number;
  p99Ratio: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

/** One request's status, or 0 when it got no answer within 10 s (a socket error or a timeout). */
function request(agent: http.Agent, url: URL, method: string, headers: Record<string, string>, body?: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url, { method, agent, headers, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", () => resolve(0));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(0));
    req.end(body);
  });
}

/** `CONNECTIONS` loops for `seconds`, each sending `next(i)` one after another. */
async function phase(seconds: number, send: (i: number) => Promise<number>): Promise<Phase> {
  const latencies: number[] = [];
  let refused = 0;
  let errors = 0;
  let i = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until) {
        const start = performance.now();
        const status = await send(i++);
        latencies.push(performance.now() - start);
        if (status === 0) errors++;
        else if (status >= 300) refused++;
      }
    }),
  );
  return { perSecond: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), refused, errors };
}

export async function notifyThroughput(seconds = positive(process.env.BENCH_SECONDS === undefined ? "BENCH_NOTIFY_SECONDS" : "BENCH_SECONDS", 8)): Promise<NotifyFigures> {
  const director = await startDirector();
  try {
    const tenant = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "load" } })).body;
    // a load run raises the notify limit (issue 12); on a director without limits this is a 404
    await api(director, `/v1/admin/tenants/${tenant.id}/limits`, director.adminToken, {
      method: "PUT",
      json: { registrations: null, registrations_per_user: null, notify_per_minute: 1_000_000_000, sockets: null, sockets_per_user: null },
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const floorUrl = new URL("/", director.url);
    const notifyUrl = new URL("/v1/notify", director.url);
    const headers = { Authorization: `Bearer ${tenant.notify_token}`, "Content-Type": "application/json" };
    const floor = () => phase(seconds, () => request(agent, floorUrl, "GET", {}));
    const notify = () =>
      phase(seconds, (i) => request(agent, notifyUrl, "POST", headers, JSON.stringify({ topic: `load-${i % TOPICS}`, content_update: { sync_token: `s-${i}` } })));
    await phase(2, () => request(agent, floorUrl, "GET", {})); // warm-up
    const rounds: { floor: Phase; notify: Phase }[] = [];
    for (let round = 0; round < ROUNDS; round++) rounds.push({ floor: await floor(), notify: await notify() });
    agent.destroy();
    const med = (pick: (r: (typeof rounds)[number]) => Phase): Phase => ({
      perSecond: median(rounds.map((r) => pick(r).perSecond)),
      p50: median(rounds.map((r) => pick(r).p50)),
      p99: median(rounds.map((r) => pick(r).p99)),
      refused: rounds.reduce((sum, r) => sum + pick(r).refused, 0),
      errors: rounds.reduce((sum, r) => sum + pick(r).errors, 0),
    });
    return {
      seconds,
      floor: med((r) => r.floor),
      notify: med((r) => r.notify),
      throughputRatio: median(rounds.map((r) => r.notify.perSecond / r.floor.perSecond)),
      p99Ratio: median(rounds.map((r) => r.notify.p99 / r.floor.p99)),
    };
  } finally {
    await director.stop();
  }
}

export function notifySection(f: NotifyFigures): string {
  const row = (name: string, p: Phase) => `| ${name} | ${p.perSecond.toFixed(0)} | ${p.p50.toFixed(1)} ms | ${p.p99.toFixed(1)} ms | ${p.refused} | ${p.errors} |`;
  return `## 5. Notify throughput

${CONNECTIONS} keep-alive connections through \`npm start\`, ${ROUNDS} rounds of ${f.seconds} s of \`GET /\` (the floor: no
storage) then ${f.seconds} s of \`POST /v1/notify\` (one change each, ${TOPICS} topics; the tenant's notify limit raised
by PUT, so the limiter's leases admit every one). Medians of the rounds; "non-2xx" and "errors" (no
answer: socket errors, 10 s timeouts) sum them. Goal (issue 15): notify ≥ 50 % of the floor's req/s
and p99 ≤ 2× the floor's, every notify a 202.

| phase | req/s | p50 | p99 | non-2xx | errors |
| --- | --- | --- | --- | --- | --- |
${row("floor `GET /`", f.floor)}
${row("`POST /v1/notify`", f.notify)}

Notify: **${(f.throughputRatio * 100).toFixed(0)} %** of the floor's req/s, p99 **${f.p99Ratio.toFixed(1)}×** the floor's (medians of the per-round ratios): goal ${f.throughputRatio >= 0.5 && f.p99Ratio <= 2 && f.notify.refused + f.notify.errors === 0 ? "met" : "not met"}.
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await notifyThroughput();
  console.log(notifySection(figures));
}
