// `node bench/hostile.ts [--json FILE]`: how the director answers an attacker. Starts it as a user
// does (`npm start`, insecure push resources OFF), fires a table-driven corpus of hostile requests
// (bad and exotic topics, private push resources, forged grants, tokens in URLs, hostile XML,
// cross-tenant and cross-user access, wrong media types and sizes) and classifies every answer
// against the rules the director should follow — not against what today's code does:
//   ok               the expected status (and error code / XML precondition, where one is named)
//   5xx              any 500–599, or no answer (socket dropped, 10 s timeout)
//   wrongly_accepted 2xx/101 where a refusal was expected (or a 2xx that leaked or changed data)
//   wrongly_refused  4xx where acceptance was expected
//   other            any other mismatch (a 4xx with another status or code)
// Talks to 127.0.0.1 only; no topic that holds a push registration is ever notified.
import { createHmac, generateKeyPairSync, randomBytes, sign, webcrypto } from "node:crypto";
import { writeFileSync } from "node:fs";
import http from "node:http";
import { SignJWT } from "jose";
import { api, startDirector, type Director } from "../test/e2e/director.ts";

const REQUEST_TIMEOUT_MS = 10_000;
const RUN_DEADLINE_MS = 10 * 60_000;
const CONCURRENCY = 8;
const NOW = Math.floor(Date.now() / 1000);

type Verdict = "ok" | "5xx" | "wrongly_accepted" | "wrongly_refused" | "other";
interface Expect {
  status: number[];
  /** the JSON error code a refusal must carry */
  code?: string;
  /** text the answer must contain (an XML precondition) */
  marker?: string;
  /** for an accepted answer: a problem with its body (a leak, a change), or null */
  check?: (body: string) => string | null;
}
interface Req {
  method?: string;
  path: string;
  token?: string;
  headers?: Record<string, string>;
  body?: string;
  json?: unknown;
  xml?: string;
  upgrade?: boolean;
  /** send the body with Transfer-Encoding: chunked (no Content-Length) */
  chunked?: boolean;
}
interface Case {
  name: string;
  expect: Expect;
  req: Req | (() => Req);
  /** sees the answer (the ownership steps remember ids and bodies) */
  after?: (status: number, body: string) => void;
}
interface Result {
  group: string;
  name: string;
  method: string;
  path: string;
  expected: string;
  got: number;
  verdict: Verdict;
  problem: string | null;
  body: string;
}
interface Tenant {
  id: string;
  notify_token: string;
  grant_secret: string;
}

// ---------- HTTP (node:http, so that bad paths and Upgrade headers go out as written) ----------

let director: Director;

