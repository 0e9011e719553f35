// A stand-in for Google's OAuth token endpoint and FCM HTTP v1 (Node). It owns a service account
// key pair, verifies each JWT assertion with the public key (RS256, iss, scope, aud, ≤ 1 h), hands
// out access tokens, and checks every messages:send: a valid access token, the message shape
// (token, string data, and exactly one of: android priority/ttl/collapse_key, or an iOS app's
// apns block as a background push, field by field) and the 4096-byte data limit; it records the
// platform each message was sent as (ios when it carries apns), and that an iOS message's APNs
// payload (aps and the data, as JSON) stays within 4096 bytes. Tokens answer as told: accept,
// unregistered (404), invalid (400 on message.token), unavailable once (503), sender mismatch
// (403), or redirect (307 to /redirected/<token>). /token-redirect/<key>
// redirects a token request to /redirected/<key>; every request to /redirected/… is counted, so a
// test sees whether the director followed.
// FCM topics (issue 16): /iid/v1:batchAdd and :batchRemove check the Bearer access token, the
// `access_token_auth: true` header and the body ({to: "/topics/<name>", registration_tokens: 1 to
// 1000}), keep each topic's members and answer a result per token ({} done, NOT_FOUND for a token
// it does not know or that is unregistered, INVALID_ARGUMENT for an invalid one, TOO_MANY_TOPICS
// for one told "too-many-topics"). A messages:send to a bare `topic` must carry both the android and the apns
// block; it is received by every member at that moment, recorded as platform "topic".
import { generateKeyPairSync, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { importSPKI, jwtVerify } from "jose";
import { StandIn } from "./stand-in.ts";

export type FcmBehaviour = "accept" | "unregistered" | "invalid" | "unavailable-once" | "sender-mismatch" | "redirect" | "too-many-topics";

export interface FcmApns {
  headers: Record<string, string>;
  payload: { aps: Record<string, unknown> };
}

/** One message accepted: its data and the one platform block it carried. */
export type FcmReceived =
  | { platform: "android"; data: Record<string, string>; android: { priority: string; ttl: string; collapse_key?: string } }
  | { platform: "ios"; data: Record<string, string>; apns: FcmApns }
  | { platform: "topic"; topic: string; data: Record<string, string>; android: { priority: string; ttl: string; collapse_key?: string }; apns: FcmApns };

/** One batchAdd or batchRemove that passed the checks. */
export interface FcmMembershipRequest {
  action: "batchAdd" | "batchRemove";
  topic: string;
  tokens: string[];
}

/**
 * What is wrong with an iOS app's `apns` block, as Apple takes a background push through FCM:
 * push type background, priority 5 (10 is refused for content-available), an expiry in Unix
 * seconds not yet past, and an `aps` of content-available alone (an alert, sound or badge would
 * make it a visible notification). No other header: the director sets none.
 */
function apnsProblems(apns: FcmApns | undefined, nowSeconds: number): string[] {
  if (typeof apns !== "object" || apns === null) return ["apns is not an object"];
  const problems: string[] = [];
  const keys = Object.keys(apns).sort().join(",");
  if (keys !== "headers,payload") problems.push(`apns keys ${keys}`);
  const headers = apns.headers ?? {};
  const names = Object.keys(headers).sort().join(",");
  if (names !== "apns-expiration,apns-priority,apns-push-type") problems.push(`apns.headers ${names}`);
  if (headers["apns-push-type"] !== "background") problems.push(`apns-push-type ${JSON.stringify(headers["apns-push-type"])}`);
  if (headers["apns-priority"] !== "5") problems.push(`apns-priority ${JSON.stringify(headers["apns-priority"])}`);
  const expiration = headers["apns-expiration"];
  if (typeof expiration !== "string" || !/^\d+$/.test(expiration)) problems.push(`apns-expiration ${JSON.stringify(expiration)}`);
  else if (Number(expiration) < nowSeconds - 5) problems.push(`apns-expiration ${expiration} is past`);
  if (JSON.stringify(apns.payload) !== JSON.stringify({ aps: { "content-available": 1 } })) problems.push(`apns.payload ${JSON.stringify(apns.payload)}`);
  return problems;
}

/** APNs takes at most 4096 bytes of payload: `aps` and the data's keys beside it, as JSON. */
function apnsPayloadProblems(apns: FcmApns | undefined, data: Record<string, unknown> | undefined): string[] {
  const bytes = Buffer.byteLength(JSON.stringify({ ...(apns?.payload ?? {}), ...(data ?? {}) }));
  return bytes > 4096 ? [`APNs payload of ${bytes} bytes (over 4096)`] : [];
}

export class FcmService extends StandIn {
  readonly projectId = "push-director-test";
  readonly clientEmail = "director@push-director-test.iam.gserviceaccount.com";
  private readonly keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
  private readonly accessTokens = new Set<string>();
  private readonly behaviours = new Map<string, FcmBehaviour>();
  private readonly attempts = new Map<string, number>();
  readonly received = new Map<string, FcmReceived[]>();
  /** Requests that followed a redirect, by the token or key in the Location. */
  private readonly redirected = new Map<string, number>();
  tokensIssued = 0;
  /** Each FCM topic's members (bare name → tokens). */
  readonly topics = new Map<string, Set<string>>();
  readonly membershipRequests: FcmMembershipRequest[] = [];
  /** messages:send requests answered, whatever the answer (per token and per topic). */
  sendRequests = 0;
  /** Topic messages accepted, by bare topic name. */
  readonly topicMessages = new Map<string, number>();

  get tokenUrl() {
    return `${this.url}/token`;
  }

  /** What configures a director to use this stand-in: FCM, its OAuth token endpoint and its Instance ID API. */
  vars(): Record<string, string> {
    return { FCM_SERVICE_ACCOUNT: this.serviceAccount(), FCM_API_BASE: this.url, GOOGLE_OAUTH_TOKEN_URL: this.tokenUrl, FCM_IID_API_BASE: this.url };
  }

  /** The service account JSON the director is configured with. */
  serviceAccount(): string {
    return JSON.stringify({
      type: "service_account",
      project_id: this.projectId,
      client_email: this.clientEmail,
      private_key: this.keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      token_uri: this.tokenUrl,
    });
  }

  addToken(behaviour: FcmBehaviour = "accept"): string {
    const token = `fcm-${randomUUID()}`;
    this.behaviours.set(token, behaviour);
    return token;
  }

  /** Makes every access token issued so far invalid, as if revoked (FCM then answers 401). */
  revokeAccessTokens() {
    this.accessTokens.clear();
  }

  attemptsFor(token: string) {
    return this.attempts.get(token) ?? 0;
  }

  protected async handle(req: IncomingMessage, raw: Buffer, res: ServerResponse) {
    const body = raw.toString();
    const json = (status: number, value: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { "Content-Type": "application/json", ...headers }).end(JSON.stringify(value));
    };
    const url = new URL(req.url ?? "/", this.url);
    if (url.pathname === "/token" && req.method === "POST") return this.token(body, json);
    if (url.pathname === `/v1/projects/${this.projectId}/messages:send` && req.method === "POST") return this.send(req, body, json);
    if ((url.pathname === "/iid/v1:batchAdd" || url.pathname === "/iid/v1:batchRemove") && req.method === "POST") {
      return this.membership(url.pathname === "/iid/v1:batchAdd" ? "batchAdd" : "batchRemove", req, body, json);
    }
    if (url.pathname.startsWith("/token-redirect/") && req.method === "POST") {
      return json(307, {}, { Location: `${this.url}/redirected/${url.pathname.slice("/token-redirect/".length)}` });
    }
    if (url.pathname.startsWith("/redirected/")) {
      const key = url.pathname.slice("/redirected/".length);
      this.redirected.set(key, (this.redirected.get(key) ?? 0) + 1);
      return json(200, { access_token: "ya29.followed-a-redirect", expires_in: 3599, name: "followed-a-redirect" });
    }
    if (url.pathname === "/_state") {
      return json(200, {
        received: Object.fromEntries(this.received),
        attempts: Object.fromEntries(this.attempts),
        redirected: Object.fromEntries(this.redirected),
        errors: this.errors,
        tokensIssued: this.tokensIssued,
        topics: Object.fromEntries([...this.topics].map(([name, members]) => [name, [...members]])),
        membershipRequests: this.membershipRequests,
        sendRequests: this.sendRequests,
        topicMessages: Object.fromEntries(this.topicMessages),
      });
    }
    if (url.pathname === "/_tokens" && req.method === "POST") return json(201, { token: this.addToken(JSON.parse(body || "{}").behaviour) });
    if (url.pathname === "/_revoke" && req.method === "POST") return (this.revokeAccessTokens(), json(200, {}));
    json(404, {});
  }

  private async token(body: string, json: (status: number, value: unknown) => void) {
    const form = new URLSearchParams(body);
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      this.errors.push(`token: grant_type ${form.get("grant_type")}`);
      return json(400, { error: "unsupported_grant_type" });
    }
    try {
      const key = await importSPKI(this.keys.publicKey.export({ type: "spki", format: "pem" }).toString(), "RS256");
      const { payload } = await jwtVerify(form.get("assertion") ?? "", key, { algorithms: ["RS256"], issuer: this.clientEmail, audience: this.tokenUrl });
      if (payload.scope !== "https://www.googleapis.com/auth/firebase.messaging") throw new Error(`scope ${payload.scope}`);
      if ((payload.exp ?? 0) - (payload.iat ?? 0) > 3600) throw new Error("assertion lives more than an hour");
    } catch (error) {
      this.errors.push(`token: ${(error as Error).message}`);
      return json(400, { error: "invalid_grant" });
    }
    const accessToken = `ya29.${randomUUID()}`;
    this.accessTokens.add(accessToken);
    this.tokensIssued++;
    json(200, { access_token: accessToken, expires_in: 3599, token_type: "Bearer" });
  }

  /** The tokens now in `topic`. */
  membersOf(topic: string): string[] {
    return [...(this.topics.get(topic) ?? [])];
  }

  private membership(action: "batchAdd" | "batchRemove", req: IncomingMessage, body: string, json: (status: number, value: unknown) => void) {
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (bearer === undefined || !this.accessTokens.has(bearer)) return json(401, { error: "Unauthorized" });
    const problems: string[] = [];
    if (req.headers.access_token_auth !== "true") problems.push(`access_token_auth ${JSON.stringify(req.headers.access_token_auth)}`);
    let parsed: { to?: unknown; registration_tokens?: unknown } = {};
    try {
      parsed = JSON.parse(body);
    } catch {
      problems.push("body is not JSON");
    }
    const topic = typeof parsed.to === "string" ? /^\/topics\/([a-zA-Z0-9\-_.~%]+)$/.exec(parsed.to)?.[1] : undefined;
    if (topic === undefined) problems.push(`to ${JSON.stringify(parsed.to)}`);
    const tokens = parsed.registration_tokens;
    if (!Array.isArray(tokens) || tokens.length < 1 || tokens.length > 1000 || tokens.some((t) => typeof t !== "string")) {
      problems.push(`registration_tokens: ${Array.isArray(tokens) ? `${tokens.length} entries` : typeof tokens}`);
    }
    if (problems.length > 0) {
      this.errors.push(`${action}: ${problems.join(", ")}`);
      return json(400, { error: "InvalidParameters" });
    }
    this.membershipRequests.push({ action, topic: topic!, tokens: tokens as string[] });
    const members = this.topics.get(topic!) ?? new Set<string>();
    this.topics.set(topic!, members);
    const results = (tokens as string[]).map((token) => {
      const behaviour = this.behaviours.get(token);
      if (behaviour === undefined || behaviour === "unregistered") return { error: "NOT_FOUND" };
      if (behaviour === "invalid") return { error: "INVALID_ARGUMENT" };
      // an app instance holds at most 2,000 topics
      if (behaviour === "too-many-topics" && action === "batchAdd") return { error: "TOO_MANY_TOPICS" };
      if (action === "batchAdd") members.add(token);
      else members.delete(token);
      return {};
    });
    json(200, { results });
  }

  private async send(req: IncomingMessage, body: string, json: (status: number, value: unknown, headers?: Record<string, string>) => void) {
    this.sendRequests++;
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (bearer === undefined || !this.accessTokens.has(bearer)) return json(401, { error: { code: 401, status: "UNAUTHENTICATED" } });
    const { message } = JSON.parse(body) as {
      message: { token?: string; topic?: string; data: Record<string, unknown>; android?: { priority: string; ttl: string; collapse_key?: string }; apns?: FcmApns };
    };
    if (message !== undefined && "topic" in message) return this.sendToTopic(message as Parameters<FcmService["sendToTopic"]>[0], json);
    const problems: string[] = [];
    if (typeof message?.token !== "string") problems.push("no token");
    if (Object.values(message?.data ?? {}).some((v) => typeof v !== "string")) problems.push("data values must be strings");
    if (Buffer.byteLength(Object.entries(message?.data ?? {}).flat().join("")) > 4096) problems.push("data over 4096 bytes");
    // an iOS app's message carries apns and no android block; an Android app's, the reverse
    const platform = message !== undefined && "apns" in message ? "ios" : "android";
    if (platform === "ios") {
      if ("android" in message) problems.push("an apns message with an android block");
      problems.push(...apnsProblems(message.apns, Math.floor(Date.now() / 1000)));
      problems.push(...apnsPayloadProblems(message.apns, message.data));
    } else {
      if (!["NORMAL", "HIGH"].includes(message?.android?.priority ?? "")) problems.push(`android.priority ${message?.android?.priority}`);
      if (!/^\d+(\.\d+)?s$/.test(message?.android?.ttl ?? "")) problems.push(`android.ttl ${message?.android?.ttl}`);
    }
    if (problems.length > 0) {
      this.errors.push(`send: ${problems.join(", ")}`);
      return json(400, { error: { code: 400, status: "INVALID_ARGUMENT", details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "INVALID_ARGUMENT" }] } });
    }
    const token = message.token!;
    const attempt = (this.attempts.get(token) ?? 0) + 1;
    this.attempts.set(token, attempt);
    const fcmError = (code: number, status: string, errorCode: string, extra: object[] = []) => ({
      error: { code, status, details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }, ...extra] },
    });
    switch (this.behaviours.get(token)) {
      case "unregistered":
        return json(404, fcmError(404, "NOT_FOUND", "UNREGISTERED"));
      case "invalid":
        return json(400, fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", [{ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: "message.token", description: "Invalid registration token" }] }]));
      case "sender-mismatch":
        return json(403, fcmError(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"));
      case "redirect":
        return json(307, {}, { Location: `${this.url}/redirected/${token}` });
      case "unavailable-once":
        if (attempt === 1) return json(503, fcmError(503, "UNAVAILABLE", "UNAVAILABLE"), { "Retry-After": "1" });
        break;
      case undefined:
        return json(404, fcmError(404, "NOT_FOUND", "UNREGISTERED"));
    }
    const list = this.received.get(token) ?? [];
    const data = message.data as Record<string, string>;
    list.push(platform === "ios" ? { platform, data, apns: message.apns! } : { platform, data, android: message.android! });
    this.received.set(token, list);
    json(200, { name: `projects/${this.projectId}/messages/${randomUUID()}` });
  }

  /** A topic message: both platform blocks, a bare name, no token; received by each member. */
  private sendToTopic(
    message: { token?: string; topic: string; data: Record<string, unknown>; android?: { priority: string; ttl: string; collapse_key?: string }; apns?: FcmApns },
    json: (status: number, value: unknown) => void,
  ) {
    const problems: string[] = [];
    if ("token" in message) problems.push("both token and topic");
    if (typeof message.topic !== "string" || !/^[a-zA-Z0-9\-_.~%]+$/.test(message.topic)) problems.push(`topic ${JSON.stringify(message.topic)} (bare name expected)`);
    if (Object.values(message.data ?? {}).some((v) => typeof v !== "string")) problems.push("data values must be strings");
    if (Buffer.byteLength(Object.entries(message.data ?? {}).flat().join("")) > 4096) problems.push("data over 4096 bytes");
    if (!["NORMAL", "HIGH"].includes(message.android?.priority ?? "")) problems.push(`android.priority ${message.android?.priority}`);
    if (!/^\d+(\.\d+)?s$/.test(message.android?.ttl ?? "")) problems.push(`android.ttl ${message.android?.ttl}`);
    problems.push(...apnsProblems(message.apns, Math.floor(Date.now() / 1000)));
    problems.push(...apnsPayloadProblems(message.apns, message.data));
    if (problems.length > 0) {
      this.errors.push(`send to topic: ${problems.join(", ")}`);
      return json(400, { error: { code: 400, status: "INVALID_ARGUMENT" } });
    }
    this.topicMessages.set(message.topic, (this.topicMessages.get(message.topic) ?? 0) + 1);
    const data = message.data as Record<string, string>;
    for (const token of this.topics.get(message.topic) ?? []) {
      const list = this.received.get(token) ?? [];
      list.push({ platform: "topic", topic: message.topic, data, android: message.android!, apns: message.apns! });
      this.received.set(token, list);
    }
    json(200, { name: `projects/${this.projectId}/messages/${randomUUID()}` });
  }
}
