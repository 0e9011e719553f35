// The push gateway's added latency (issue 14), against the WebDAV server behind it in the same run:
// Radicale (test/support/radicale.ts) and `npm start` both on loopback; alice's calendar (extended
// MKCOL) holding 100 events. Each round sends the same request straight to Radicale and through
// `/dav/<tenant>/`, back to back (which goes first alternates), so noise hits both alike:
//  - PROPFIND Depth 1 of the calendar for getetag, resourcetype and displayname (a client's sync);
//  - PUT overwriting one event (If-Match of its last ETag, a new SUMMARY and SEQUENCE each time);
//    each target its own event, so the calendar keeps 100.
// The tenant has no registration (no push-register was made), so a PUT through the gateway finds no
// watched collection after its answer and pushes nothing: the figure is the proxy alone.
// Part `gateway` of `npm run bench`; `node bench/gateway.ts` runs it alone
// (BENCH_GATEWAY_ROUNDS: measured rounds, default 200, after BENCH_GATEWAY_WARMUP, default 20).
import { execFileSync } from "node:child_process";
import http from "node:http";
import os from "node:os";
import { api, startDirector } from "../test/e2e/director.ts";
import { basicAuth, RADICALE, startRadicale } from "../test/support/radicale.ts";

const EVENTS = 100;
const CALENDAR = "/alice/bench/";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

const MKCALENDAR_BODY =
  '<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><D:resourcetype><D:collection/><C:calendar/></D:resourcetype><D:displayname>Bench</D:displayname></D:prop></D:set></D:mkcol>';
const PROPFIND_BODY =
  '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:resourcetype/><D:displayname/></D:prop></D:propfind>';

const eventName = (i: number) => `event-${String(i).padStart(3, "0")}.ics`;

function vevent(uid: string, i: number, sequence: number, summary: string): string {
  const day = new Date(Date.UTC(2026, 0, 1) + i * 86_400_000).toISOString().slice(0, 10).replaceAll("-", "");
  return [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//push-director//bench//EN",
    "BEGIN:VEVENT",
    `UID:${uid}`,
    `DTSTAMP:${new Date().toISOString().replace(/[-:]/g, "").slice(0, 15)}Z`,
    `DTSTART:${day}T090000Z`,
    `DTEND:${day}T100000Z`,
    `SEQUENCE:${sequence}`,
    `SUMMARY:${summary}`,
    "DESCRIPTION:An event of the gateway benchmark\\, one of a hundred.",
    "END:VEVENT",
    "END:VCALENDAR",
    "",
  ].join("\r\n");
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
  reused: boolean;
}