function send(req: Req): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { ...req.headers };
  if (req.token !== undefined) headers.Authorization = `Bearer ${req.token}`;
  let body = req.body;
  if (req.json !== undefined) (body = JSON.stringify(req.json)), (headers["Content-Type"] ??= "application/json");
  if (req.xml !== undefined) (body = req.xml), (headers["Content-Type"] ??= 'application/xml; charset="utf-8"');
  if (req.upgrade) {
    Object.assign(headers, { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": randomBytes(16).toString("base64") });
  }
  if (body !== undefined && !req.chunked) headers["Content-Length"] = String(Buffer.byteLength(body));
  const { port } = new URL(director.url);
  return new Promise((resolve) => {
    const done = (status: number, text: string) => resolve({ status, body: text });
    let request: http.ClientRequest;
    try {
      request = http.request({ host: "127.0.0.1", port, method: req.method ?? (body === undefined ? "GET" : "POST"), path: req.path, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (error) {
      return done(0, `client could not send it: ${(error as Error).message}`);
    }
    request.on("upgrade", (_res, socket) => (socket.destroy(), done(101, "")));
    request.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => done(res.statusCode ?? 0, text));
      res.on("error", (error) => done(0, `dropped: ${error.message}`));
      res.on("close", () => done(res.complete ? (res.statusCode ?? 0) : 0, text));
    });
    request.on("error", (error) => done(0, `dropped: ${error.message}`));
    if (body !== undefined && req.chunked) for (let i = 0; i < body.length; i += 8192) request.write(body.slice(i, i + 8192));
    request.end(req.chunked ? undefined : body);
  });
}

function classify(expect: Expect, status: number, body: string): { verdict: Verdict; problem: string | null } {
  if (status === 0 || status >= 500) return { verdict: "5xx", problem: null };
  const accepted = status === 101 || (status >= 200 && status < 300);
  if (expect.status.includes(status)) {
    if (expect.code !== undefined && errorCode(body) !== expect.code) return { verdict: "other", problem: `code ${errorCode(body)}, expected ${expect.code}` };
    if (expect.marker !== undefined && !body.includes(expect.marker)) return { verdict: "other", problem: `no ${expect.marker} in the answer` };
    const problem = accepted && expect.check ? expect.check(body) : null;
    return problem === null ? { verdict: "ok", problem: null } : { verdict: "wrongly_accepted", problem };
  }
  const refusalExpected = expect.status.every((s) => s >= 400);
  if (refusalExpected && accepted) return { verdict: "wrongly_accepted", problem: null };
  if (!refusalExpected && status >= 400) return { verdict: "wrongly_refused", problem: null };
  return { verdict: "other", problem: null };
}

function errorCode(body: string): string | null {
  try {
    return JSON.parse(body)?.error?.code ?? null;
  } catch {
    return null;
  }
}

// ---------- building blocks ----------

const b64url = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
/** A JWT built by hand: any header, any payload (a string is sent as is), HMAC or no signature. */
function handJwt(header: unknown, payload: unknown, key: string | null, hash = "sha256"): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${key === null ? "" : createHmac(hash, key).update(input).digest("base64url")}`;
}
const claims = (t: Tenant, extra: Record<string, unknown> = {}) => ({ iss: t.id, sub: "eve", topics: ["g-t"], exp: NOW + 600, ...extra });
const hs256 = (t: Tenant, extra: Record<string, unknown> = {}, key = t.grant_secret) => handJwt({ alg: "HS256", typ: "JWT" }, claims(t, extra), key);
function grant(t: Tenant, topics: string[], sub: string): Promise<string> {
  return new SignJWT({ topics }).setProtectedHeader({ alg: "HS256" }).setIssuer(t.id).setSubject(sub).setExpirationTime("10m").sign(new TextEncoder().encode(t.grant_secret));
}

async function webPushKeys() {
  const pair = await webcrypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
  const p256dh = Buffer.from(await webcrypto.subtle.exportKey("raw", pair.publicKey)).toString("base64url");
  return { p256dh, auth: randomBytes(16).toString("base64url") };
}
type Keys = Awaited<ReturnType<typeof webPushKeys>>;
let keyPool: Keys[] = [];
let endpoints = 0;
const keys = () => keyPool[endpoints % keyPool.length];
const freshEndpoint = () => `https://push.example.net/x/${++endpoints}`;
const subscribe = (topic: string, endpoint = freshEndpoint(), k: Keys = keys()) => ({ client_id: "hostile", topic, push_services: { web_push: { endpoint, keys: k } } });
const escapeXml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
function pushRegister(resource: string, k: Keys = keys()): string {
  return `<?xml version="1.0" encoding="utf-8"?><push-register xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:"><subscription><web-push-subscription><push-resource>${escapeXml(resource)}</push-resource><content-encoding>aes128gcm</content-encoding><subscription-public-key type="p256dh">${k.p256dh}</subscription-public-key><auth-secret>${k.auth}</auth-secret></web-push-subscription></subscription><trigger><content-update><D:depth>1</D:depth></content-update></trigger></push-register>`;
}

/** Percent-encodes a topic for a URL; a lone surrogate goes out as its (invalid) 3-byte form. */
function enc(topic: string): string {
  if (topic.isWellFormed()) return encodeURIComponent(topic);
  let out = "";
  for (const ch of topic) {
    const u = ch.charCodeAt(0);
    out += u >= 0xd800 && u <= 0xdfff && ch.length === 1
      ? [0xe0 | (u >> 12), 0x80 | ((u >> 6) & 0x3f), 0x80 | (u & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join("")
      : encodeURIComponent(ch);
  }
  return out;
}

const refuse = (status: number, more: Omit<Expect, "status"> = {}): Expect => ({ status: [status], ...more });
const accept = (...status: number[]): Expect => ({ status });
const idOf = (body: string): string => { try { return JSON.parse(body).id ?? "unknown"; } catch { return "unknown"; } };
const listsNone = (ids: string[]) => (body: string) => {
  const leaked = ids.filter((id) => body.includes(id));
  return leaked.length > 0 ? `lists another's registration ${leaked.join(", ")}` : null;
};

// ---------- the corpus ----------

const E = "😀";
const INVALID_TOPICS: [string, string][] = [
  ["empty", ""], ["U+0000", "a\u0000b"], ["U+0001", "a\u0001b"], ["U+0009", "a\tb"], ["U+000A", "a\nb"], ["U+000D", "a\rb"],
  ["U+001B", "a\u001bb"], ["U+001F", "a\u001fb"], ["U+007F", "a\u007fb"], ["U+0080", "a\u0080b"], ["U+0085", "a\u0085b"],
  ["U+009B", "a\u009bb"], ["U+009F", "a\u009fb"], ["lone high surrogate", "a\ud800b"], ["lone low surrogate", "a\udc00b"],
  ["reversed surrogate pair", "a\ude00\ud83db"], ["257 'a'", "a".repeat(257)], ["257 emoji", E.repeat(257)], ["1000 'a'", "a".repeat(1000)],
];
const VALID_TOPICS: [string, string][] = [
  ["1 char", "a"], ["256 'a'", "a".repeat(256)], ["256 emoji", E.repeat(256)], ["128 emoji", E.repeat(128)],
  ["space-padded", " d-padded "], ["emoji + RTL mark", `📅\u200fcal`], ["U+2028", "a\u2028b"], ["zero-width joiner", "👩\u200d💻"],
  ["U+00A0", "a\u00a0b"], ["U+FEFF", "\ufefftopic"], ["U+FFFD", "a\ufffdb"], ["U+202E", "a\u202eb"], ["private use U+E000", "a\ue000b"],
  ["CJK", "日历-工作"], ["slash and dots", "../a/b"], ["URL specials", "?a=b&c#d%2F"], ["XML specials", `<x a="1">&amp;'`],
];

async function topicGroup(a: Tenant, b: Tenant): Promise<Case[]> {
  const cases: Case[] = [];
  const add = async (label: string, topic: string, valid: boolean) => {
    const ok = (...s: number[]) => (valid ? accept(...s) : refuse(400));
    const grantTopics = valid ? [topic] : ["grant-ok", topic];
    cases.push(
      // notifies go to tenant B, which holds no registrations: nothing is ever delivered
      { name: `${label}: notify`, expect: ok(202), req: { path: "/v1/notify", token: b.notify_token, json: { topic } } },
      { name: `${label}: subscriptions`, expect: ok(201), req: { path: "/v1/subscriptions", token: a.notify_token, json: subscribe(topic) } },
      { name: `${label}: push-register`, expect: ok(201, 204), req: { path: `/v1/register?topic=${enc(topic)}`, token: a.notify_token, xml: pushRegister(freshEndpoint()) } },
      { name: `${label}: registrations`, expect: ok(200), req: { path: `/v1/registrations?topic=${enc(topic)}`, token: a.notify_token } },
      { name: `${label}: ws`, expect: ok(101), req: { path: `/v1/ws?topic=${enc(topic)}`, token: b.notify_token, upgrade: true } },
      {
        name: `${label}: grant topics`, expect: valid ? accept(201) : refuse(401),
        req: { path: "/v1/subscriptions", token: await grant(a, grantTopics, "topic-user"), json: subscribe(grantTopics[0]) },
      },
    );
    if (topic !== "") {
      cases.push({ name: `${label}: properties.xml`, expect: ok(200), req: { path: `/v1/topics/${enc(topic)}/properties.xml`, token: a.notify_token } });
    }
  };
  for (const [label, topic] of INVALID_TOPICS) await add(`invalid ${label}`, topic, false);
  for (const [label, topic] of VALID_TOPICS) await add(`valid ${label}`, topic, true);
  const long = `reg-${E.repeat(200)}`;
  cases.push({ name: "grant for reg-+200 emoji", expect: accept(201), req: { path: "/v1/subscriptions", token: await grant(a, [long], "long"), json: subscribe(long) } });
  return cases;
}

const REFUSED_RESOURCES = [
  "https://[::7f00:1]/p", "https://[64:ff9b::7f00:1]/p", "https://[fec0::1]/p", "https://[ff02::1]/p", "https://[::1]/p", "https://[::]/p",
  "https://[fc00::1]/p", "https://[fd12:3456::1]/p", "https://[fe80::1]/p", "https://[::ffff:127.0.0.1]/p", "https://[::ffff:10.0.0.1]/p",
  "https://[2001:db8::1]/p", "https://[2002::1]/p", "https://[3fff::1]/p", "https://192.0.0.1/p", "https://192.0.2.1/p",
  "https://198.18.0.1/p", "https://127.0.0.1/p", "https://127.1/p", "https://2130706433/p", "https://0x7f000001/p", "https://0.0.0.0/p",
  "https://10.0.0.1/p", "https://172.16.0.1/p", "https://192.168.1.1/p", "https://100.64.0.1/p", "https://169.254.169.254/p",
  "https://224.0.0.1/p", "https://255.255.255.255/p", "https://localhost/p", "https://localhost./p", "https://api.localhost/p",
  "https://user:pw@push.example.net/p", "http://push.example.net/p", "http://127.0.0.1:9/p", "ftp://push.example.net/p", "not a url",
];
const ACCEPTED_RESOURCES = [
  "https://[2606:4700::1111]/p", "https://[2a00:1450:4001::1]/p", "https://172.32.0.1/p", "https://100.128.0.1/p", "https://8.8.8.8/p", "https://push.example.net/p",
];

function pushResourceGroup(a: Tenant): Case[] {
  const cases: Case[] = [];
  let n = 0;
  for (const resource of [...REFUSED_RESOURCES, ...ACCEPTED_RESOURCES]) {
    const refused = REFUSED_RESOURCES.includes(resource);
    const topic = `pr-${++n}`;
    cases.push(
      { name: `${resource}: JSON`, expect: refused ? refuse(400, { code: "invalid_push_resource" }) : accept(201), req: { path: "/v1/subscriptions", token: a.notify_token, json: subscribe(topic, resource) } },
      { name: `${resource}: push-register`, expect: refused ? refuse(403, { marker: "invalid-subscription" }) : accept(201, 204), req: { path: `/v1/register?topic=${topic}-xml`, token: a.notify_token, xml: pushRegister(resource) } },
    );
  }
  return cases;
}

async function grantGroup(a: Tenant, b: Tenant): Promise<Case[]> {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rsInput = `${b64url({ alg: "RS256", typ: "JWT" })}.${b64url(claims(a))}`;
  const payload = JSON.stringify(claims(a));
  const bad: [string, string][] = [
    ["alg none", handJwt({ alg: "none" }, claims(a), null)],
    ["alg NONE", handJwt({ alg: "NONE" }, claims(a), null)],
    ["alg none with a signature", handJwt({ alg: "none" }, claims(a), a.grant_secret)],
    ["alg hs256", handJwt({ alg: "hs256" }, claims(a), a.grant_secret)],
    ["alg HS384", handJwt({ alg: "HS384" }, claims(a), a.grant_secret, "sha384")],
    ["alg HS512", handJwt({ alg: "HS512" }, claims(a), a.grant_secret, "sha512")],
    ["alg RS256", `${rsInput}.${sign("sha256", Buffer.from(rsInput), rsa.privateKey).toString("base64url")}`],
    ["alg absent", handJwt({ typ: "JWT" }, claims(a), a.grant_secret)],
    ["crit header", handJwt({ alg: "HS256", crit: ["x-hostile"], "x-hostile": 1 }, claims(a), a.grant_secret)],
    ["signed with tenant B's secret", hs256(a, {}, b.grant_secret)],
    ["iss tenant B, signed with A's secret", hs256(a, { iss: b.id })],
    ["iss not a tenant (24 hex)", hs256(a, { iss: "0".repeat(24) })],
    ["iss not a tenant (text)", hs256(a, { iss: "not-a-tenant" })],
    ["iss missing", hs256(a, { iss: undefined })],
    ["exp absent", hs256(a, { exp: undefined })],
    ["exp a string", hs256(a, { exp: String(NOW + 600) })],
    ["exp past", hs256(a, { exp: NOW - 60 })],
    ["exp 1e13", hs256(a, { exp: 1e13 })],
    ["exp 1e308", hs256(a, { exp: 1e308 })],
    ["exp 1e400 (Infinity)", handJwt({ alg: "HS256" }, payload.replace(/"exp":\d+/, '"exp":1e400'), a.grant_secret)],
    ["exp 9999999999", hs256(a, { exp: 9999999999 })],
    ["exp now+100 years", hs256(a, { exp: NOW + 100 * 365 * 86400 })],
    ["exp negative", hs256(a, { exp: -1 })],
    ["iat 10 years ahead", hs256(a, { iat: NOW + 10 * 365 * 86400 })],
    ["nbf 1 hour ahead", hs256(a, { nbf: NOW + 3600 })],
    ["sub with CRLF", hs256(a, { sub: "eve\r\nX-Injected: 1" })],
    ["sub with NUL", hs256(a, { sub: "eve\u0000" })],
    ["sub of 257 chars", hs256(a, { sub: "e".repeat(257) })],
    ["sub missing", hs256(a, { sub: undefined })],
    ["sub a number", hs256(a, { sub: 42 })],
    ["topics not an array", hs256(a, { topics: "g-t" })],
    ["topics with an invalid topic", hs256(a, { topics: ["g-t", "bad\u0000"] })],
    ["topics with a lone surrogate", hs256(a, { topics: ["g-t", "bad\ud800"] })],
    ["payload a JSON array", handJwt({ alg: "HS256" }, [claims(a)], a.grant_secret)],
    ["payload not JSON", handJwt({ alg: "HS256" }, "{not json", a.grant_secret)],
    ["2-segment token", hs256(a).split(".").slice(0, 2).join(".")],
    ["4-segment token", `${hs256(a)}.x`],
    ["garbage", "garbage"],
    ["dots only", "...."],
    ["valid grant, signature bit flipped", hs256(a).replace(/.$/, (c) => (c === "A" ? "B" : "A"))],
  ];
  const cases: Case[] = [];
  for (const [label, token] of bad) {
    cases.push(
      { name: `${label}: subscriptions`, expect: refuse(401), req: { path: "/v1/subscriptions", token, json: subscribe("g-t") } },
      { name: `${label}: ws`, expect: refuse(401), req: { path: "/v1/ws?topic=g-t", token, upgrade: true } },
    );
  }
  const control = hs256(a);
  cases.push(
    { name: "control: valid grant: subscriptions", expect: accept(201), req: { path: "/v1/subscriptions", token: control, json: subscribe("g-t") } },
    { name: "control: valid grant: ws", expect: accept(101), req: { path: "/v1/ws?topic=g-t", token: control, upgrade: true } },
  );
  return cases;
}

async function tokenInUrlGroup(a: Tenant): Promise<Case[]> {
  const q = `access_token=${encodeURIComponent(a.notify_token)}`;
  return [
    { name: "notify token in ?access_token= on /v1/ws", expect: refuse(401, { code: "token_in_query" }), req: { path: `/v1/ws?topic=q-t&${q}`, upgrade: true } },
    { name: "notify token in ?access_token= on /v1/notify", expect: refuse(401), req: { path: `/v1/notify?${q}`, json: { topic: "q-t" } } },
    { name: "notify token in ?access_token= on /v1/subscriptions", expect: refuse(401), req: { path: `/v1/subscriptions?${q}`, json: subscribe("q-t") } },
    { name: "notify token in ?access_token= on /v1/registrations", expect: refuse(401), req: { path: `/v1/registrations?${q}` } },
    { name: "notify token in ?access_token= on /v1/register", expect: refuse(401), req: { path: `/v1/register?topic=q-t&${q}`, xml: pushRegister(freshEndpoint()) } },
    { name: "notify token in ?access_token= on properties.xml", expect: refuse(401), req: { path: `/v1/topics/q-t/properties.xml?${q}` } },
  ];
}

function xmlGroup(a: Tenant): Case[] {
  const good = pushRegister("https://push.example.net/xml/1");
  const inText = (c: string) => good.replace("/xml/1<", `/xml/${c}1<`);
  const laughs = `<?xml version="1.0"?><!DOCTYPE push-register [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>`;
  const bodies: [string, string][] = [
    ["NUL in text", inText("\u0000")], ["U+0001 in text", inText("\u0001")], ["U+FFFE in text", inText("\ufffe")], ["U+FFFF in text", inText("\uffff")],
    ["&#0; reference", inText("&#0;")], ["&#x1; reference", inText("&#x1;")], ["&#xFFFE; reference", inText("&#xFFFE;")],
    ["DTD", good.replace("?>", '?><!DOCTYPE push-register [<!ELEMENT push-register ANY>]>')],
    ["DOCTYPE SYSTEM", good.replace("?>", '?><!DOCTYPE push-register SYSTEM "http://127.0.0.1:9/x.dtd">')],
    ["XXE file", good.replace("?>", '?><!DOCTYPE push-register [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>').replace("/xml/1<", "/&xxe;<")],
    ["billion laughs", good.replace(/^<\?xml[^>]*\?>/, laughs).replace("/xml/1<", "/&d;<")],
    ["parameter entity", good.replace("?>", '?><!DOCTYPE p [<!ENTITY % pe SYSTEM "http://127.0.0.1:9/pe">%pe;]>')],
    ["wrong root (push-unregister)", good.replace(/push-register/g, "push-unregister")],
    ["wrong root (DAV:propfind)", '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'],
    ["root without the namespace", good.replace(' xmlns="https://bitfire.at/webdav-push"', "")],
    ["malformed: unclosed", good.slice(0, -20)], ["malformed: two roots", good + "<push-register/>"],
    ["malformed: mismatched tag", good.replace("</subscription>", "</subscriptio>")], ["malformed: undeclared prefix", good.replace("<trigger>", "<X:trigger>").replace("</trigger>", "</X:trigger>")],
    ["malformed: text", "not xml at all"], ["malformed: empty body", ""], ["malformed: declaration only", '<?xml version="1.0"?>'],
  ];
  return bodies.map(([label, xml]) => ({ name: label, expect: refuse(400), req: { path: "/v1/register?topic=xml-t", token: a.notify_token, xml } }));
}

async function crossTenantGroup(a: Tenant, b: Tenant): Promise<Case[]> {
  const aliceA = await grant(a, ["x-a"], "alice");
  const regAT = idOf((await send({ path: "/v1/subscriptions", token: a.notify_token, json: subscribe("x-a") })).body);
  const regAG = idOf((await send({ path: "/v1/subscriptions", token: aliceA, json: subscribe("x-a") })).body);
  const grantB = await grant(b, ["x-a"], "alice");
  const grantBOther = await grant(b, ["b-only"], "bob");
  const forged = hs256(b, { iss: a.id, sub: "alice", topics: ["x-a"] }); // claims A, signed with B's secret
  const swapped = `pdn_${a.id}_${b.notify_token.slice(`pdn_${b.id}_`.length)}`;
  const cases: Case[] = [];
  for (const [regLabel, id] of [["A's token registration", regAT], ["alice@A's registration", regAG]]) {
    for (const [who, token, status] of [["B's token", b.notify_token, 404], ["B's grant (sub alice)", grantB, 404], ["grant iss A signed by B", forged, 401], ["A's id + B's secret", swapped, 401]] as const) {
      for (const method of ["GET", "DELETE"]) cases.push({ name: `${who}: ${method} ${regLabel}`, expect: refuse(status), req: { method, path: `/v1/registrations/${id}`, token } });
    }
  }
  const flipped = regAT.replace(/^./, (c) => (c === "A" ? "B" : "A"));
  cases.push(
    { name: "B's token: GET a near-miss id", expect: refuse(404), req: { path: `/v1/registrations/${flipped}`, token: b.notify_token } },
    { name: "B's grant (b-only): A's x-a properties.xml", expect: refuse(403), req: { path: "/v1/topics/x-a/properties.xml", token: grantBOther } },
    { name: "grant iss A signed by B: properties.xml", expect: refuse(401), req: { path: "/v1/topics/x-a/properties.xml", token: forged } },
    { name: "grant iss A signed by B: subscriptions", expect: refuse(401), req: { path: "/v1/subscriptions", token: forged, json: subscribe("x-a") } },
    { name: "grant iss A signed by B: ws", expect: refuse(401), req: { path: "/v1/ws?topic=x-a", token: forged, upgrade: true } },
    { name: "grant iss A signed by B: push-register", expect: refuse(401), req: { path: "/v1/register?topic=x-a", token: forged, xml: pushRegister(freshEndpoint()) } },
    { name: "grant iss A signed by B: registrations", expect: refuse(401), req: { path: "/v1/registrations?topic=x-a", token: forged } },
    { name: "grant iss A signed with A's notify token", expect: refuse(401), req: { path: "/v1/registrations", token: hs256(a, {}, a.notify_token) } },
    { name: "grant iss = A's id in upper case", expect: refuse(401), req: { path: "/v1/registrations", token: hs256(a, { iss: a.id.toUpperCase() }) } },
    { name: "A's id + B's secret: notify", expect: refuse(401), req: { path: "/v1/notify", token: swapped, json: { topic: "x-b" } } },
    { name: "A's id + B's secret: subscriptions", expect: refuse(401), req: { path: "/v1/subscriptions", token: swapped, json: subscribe("x-a") } },
    { name: "A's id + B's secret: registrations", expect: refuse(401), req: { path: "/v1/registrations", token: swapped } },
    { name: "A's id + empty secret", expect: refuse(401), req: { path: "/v1/registrations", token: `pdn_${a.id}_` } },
    { name: "A's id, no secret part", expect: refuse(401), req: { path: "/v1/registrations", token: `pdn_${a.id}` } },
    { name: "A's grant secret as bearer", expect: refuse(401), req: { path: "/v1/registrations", token: a.grant_secret } },
    { name: "B's token: admin tenant A", expect: refuse(401), req: { path: `/v1/admin/tenants/${a.id}`, token: b.notify_token } },
    { name: "alice@A's grant: admin tenants", expect: refuse(401), req: { path: "/v1/admin/tenants", token: aliceA } },
    { name: "B's token lists x-a: none of A's", expect: { status: [200], check: listsNone([regAT, regAG]) }, req: { path: "/v1/registrations?topic=x-a", token: b.notify_token } },
    { name: "B's grant (sub alice) lists: none of A's", expect: { status: [200], check: listsNone([regAT, regAG]) }, req: { path: "/v1/registrations", token: grantB } },
  );
  return cases;
}

/** Runs in order after cross-tenant: A's registrations must have survived B's attempts. */
async function survivorsOf(a: Tenant): Promise<Case[]> {
  const list = (await send({ path: "/v1/registrations?topic=x-a", token: a.notify_token })).body;
  const count = (() => { try { return JSON.parse(list).registrations.length as number; } catch { return -1; } })();
  return [{ name: "control: A still has both x-a registrations", expect: { status: [200], check: () => (count === 2 ? null : `A lists ${count}, not 2`) }, req: { path: "/v1/registrations?topic=x-a", token: a.notify_token } }];
}

async function ownershipGroup(a: Tenant): Promise<Case[]> {
  const [alice, mallory] = [await grant(a, ["own-t1"], "alice"), await grant(a, ["own-t1", "own-t2"], "mallory")];
  const [aliceKeys, malloryKeys] = [await webPushKeys(), await webPushKeys()];
  const P = `https://push.example.net/owned/${randomBytes(8).toString("hex")}`;
  let id = "unknown";
  let before = "";
  const mine = () => `/v1/registrations/${id}`;
  const owned = refuse(403, { code: "registration_owned_by_another" });
  return [
    { name: "alice registers P for t1", expect: accept(201), req: { path: "/v1/subscriptions", token: alice, json: subscribe("own-t1", P, aliceKeys) }, after: (_s, body) => (id = idOf(body)) },
    { name: "alice reads her registration", expect: accept(200), req: () => ({ path: mine(), token: alice }), after: (_s, body) => (before = body) },
    { name: "mallory: P, other keys, t1 (JSON)", expect: owned, req: { path: "/v1/subscriptions", token: mallory, json: subscribe("own-t1", P, malloryKeys) } },
    { name: "mallory: P, other keys, t2 (JSON)", expect: owned, req: { path: "/v1/subscriptions", token: mallory, json: subscribe("own-t2", P, malloryKeys) } },
    { name: "mallory: P, other keys, t1 (push-register)", expect: refuse(403, { marker: "push-not-available" }), req: { path: "/v1/register?topic=own-t1", token: mallory, xml: pushRegister(P, malloryKeys) } },
    { name: "mallory: P, other keys, t2 (push-register)", expect: refuse(403, { marker: "push-not-available" }), req: { path: "/v1/register?topic=own-t2", token: mallory, xml: pushRegister(P, malloryKeys) } },
    { name: "mallory reads alice's registration", expect: refuse(404), req: () => ({ path: mine(), token: mallory }) },
    { name: "mallory deletes alice's registration", expect: refuse(404), req: () => ({ method: "DELETE", path: mine(), token: mallory }) },
    {
      name: "alice's registration is byte-identical", expect: { status: [200], check: (body) => (body === before ? null : `changed: was ${before.slice(0, 300)}`) },
      req: () => ({ path: mine(), token: alice }),
    },
    { name: "no registration for t2 exists", expect: { status: [200], check: (body) => (/"registrations":\[\]/.test(body) ? null : "t2 has registrations") }, req: { path: "/v1/registrations?topic=own-t2", token: a.notify_token } },
    { name: "the tenant registers P for t2", expect: accept(201), req: { path: "/v1/subscriptions", token: a.notify_token, json: subscribe("own-t2", P, aliceKeys) } },
  ];
}

function miscGroup(director: Director, a: Tenant, b: Tenant): Case[] {
  const notify = JSON.stringify({ topic: "misc" });
  const big = (prefix: string, suffix: string) => prefix + "x".repeat(70 * 1024) + suffix;
  const admin = director.adminToken;
  const cases: Case[] = [
    ...[["text/plain", "/v1/notify"], ["application/x-www-form-urlencoded", "/v1/notify"], ["multipart/form-data; boundary=x", "/v1/notify"], ["application/jsonx", "/v1/notify"],
      ["text/plain", "/v1/subscriptions"], ["application/xml", "/v1/subscriptions"], ["text/html", "/v1/subscriptions"]].map(([type, path]) => ({
      name: `${type} on ${path}`, expect: refuse(415), req: { path, token: b.notify_token, headers: { "Content-Type": type }, body: path === "/v1/notify" ? notify : JSON.stringify(subscribe("misc")) },
    })),
    { name: "application/json on /v1/register", expect: refuse(415), req: { path: "/v1/register?topic=misc", token: a.notify_token, headers: { "Content-Type": "application/json" }, body: pushRegister(freshEndpoint()) } },
    { name: "text/plain on /v1/register", expect: refuse(415), req: { path: "/v1/register?topic=misc", token: a.notify_token, headers: { "Content-Type": "text/plain" }, body: pushRegister(freshEndpoint()) } },
    { name: "text/plain on admin tenants", expect: refuse(415), req: { path: "/v1/admin/tenants", token: admin, headers: { "Content-Type": "text/plain" }, body: '{"name":"x"}' } },
    { name: "70 KB notify", expect: refuse(413), req: { path: "/v1/notify", token: b.notify_token, headers: { "Content-Type": "application/json" }, body: big('{"topic":"misc","pad":"', '"}') } },
    { name: "70 KB notify, chunked", expect: refuse(413), req: { path: "/v1/notify", token: b.notify_token, headers: { "Content-Type": "application/json" }, body: big('{"topic":"misc","pad":"', '"}'), chunked: true } },
    { name: "70 KB subscriptions", expect: refuse(413), req: { path: "/v1/subscriptions", token: a.notify_token, headers: { "Content-Type": "application/json" }, body: big('{"topic":"misc","client_id":"', '"}') } },
    { name: "70 KB push-register", expect: refuse(413), req: { path: "/v1/register?topic=misc", token: a.notify_token, xml: pushRegister(freshEndpoint()).replace("</push-register>", big("<!--", "--></push-register>")) } },
    { name: "70 KB push-register, chunked", expect: refuse(413), req: { path: "/v1/register?topic=misc", token: a.notify_token, xml: big("<push-register>", "</push-register>"), chunked: true } },
    { name: "70 KB admin tenants", expect: refuse(413), req: { path: "/v1/admin/tenants", token: admin, headers: { "Content-Type": "application/json" }, body: big('{"name":"', '"}') } },
  ];
  const badJson = ["{", '{"topic":', "null", "[]", '"topic"', '{"topic":"misc",}', "", "{'topic':'misc'}", "NaN", '{"topic":"misc"}garbage',
    "[".repeat(5000) + "]".repeat(5000), '{"notifications":[]}', '{"notifications":"x"}', JSON.stringify({ notifications: Array.from({ length: 101 }, () => ({ topic: "misc" })) })];
  badJson.forEach((body, i) => cases.push({ name: `malformed JSON #${i + 1} on notify: ${body.slice(0, 24)}`, expect: refuse(400), req: { path: "/v1/notify", token: b.notify_token, headers: { "Content-Type": "application/json" }, body } }));
  for (const body of ["{", "[]", "", '{"topic":"misc","push_services":{}}']) {
    cases.push({ name: `malformed JSON on subscriptions: ${body || "(empty)"}`, expect: refuse(400), req: { path: "/v1/subscriptions", token: a.notify_token, headers: { "Content-Type": "application/json" }, body } });
  }
  cases.push({ name: "malformed JSON on admin tenants", expect: refuse(400), req: { path: "/v1/admin/tenants", token: admin, headers: { "Content-Type": "application/json" }, body: "{" } });
  for (const path of ["/v1/notify", "/v1/subscriptions", "/v1/registrations"]) {
    cases.push({ name: `no Authorization on ${path}`, expect: refuse(401), req: path === "/v1/registrations" ? { path } : { path, json: path === "/v1/notify" ? { topic: "misc" } : subscribe("misc") } });
  }
  const wrongAdmin: [string, Record<string, string>][] = [
    ["none", {}], ["wrong token", { Authorization: "Bearer wrong" }], ["empty bearer", { Authorization: "Bearer " }],
    ["token + x", { Authorization: `Bearer ${admin}x` }], ["token minus its last char", { Authorization: `Bearer ${admin.slice(0, -1)}` }],
    ["Basic scheme", { Authorization: `Basic ${Buffer.from(`admin:${admin}`).toString("base64")}` }], ["token without scheme", { Authorization: admin }],
    ["tenant A's notify token", { Authorization: `Bearer ${a.notify_token}` }],
  ];
  for (const [label, headers] of wrongAdmin) cases.push({ name: `admin GET tenants, ${label}`, expect: refuse(401), req: { path: "/v1/admin/tenants", headers } });
  for (const [method, path] of [["POST", "/v1/admin/tenants"], ["GET", `/v1/admin/tenants/${a.id}`], ["GET", "/v1/admin/dead-letters"], ["GET", "/v1/admin/vapid"]]) {
    for (const [label, headers] of wrongAdmin.slice(0, 2)) {
      cases.push({ name: `admin ${method} ${path.replace(a.id, "{A}")}, ${label}`, expect: refuse(401), req: { method, path, headers, ...(method === "POST" ? { json: { name: "intruder" } } : {}) } });
    }
  }
  cases.push({ name: "admin token in ?access_token=", expect: refuse(401), req: { path: `/v1/admin/tenants?access_token=${encodeURIComponent(admin)}` } });
  return cases;
}

// ---------- running and reporting ----------

async function runCases(group: string, cases: Case[], sequential: boolean): Promise<Result[]> {
  const results: Result[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      const c = cases[i];
      const req = typeof c.req === "function" ? c.req() : c.req;
      const { status, body } = await send(req);
      c.after?.(status, body);
      const { verdict, problem } = classify(c.expect, status, body);
      const expected = c.expect.status.join("/") + (c.expect.code ? ` ${c.expect.code}` : "") + (c.expect.marker ? ` ${c.expect.marker}` : "");
      results[i] = { group, name: c.name, method: req.method ?? ((req.json ?? req.xml ?? req.body) === undefined ? "GET" : "POST"), path: req.path.slice(0, 120), expected, got: status, verdict, problem, body: body.slice(0, 200) };
    }
  };
  await Promise.all(Array.from({ length: sequential ? 1 : CONCURRENCY }, worker));
  return results;
}

function report(results: Result[], seconds: number) {
  const verdicts: Verdict[] = ["ok", "5xx", "wrongly_accepted", "wrongly_refused", "other"];
  const count = (rs: Result[], v: Verdict) => rs.filter((r) => r.verdict === v).length;
  const groups = [...new Set(results.map((r) => r.group))];
  const rows = groups.map((g) => {
    const rs = results.filter((r) => r.group === g);
    return [g, String(rs.length), ...verdicts.map((v) => String(count(rs, v)))];
  });
  const header = ["group", "requests", ...verdicts];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(`\n${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n${rows.map(line).join("\n")}\n`);
  const totals = Object.fromEntries(verdicts.map((v) => [v, count(results, v)]));
  console.log(`hostile: ${results.length} requests, ${totals.ok} ok, ${totals["5xx"]} 5xx, ${totals.wrongly_accepted} wrongly accepted, ${totals.wrongly_refused} wrongly refused, ${totals.other} other  (${seconds.toFixed(1)} s)`);
  const bad = results.filter((r) => r.verdict !== "ok");
  if (bad.length > 0) console.log("\nnot ok:");
  for (const r of bad) {
    const body = r.body.replace(/\s+/g, " ");
    console.log(`  [${r.group}] ${r.name} — ${r.verdict}: expected ${r.expected}, got ${r.got}${r.problem ? ` (${r.problem})` : ""}${body ? ` ${JSON.stringify(body)}` : ""}`);
  }
  return { totals, groups: Object.fromEntries(rows.map((r) => [r[0], Object.fromEntries(header.slice(1).map((h, i) => [h, Number(r[i + 1])]))])) };
}

async function main() {
  const jsonIndex = process.argv.indexOf("--json");
  const jsonFile = jsonIndex > 0 ? process.argv[jsonIndex + 1] : undefined;
  const started = performance.now();
  director = await startDirector({}, ["--var", "ALLOW_INSECURE_PUSH_RESOURCES:false"]);
  const deadline = setTimeout(() => {
    console.error(`hostile: the run passed ${RUN_DEADLINE_MS / 1000} s; stopping`);
    director.stop().finally(() => process.exit(2));
  }, RUN_DEADLINE_MS);
  try {
    console.log(`director ready on ${director.url} after ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const newTenant = async (name: string): Promise<Tenant> => {
      const r = await api(director, "/v1/admin/tenants", director.adminToken, { json: { name } });
      if (r.status !== 201) throw new Error(`creating tenant ${name}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    const [a, b] = [await newTenant("hostile-a"), await newTenant("hostile-b")];
    keyPool = await Promise.all(Array.from({ length: 16 }, webPushKeys));
    const insecure = await send({ path: "/v1/subscriptions", token: a.notify_token, json: subscribe("preflight", "http://127.0.0.1:9/push/1") });
    if (insecure.status >= 200 && insecure.status < 300) throw new Error("insecure mode is still on: http://127.0.0.1 push resource accepted");
    console.log(`insecure mode off: http://127.0.0.1 push resource answered ${insecure.status}`);

    const t0 = performance.now();
    const groups: [string, () => Case[] | Promise<Case[]>, boolean][] = [
      ["1 topic rule", () => topicGroup(a, b), false],
      ["2 push resources", () => pushResourceGroup(a), false],
      ["3 grants", () => grantGroup(a, b), false],
      ["4 tokens in URLs", () => tokenInUrlGroup(a), false],
      ["5 xml", () => xmlGroup(a), false],
      ["6 cross-tenant", () => crossTenantGroup(a, b), false],
      ["6 cross-tenant", () => survivorsOf(a), true],
      ["7 ownership", () => ownershipGroup(a), true],
      ["8 misc", () => miscGroup(director, a, b), false],
    ];
    const results: Result[] = [];
    for (const [name, build, sequential] of groups) results.push(...(await runCases(name, await build(), sequential)));
    const seconds = (performance.now() - t0) / 1000;
    const summary = report(results, seconds);
    console.log(`\nwhole run (start-up included): ${((performance.now() - started) / 1000).toFixed(1)} s`);
    if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ date: new Date().toISOString(), seconds, ...summary, results }, null, 2));
  } finally {
    clearTimeout(deadline);
    await director.stop();
  }
}

await main();
