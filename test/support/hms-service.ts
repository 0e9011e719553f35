// A stand-in for Huawei's OAuth token endpoint and Push Kit's messages:send (Node). It checks the
// token request's form (client_credentials, the app's ID and secret), the Bearer access token,
// the app ID in the path, and each message field by field: validate_only false, a list of 1 to
// 1000 tokens, `data` the JSON text of string fields {topic, sync_token?, push_message?} within
// 4096 bytes, `android` {urgency HIGH or NORMAL, ttl "<n>s"} and nothing else. Tokens answer as
// told: accept, illegal (80100000 naming it, or 80300007 when every token of the request is),
// busy-once (81000001), unavailable-once (503). A revoked access token is answered 401 80200003.
// `/_answer` makes the next send answer as given, whatever it holds (a hostile Push Kit).
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { StandIn } from "./stand-in.ts";

export type HmsBehaviour = "accept" | "illegal" | "busy-once" | "unavailable-once";

/** One message accepted for a token: its data (parsed) and Android options. */
export interface HmsReceived {
  data: Record<string, string>;
  urgency: string;
  ttl: string;
}

export class HmsService extends StandIn {
  readonly appId = "104567891";
  readonly clientSecret = `secret-${randomUUID()}`;
  private readonly accessTokens = new Set<string>();
  private readonly behaviours = new Map<string, HmsBehaviour>();
  private readonly attempts = new Map<string, number>();
  readonly received = new Map<string, HmsReceived[]>();
  /** Every send that passed the checks: its tokens, in order. */
  readonly requests: string[][] = [];
  private next: { status: number; body: string }[] = [];
  tokensIssued = 0;

  /** What configures a director to use this stand-in as Huawei Push Kit. */
  vars(): Record<string, string> {
    return { HMS_APP_ID: this.appId, HMS_CLIENT_SECRET: this.clientSecret, HMS_API_BASE: this.url, HMS_TOKEN_URL: this.tokenUrl };
  }

  get tokenUrl() {
    return `${this.url}/oauth2/v3/token`;
  }

  /** A new device token that answers as told (in-process; `/_tokens` over HTTP). */
  addToken(behaviour: HmsBehaviour = "accept"): string {
    const token = `hms-${randomUUID()}`;
    this.behaviours.set(token, behaviour);
    return token;
  }