/** One request, timed from sending to the answer's last byte. */
function request(agent: http.Agent, url: URL, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = http.request(url, { method, agent, headers: body === undefined ? headers : { ...headers, "Content-Length": String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), ms: performance.now() - start, reused: req.reusedSocket }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

export interface Timing {
  median: number;
  p95: number;
}

export interface OperationFigures {
  direct: Timing;
  gateway: Timing;
  /** gateway − direct of each round: their median and p95 */
  added: Timing;
  ratio: number;
}

export interface GatewayFigures {
  rounds: number;
  warmup: number;
  radicale: string;
  cpus: number;
  load: { before: number; after: number };
  seconds: number;
  propfind: OperationFigures;
  put: OperationFigures;
  /** `GET /` of the director in the same rounds (no storage, no origin) */
  floor: Timing;
  /** `GET /dav/<tenant without a gateway>/`: the gateway route's D1 read, answered 404 */
  lookup: Timing;
  /** of the measured requests, how many went on a kept-alive connection, per target */
  reused: { direct: number; gateway: number; requests: number };
  /** after the run, the gateway's collections watched for pushes and the tenant's live registrations (both 0) */
  watched: number;
  registrations: number;
  responses: number;
}

function figures(direct: number[], gateway: number[]): OperationFigures {
  const added = gateway.map((ms, i) => ms - direct[i]);
  return {
    direct: { median: median(direct), p95: percentile(direct, 95) },
    gateway: { median: median(gateway), p95: percentile(gateway, 95) },
    added: { median: median(added), p95: percentile(added, 95) },
    ratio: median(gateway) / median(direct),
  };
}

export async function gatewayOverhead(rounds = Number(process.env.BENCH_GATEWAY_ROUNDS ?? 200), warmup = Number(process.env.BENCH_GATEWAY_WARMUP ?? 20)): Promise<GatewayFigures> {
  const radicaleVersion = execFileSync(RADICALE, ["--version"], { encoding: "utf8" }).trim();
  const [radicale, director] = await Promise.all([startRadicale(), startDirector()]);
  const agents = { direct: new http.Agent({ keepAlive: true, maxSockets: 1 }), gateway: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
  try {
    const tenant = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "gateway-bench" } })).body;
    // `npm start` writes ALLOW_INSECURE_PUSH_RESOURCES=true, which lets an http://127.0.0.1 origin in
    const gateway = await api(director, `/v1/admin/tenants/${tenant.id}/gateway`, director.adminToken, { method: "PUT", json: { origin: `${radicale.url}/`, poll_seconds: 0 } });
    if (gateway.status !== 201) throw new Error(`PUT gateway answered ${gateway.status}: ${JSON.stringify(gateway.body)}`);
    const base = { direct: new URL(radicale.url), gateway: new URL(`/dav/${tenant.id}/`, director.url) };
    const url = (target: keyof typeof base, path: string) => new URL(`${base[target].pathname.replace(/\/$/, "")}${path}`, base[target]);
    const auth = { Authorization: basicAuth("alice") };

    // the calendar and its events, made straight at Radicale
    const made = await request(agents.direct, url("direct", CALENDAR), "MKCOL", { ...auth, "Content-Type": 'application/xml; charset="utf-8"' }, MKCALENDAR_BODY);
    if (made.status !== 201) throw new Error(`MKCOL answered ${made.status}: ${made.body}`);
    const etags: string[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const put = await request(agents.direct, url("direct", `${CALENDAR}${eventName(i)}`), "PUT", { ...auth, "Content-Type": "text/calendar; charset=utf-8" }, vevent(`bench-${i}@push-director`, i, 0, `Event ${i}`));
      if (put.status !== 201) throw new Error(`PUT of event ${i} answered ${put.status}: ${put.body}`);
      etags[i] = String(put.headers.etag);
    }

    // the operations: each target overwrites its own event (direct event-000, gateway event-001)
    const own = { direct: 0, gateway: 1 } as const;
    let sequence = 0;
    const propfind = async (target: keyof typeof base) => {
      const answer = await request(agents[target], url(target, CALENDAR), "PROPFIND", { ...auth, Depth: "1", "Content-Type": 'application/xml; charset="utf-8"' }, PROPFIND_BODY);
      if (answer.status !== 207) throw new Error(`PROPFIND (${target}) answered ${answer.status}: ${answer.body.slice(0, 500)}`);
      return answer;
    };
    const put = async (target: keyof typeof base) => {
      const i = own[target];
      sequence++;
      const answer = await request(
        agents[target],
        url(target, `${CALENDAR}${eventName(i)}`),
        "PUT",
        { ...auth, "Content-Type": "text/calendar; charset=utf-8", "If-Match": etags[i] },
        vevent(`bench-${i}@push-director`, i, sequence, `Event ${i}, version ${sequence}`),
      );
      if (answer.status !== 204 && answer.status !== 201) throw new Error(`PUT (${target}) answered ${answer.status}: ${answer.body.slice(0, 500)}`);
      if (answer.headers.etag === undefined) throw new Error(`PUT (${target}) answered no ETag`);
      etags[i] = answer.headers.etag;
      return answer;
    };

    // both answer the same listing, the gateway's with its own hrefs
    const [direct, through] = [await propfind("direct"), await propfind("gateway")];
    const responses = (direct.body.match(/<(\w+:)?response>/g) ?? []).length;
    if (responses !== EVENTS + 1 || (through.body.match(/<(\w+:)?response>/g) ?? []).length !== responses) {
      throw new Error(`PROPFIND answered ${responses} responses direct, ${(through.body.match(/<(\w+:)?response>/g) ?? []).length} through the gateway`);
    }
    if (!through.body.includes(`/dav/${tenant.id}${CALENDAR}${eventName(99)}`)) throw new Error(`the gateway's PROPFIND did not name its own hrefs: ${through.body.slice(0, 500)}`);

    const times = { propfind: { direct: [] as number[], gateway: [] as number[] }, put: { direct: [] as number[], gateway: [] as number[] }, floor: [] as number[], lookup: [] as number[] };
    const floorUrl = new URL("/", director.url);
    // a tenant without a gateway: the route's D1 read of the gateway, then 404, no origin
    const bare = (await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: "gateway-bench-bare" } })).body;
    const lookupUrl = new URL(`/dav/${bare.id}/`, director.url);
    const reused = { direct: 0, gateway: 0, requests: 0 };
    const loadBefore = os.loadavg()[0];
    const started = performance.now();
    for (let round = 0; round < warmup + rounds; round++) {
      const order = round % 2 === 0 ? (["direct", "gateway"] as const) : (["gateway", "direct"] as const);
      for (const [operation, send] of [["propfind", propfind], ["put", put]] as const) {
        for (const target of order) {
          const answer = await send(target);
          if (round < warmup) continue;
          times[operation][target].push(answer.ms);
          if (answer.reused) reused[target]++;
          if (target === "direct") reused.requests++;
        }
      }
      // the director's floor: a request through wrangler dev that touches no storage and no origin
      const floor = await request(agents.gateway, floorUrl, "GET", {});
      if (floor.status !== 200) throw new Error(`GET / answered ${floor.status}`);
      const lookup = await request(agents.gateway, lookupUrl, "GET", {});
      if (lookup.status !== 404 || !lookup.body.includes("gateway_not_configured")) throw new Error(`GET ${lookupUrl.pathname} answered ${lookup.status}: ${lookup.body}`);
      if (round >= warmup) {
        times.floor.push(floor.ms);
        times.lookup.push(lookup.ms);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const loadAfter = os.loadavg()[0];

    // no registration was made, so nothing is watched: a PUT through the gateway told no one
    const state = await api(director, `/v1/admin/tenants/${tenant.id}/gateway`, director.adminToken);
    if (state.status !== 200) throw new Error(`GET gateway answered ${state.status}`);
    const limits = await api(director, `/v1/admin/tenants/${tenant.id}/limits`, director.adminToken);
    if (limits.status !== 200) throw new Error(`GET limits answered ${limits.status}`);
    if (limits.body.usage.registrations !== 0) throw new Error(`the tenant has ${limits.body.usage.registrations} registrations`);

    return {
      rounds,
      warmup,
      radicale: radicaleVersion,
      cpus: os.availableParallelism(),
      load: { before: loadBefore, after: loadAfter },
      seconds,
      propfind: figures(times.propfind.direct, times.propfind.gateway),
      put: figures(times.put.direct, times.put.gateway),
      floor: { median: median(times.floor), p95: percentile(times.floor, 95) },
      lookup: { median: median(times.lookup), p95: percentile(times.lookup, 95) },
      reused,
      watched: state.body.watched_collections,
      registrations: limits.body.usage.registrations,
      responses,
    };
  } finally {
    agents.direct.destroy();
    agents.gateway.destroy();
    await Promise.all([director.stop(), radicale.stop()]);
  }
}

