/**
 * Huawei Push Kit (HMS), for apps on Huawei devices without Google services: an OAuth 2.0 client
 * credentials grant (the AppGallery Connect app's ID and secret) buys an access token, cached
 * until shortly before it expires; then one `messages:send` per delivery chunk, its tokens in one
 * list, with a data message.
 */
import { z } from "zod";
import { hostOf } from "../log";
import { cachedAccessToken } from "./oauth";
import { tokenIdentifier, openToken } from "../store/subscriptions";
import { androidPriority, notConfiguredSender, REQUEST_TIMEOUT_MS, retryAfterSeconds, unansweredOutcome, withBody, type Outcome, type PushMessage, type PushService, type Sender } from "./transport";

/** An HMS token on the deliveries queue, sealed as an FCM token is. */
export interface QueuedHmsTarget {
  subscriptionId: number;
  tenantId: string;
  /** The token's SHA-256 (the subscription's identifier). */
  tokenDigest: string;
  sealedToken: string;
}

export interface HmsTarget {
  subscriptionId: number;
  token: string;
}

/** Push Kit takes a data message of at most 4096 bytes: the XML goes along when it fits, as for FCM. */
export const MAX_HMS_DATA_BYTES = 4096;

/** Push Kit's result codes (the `code` of its answer) that the outcome table tells apart. */
export const HMS_CODES = {
  success: "80000000",
  /** Some tokens were refused: `msg` is JSON whose `illegal_tokens` lists them. */
  partial: "80100000",
  /** The access token is not valid (any more): a new one, and the request once more. */
  oauthFailed: "80200001",
  oauthExpired: "80200003",
  /** Every token of the request is invalid. */
  allIllegal: "80300007",
  /** Push Kit's own fault: worth another try. */
  internal: "81000001",
} as const;

/** The app ID and client secret when both are set, else null (HMS is off). */
export function hmsCredentialsOf(env: Pick<Env, "HMS_APP_ID" | "HMS_CLIENT_SECRET">): { appId: string; secret: string } | null {
  const appId = (env.HMS_APP_ID ?? "").trim();
  const secret = (env.HMS_CLIENT_SECRET ?? "").trim();
  return appId === "" || secret === "" ? null : { appId, secret };
}

/** An access token by the client credentials grant (RFC 6749 §4.4), cached per isolate. */
export function hmsAccessToken(credentials: { appId: string; secret: string }, tokenUrl: string, fetcher: typeof fetch, forceRefresh = false): Promise<string> {
  const form = async () => ({ grant_type: "client_credentials", client_id: credentials.appId, client_secret: credentials.secret });
  return cachedAccessToken(`hms\n${credentials.appId}\n${tokenUrl}`, tokenUrl, form, "HMS token endpoint", fetcher, forceRefresh);
}


/**
 * The `messages:send` body for a chunk's tokens: a data message whose `data` is the JSON text of
 * {topic, sync_token, push_message}, the XML left out when the data would pass 4096 bytes.
 */
export function hmsMessage(tokens: string[], message: PushMessage) {
  const fields: Record<string, string> = { ...message.data };
  const withXml = JSON.stringify({ ...fields, push_message: message.xml });
  const data = new TextEncoder().encode(withXml).byteLength <= MAX_HMS_DATA_BYTES ? withXml : JSON.stringify(fields);
  return {
    validate_only: false,
    message: { token: tokens, data, android: { urgency: androidPriority(message.urgency), ttl: `${message.ttl}s` } },
  };
}

/** What Push Kit answered to one request. */
export interface HmsAnswer {
  status: number;
  code: string | null;
  msg: unknown;
  retryAfter: string | null;
  text: string | null;
}

/**
 * The `illegal_tokens` a partial success names (its `msg` is JSON text), or null when `msg` says
 * nothing readable. Only strings: the caller matches them against the chunk's own tokens.
 */
export function illegalTokensOf(msg: unknown): string[] | null {
  if (typeof msg !== "string") return null;
  try {
    const parsed = JSON.parse(msg) as { illegal_tokens?: unknown };
    if (typeof parsed !== "object" || parsed === null || !Array.isArray(parsed.illegal_tokens)) return null;
    return parsed.illegal_tokens.filter((token): token is string => typeof token === "string");
  } catch {
    return null;
  }
}

/**
 * Push Kit's answer onto the outcome table, one outcome per token of the request, in order:
 * 80000000 delivered; 80100000 delivered but the `illegal_tokens` it names, which are gone (a
 * name that is not one of the chunk's matches nothing, and an unreadable `msg` deletes nothing);
 * 80300007 all gone; 429, 5xx and 81000001 temporary; anything else refused. A 3xx is refused
 * too: following it would carry the access token elsewhere.
 */