  protected async handle(req: IncomingMessage, raw: Buffer, res: ServerResponse) {
    const body = raw.toString();
    const json = (status: number, value: unknown): void => {
      res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(value));
    };
    const url = new URL(req.url ?? "/", this.url);
    if (url.pathname === "/oauth2/v3/token" && req.method === "POST") return this.token(req, body, json);
    if (url.pathname === `/v1/${this.appId}/messages:send` && req.method === "POST") return this.send(req, body, res, json);
    if (url.pathname === "/_state") {
      return json(200, { received: Object.fromEntries(this.received), attempts: Object.fromEntries(this.attempts), requests: this.requests, errors: this.errors, tokensIssued: this.tokensIssued });
    }
    if (url.pathname === "/_tokens" && req.method === "POST") return json(201, { token: this.addToken(JSON.parse(body || "{}").behaviour ?? "accept") });
    if (url.pathname === "/_revoke" && req.method === "POST") return (this.accessTokens.clear(), json(200, {}));
    if (url.pathname === "/_answer" && req.method === "POST") return (this.next.push(JSON.parse(body) as { status: number; body: string }), json(200, {}));
    json(404, {});
  }

  private token(req: IncomingMessage, body: string, json: (status: number, value: unknown) => void) {
    const form = new URLSearchParams(body);
    const problems: string[] = [];
    if (!(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) problems.push(`content-type ${req.headers["content-type"]}`);
    if ([...form.keys()].sort().join(",") !== "client_id,client_secret,grant_type") problems.push(`form fields ${[...form.keys()].join(",")}`);
    if (form.get("grant_type") !== "client_credentials") problems.push(`grant_type ${form.get("grant_type")}`);
    if (form.get("client_id") !== this.appId) problems.push(`client_id ${form.get("client_id")}`);
    if (form.get("client_secret") !== this.clientSecret) problems.push("client_secret is not the app's");
    if (problems.length > 0) {
      this.errors.push(`token: ${problems.join(", ")}`);
      return json(400, { error: 1101, error_description: "invalid request" });
    }
    const accessToken = `hms-access-${randomUUID()}`;
    this.accessTokens.add(accessToken);
    this.tokensIssued++;
    json(200, { access_token: accessToken, expires_in: 3600, token_type: "Bearer" });
  }

  private send(req: IncomingMessage, body: string, res: ServerResponse, json: (status: number, value: unknown) => void) {
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (bearer === undefined || !this.accessTokens.has(bearer)) return json(401, { code: "80200003", msg: "OAuth token expired" });
    const problems: string[] = [];
    let parsed: { validate_only?: unknown; message?: { token?: unknown; data?: unknown; android?: { urgency?: unknown; ttl?: unknown } } } = {};
    try {
      parsed = JSON.parse(body);
    } catch {
      problems.push("body is not JSON");
    }
    const message = parsed.message ?? {};
    if (parsed.validate_only !== false) problems.push(`validate_only ${JSON.stringify(parsed.validate_only)}`);
    if (Object.keys(parsed).sort().join(",") !== "message,validate_only") problems.push(`keys ${Object.keys(parsed).join(",")}`);
    if (Object.keys(message).sort().join(",") !== "android,data,token") problems.push(`message keys ${Object.keys(message).join(",")}`);
    const tokens = Array.isArray(message.token) ? message.token : [];
    if (!Array.isArray(message.token) || tokens.length < 1 || tokens.length > 1000 || tokens.some((t) => typeof t !== "string")) problems.push("token is not a list of 1 to 1000 strings");
    let data: Record<string, unknown> = {};
    if (typeof message.data !== "string") problems.push("data is not a string");
    else {
      if (Buffer.byteLength(message.data) > 4096) problems.push("data over 4096 bytes");
      try {
        data = JSON.parse(message.data) as Record<string, unknown>;
        const keys = Object.keys(data);
        if (typeof data.topic !== "string") problems.push("data.topic is not a string");
        if (keys.some((k) => !["topic", "sync_token", "push_message"].includes(k))) problems.push(`data keys ${keys.join(",")}`);
        if (Object.values(data).some((v) => typeof v !== "string")) problems.push("data values must be strings");
      } catch {
        problems.push("data is not JSON text");
      }
    }
    const android = message.android ?? {};
    if (Object.keys(android).sort().join(",") !== "ttl,urgency") problems.push(`android keys ${Object.keys(android).join(",")}`);
    if (!["HIGH", "NORMAL"].includes(String(android.urgency))) problems.push(`android.urgency ${android.urgency}`);
    if (!/^\d+s$/.test(String(android.ttl))) problems.push(`android.ttl ${android.ttl}`);
    if (problems.length > 0) {
      this.errors.push(`send: ${problems.join(", ")}`);
      return json(400, { code: "80100001", msg: "Some request parameters are incorrect" });
    }
    this.requests.push(tokens as string[]);
    const forced = this.next.shift();
    if (forced !== undefined) return void res.writeHead(forced.status, { "Content-Type": "application/json" }).end(forced.body);
    const attempts = (tokens as string[]).map((token) => {
      const attempt = (this.attempts.get(token) ?? 0) + 1;
      this.attempts.set(token, attempt);
      return { token, attempt, behaviour: this.behaviours.get(token) ?? "illegal" };
    });
    if (attempts.some((a) => a.behaviour === "unavailable-once" && a.attempt === 1)) return json(503, { code: "81000001", msg: "System inner error" });
    if (attempts.some((a) => a.behaviour === "busy-once" && a.attempt === 1)) return json(200, { code: "81000001", msg: "System inner error" });
    const illegal = attempts.filter((a) => a.behaviour === "illegal").map((a) => a.token);
    if (illegal.length === tokens.length) return json(400, { code: "80300007", msg: "All the tokens are invalid" });
    for (const { token } of attempts.filter((a) => a.behaviour !== "illegal")) {
      const list = this.received.get(token) ?? [];
      list.push({ data: data as Record<string, string>, urgency: String(android.urgency), ttl: String(android.ttl) });
      this.received.set(token, list);
    }
    if (illegal.length > 0) {
      return json(200, { code: "80100000", msg: JSON.stringify({ success: tokens.length - illegal.length, failure: illegal.length, illegal_tokens: illegal }), requestId: randomUUID() });
    }
    json(200, { code: "80000000", msg: "Success", requestId: randomUUID() });
  }
}