export function gatewaySection(f: GatewayFigures, measured: string): string {
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  const row = (name: string, o: OperationFigures) =>
    `| ${name} | ${ms(o.direct.median)} / ${ms(o.direct.p95)} | ${ms(o.gateway.median)} / ${ms(o.gateway.p95)} | **${ms(o.added.median)}** / ${ms(o.added.p95)} | ${o.ratio.toFixed(2)}× |`;
  const reused = (n: number) => (n === f.reused.requests ? "every one" : n === 0 ? "none" : `${n} of ${f.reused.requests}`);
  return `## 6. Push gateway: added latency over Radicale

| operation (alice's calendar, ${EVENTS} events) | Radicale direct: median / p95 | through the gateway: median / p95 | added (gateway − direct, paired): median / p95 | ratio of medians |
| --- | --- | --- | --- | --- |
${row(`\`PROPFIND\` Depth 1: getetag, resourcetype, displayname (a 207 of ${f.responses} responses)`, f.propfind)}
${row("`PUT` of one event (overwrite, If-Match)", f.put)}

"Added" is the median and p95 of the ${f.rounds} per-round differences (gateway − direct of the same round),
not the difference of the medians; the ratio is of the medians. Where the added time goes, from two
more requests of each round on the director's connection: \`GET /\` (wrangler dev and the worker, no
storage, no origin) median ${ms(f.floor.median)}, p95 ${ms(f.floor.p95)}; \`GET /dav/<id>/\` of a tenant without a gateway (the
gateway route up to its D1 read of the gateway, answered 404) median ${ms(f.lookup.median)}, p95 ${ms(f.lookup.p95)}. What is left
of the added medians, about ${ms(f.propfind.added.median - f.lookup.median)} (PROPFIND) and ${ms(f.put.added.median - f.lookup.median)} (PUT), is the proxying itself: the
worker's fetch to Radicale and the hrefs rewritten both ways. wrangler dev's floor is not a
deployed Worker's.

Measured on ${measured}, nproc ${f.cpus}, 1-minute load average ${f.load.before.toFixed(2)} before the rounds and
${f.load.after.toFixed(2)} after (the bench's own processes included). Radicale ${f.radicale} (Debian's; htpasswd, \`owner_only\`,
file system storage) and \`npm start\` (wrangler dev) both on 127.0.0.1; the gateway set by
\`PUT /v1/admin/tenants/{id}/gateway\` with Radicale's URL as origin and \`poll_seconds: 0\`. The calendar was
made by extended MKCOL and filled with ${EVENTS} VEVENTs straight at Radicale. ${f.rounds} rounds after ${f.warmup} of
warm-up (${f.seconds.toFixed(0)} s): each round sends the PROPFIND to both targets, then the PUT to both, then the two
director-only requests, one request at a time, the target that goes first alternating by round, so
both met the same noise. Timed in this Node process with \`node:http\`, from sending to the answer's
last byte, one keep-alive agent per target: requests on a reused connection, to the director
${reused(f.reused.gateway)}, to Radicale ${reused(f.reused.direct)} (Radicale's wsgiref server answers one request per connection, so a
direct request pays a loopback TCP connect, as the gateway's own fetch to Radicale does). Each PUT
overwrites the target's own event (direct \`event-000.ics\`, gateway \`event-001.ics\`), keeping its UID,
with a new SUMMARY and SEQUENCE and If-Match its last ETag, so the calendar keeps ${EVENTS} events. No
registration exists (none was made; afterwards the tenant's usage counts ${f.registrations} registrations and the
gateway ${f.watched} watched collections) and polling is off: after answering a PUT the gateway looks up the
written path's watched collections (one D1 query, after the answer), finds none and pushes nothing,
so the PUT figure is the proxy alone. The gateway's path is \`npm start\`'s: wrangler's local proxy,
the director in workerd (a PROPFIND's body read and its hrefs rewritten to the origin's, the 207
streamed back with its hrefs rewritten to \`/dav/<id>/\`), then Radicale.
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await gatewayOverhead();
  console.log(gatewaySection(figures, new Date().toISOString().slice(0, 10)));
}
