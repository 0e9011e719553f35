// Notify throughput through `npm start`, against the runtime's floor in the same run: 20 keep-alive
// connections send `POST /v1/notify` (one change each, topics load-<i mod 200>, a tenant whose
// notify limit is raised by PUT so the limiter admits everything) for a phase, alternating with
// a phase of `GET /` (a route that touches no storage: the floor). Three rounds; the figures are
// medians, the ratio is the median of the per-round ratios. Part `notify` of `npm run bench`;
// `node bench/notify.ts` runs it alone. BENCH_CONNECTIONS (20), BENCH_SECONDS (phase length, 8;
// BENCH_NOTIFY_SECONDS as before) and BENCH_TOPICS (200) change the workload. The load comes from
// autocannon (issue 15, item 6), the load generator the issue's figures were taken with.
import autocannon from "autocannon";
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

/** `CONNECTIONS` keep-alive connections for `seconds`, each sending `request` one after another. */
async function phase(url: string, seconds: number, request: autocannon.Request): Promise<Phase> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds, timeout: 10, requests: [request] });
  return {
    perSecond: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    refused: result.non2xx,
    // connection errors, timeouts included
    errors: result.errors,
  };
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
    let i = 0;
    const floor = (seconds: number) => phase(director.url, seconds, { method: "GET", path: "/" });
    const notify = () =>
      phase(director.url, seconds, {
        method: "POST",
        path: "/v1/notify",
        headers: { Authorization: `Bearer ${tenant.notify_token}`, "Content-Type": "application/json" },
        setupRequest: (request) => ({ ...request, body: JSON.stringify({ topic: `load-${i % TOPICS}`, content_update: { sync_token: `s-${i++}` } }) }),
      });
    await floor(2); // warm-up
    const rounds: { floor: Phase; notify: Phase }[] = [];
    for (let round = 0; round < ROUNDS; round++) rounds.push({ floor: await floor(seconds), notify: await notify() });
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
by PUT, so the limiter's leases admit every one), sent by autocannon. Medians of the rounds; "non-2xx"
and "errors" (no answer: socket errors, 10 s timeouts) sum them. Goal (issue 15): notify ≥ 50 % of the floor's req/s
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