export function hmsOutcomes(tokens: string[], answer: HmsAnswer): Outcome[] {
  const { status, code } = answer;
  const reason = `HMS answered ${status}${code === null ? "" : ` ${code}`}`;
  const all = (outcome: Outcome) => tokens.map(() => outcome);
  if (status >= 300 && status < 400) return all({ kind: "failed", status, reason: `${reason} (redirects are not followed)` });
  if (status === 429 || status >= 500 || code === HMS_CODES.internal) {
    return all({ kind: "retry", status, afterSeconds: retryAfterSeconds(answer.retryAfter), reason });
  }
  if (status >= 200 && status < 300 && code === HMS_CODES.success) return all({ kind: "delivered", status });
  if (code === HMS_CODES.partial) {
    const illegal = new Set(illegalTokensOf(answer.msg) ?? []);
    return tokens.map((token) => (illegal.has(token) ? { kind: "gone", status, reason: `${reason} (illegal token)` } : { kind: "delivered", status }));
  }
  if (code === HMS_CODES.allIllegal) return all({ kind: "gone", status, reason: `${reason} (illegal tokens)` });
  const quoted = typeof answer.msg === "string" ? answer.msg : answer.text;
  return all({ kind: "failed", status, reason: withBody(reason, quoted) });
}

/** Whether the access token was refused: a new one, and the same request once more. */
const tokenRefused = (status: number, code: string | null) => status === 401 || code === HMS_CODES.oauthFailed || code === HMS_CODES.oauthExpired;

/** Push Kit delivery: one request per chunk; a refused access token is renewed once. */
export function hmsTransport(env: Env, credentials: { appId: string; secret: string }, fetcher: typeof fetch = fetch): Sender<HmsTarget> {
  const url = `${env.HMS_API_BASE.replace(/\/+$/, "")}/v1/${encodeURIComponent(credentials.appId)}/messages:send`;
  const post = async (body: string, forceRefresh: boolean): Promise<HmsAnswer> => {
    const response = await fetcher(url, {
      method: "POST",
      headers: { Authorization: `Bearer ${await hmsAccessToken(credentials, env.HMS_TOKEN_URL, fetcher, forceRefresh)}`, "Content-Type": "application/json" },
      body,
      // a 3xx comes back as it is, and hmsOutcomes refuses it
      redirect: "manual",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = (await response.text()).slice(0, 16_384);
    let parsed: { code?: unknown; msg?: unknown } | null = null;
    try {
      parsed = text ? (JSON.parse(text) as { code?: unknown; msg?: unknown }) : null;
    } catch {
      parsed = null;
    }
    const code = typeof parsed?.code === "string" || typeof parsed?.code === "number" ? String(parsed.code) : null;
    return { status: response.status, code, msg: parsed?.msg ?? null, retryAfter: response.headers.get("Retry-After"), text };
  };
  return {
    async send(targets, message) {
      if (targets.length === 0) return [];
      const tokens = targets.map((target) => target.token);
      const body = JSON.stringify(hmsMessage(tokens, message));
      try {
        let answer = await post(body, false);
        if (tokenRefused(answer.status, answer.code)) answer = await post(body, true);
        return hmsOutcomes(tokens, answer);
      } catch (error) {
        return targets.map(() => unansweredOutcome(error, "HMS"));
      }
    },
  };
}

/** A Push Kit token: 1 to 4096 characters (Huawei's tokens are far shorter; the bound keeps rows small). */
const hmsSchema = z.object({ token: z.string().min(1).max(4096) });

const NOT_CONFIGURED = notConfiguredSender<HmsTarget>("HMS is not configured (HMS_APP_ID, HMS_CLIENT_SECRET)");

/** Huawei Push Kit, when HMS_APP_ID and HMS_CLIENT_SECRET are set. */
export const hmsService = {
  transport: "hms",
  push_services: { hms: hmsSchema },
  forget: { hms: hmsSchema },
  // found by its digest, as stored (src/store/subscriptions.ts)
  identifierToForget: async (_name, entry) => tokenIdentifier((entry as z.infer<typeof hmsSchema>).token),
  configured: (env) => hmsCredentialsOf(env) !== null,
  parse(_name, entry) {
    return { service: "hms", token: (entry as z.infer<typeof hmsSchema>).token };
  },
  subscription(_env, entry) {
    if (entry.service !== "hms") throw new Error(`not an HMS entry: ${entry.service}`);
    // sealed and found by its digest, as an FCM token (src/store/subscriptions.ts)
    return { transport: "hms", service: "hms", identifier: entry.token, keys: null };
  },
  queued: (row, tenantId, deliverable): QueuedHmsTarget | null =>
    deliverable.hms === true ? { subscriptionId: row.subscription_id, tenantId, tokenDigest: row.identifier, sealedToken: row.sealed_token ?? "" } : null,
  async open(keyring, target: QueuedHmsTarget): Promise<HmsTarget> {
    return { subscriptionId: target.subscriptionId, token: await openToken(await keyring(), target.tenantId, target.tokenDigest, target.sealedToken, "hms") };
  },
  discovery(env) {
    const credentials = hmsCredentialsOf(env);
    return credentials === null ? {} : { hms: { app_id: credentials.appId } };
  },
  // Push Kit takes a list of tokens per message: one request per delivery chunk
  request: "chunk",
  paceKey: () => "hms",
  vapid: false,
  notConfigured: "HMS is not configured here (HMS_APP_ID, HMS_CLIENT_SECRET)",
  host: (env) => hostOf(env.HMS_API_BASE),
  view: ({ identifier }) => ({ token: identifier }),
  sender(env, options) {
    const credentials = hmsCredentialsOf(env);
    return credentials === null ? NOT_CONFIGURED : hmsTransport(env, credentials, options?.fetcher);
  },
} satisfies PushService<HmsTarget, QueuedHmsTarget>;
