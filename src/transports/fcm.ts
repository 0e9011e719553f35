/**
 * The FCM HTTP v1 transport: a service account's RS256 JWT (jose) buys an OAuth2 access token
 * (cached until shortly before it expires), then one `messages:send` per registration token
 * (the batch endpoint is gone) with a data message, for Android apps and, through FCM's `apns`
 * block, iOS apps.
 */
import { z } from "zod";
import { hostOf, log } from "../log";
import { cachedAccessToken } from "./oauth";
import { removeLeaving } from "./fcm-topics";
import { keyringOf } from "../crypto/sealed";
import { importPKCS8, SignJWT } from "jose";
import { nowSeconds } from "../expiry";
import { FCM_PLATFORMS, tokenIdentifier, fcmPlatformOf, openToken, type FcmPlatform } from "../store/subscriptions";
import { androidPriority, notConfiguredSender, oneAfterAnother, REQUEST_TIMEOUT_MS, outcomeOfStatus, retryAfterSeconds, unansweredOutcome, type Outcome, type PushMessage, type PushService, type Sender } from "./transport";

/** An FCM token on the deliveries queue, sealed (an HMS token's job says `hms`, and it is opened as one). */
export interface QueuedFcmTarget {
  subscriptionId: number;
  tenantId: string;
  /** The token's SHA-256 (the subscription's identifier). */
  tokenDigest: string;
  sealedToken: string;
  /**
   * Which delivery options the FCM message carries (android, or apns for iOS). Absent on jobs
   * queued by a release before iOS was reached, still in flight or in dead letters: android, as
   * every FCM subscription then was.
   */
  platform?: FcmPlatform;
}

/**
 * An FCM topic (issue 16 item 4): one message reaches every member of a group. No subscription
 * is its own, so `subscriptionId` is 0, which no row has: recording its outcome touches nothing.
 */
export interface QueuedFcmTopicTarget {
  subscriptionId: 0;
  tenantId: string;
  /** The FCM topic's name (`pd-…`, src/store/fcm-topics.ts). */
  fcmTopic: string;
}

/** One app instance's registration token. */
export interface FcmTokenTarget {
  subscriptionId: number;
  token: string;
  /** Which delivery options the message carries: `android`, or `apns` for an iOS app's token. */
  platform: FcmPlatform;
}

/** An FCM topic (issue 16 item 4): one message to every token added to it, Android's and iOS's alike. */
export interface FcmTopicTarget {
  subscriptionId: number;
  /** The bare topic name (`pd-…`), as `messages:send` takes it. */
  topic: string;
}

export type FcmTarget = FcmTokenTarget | FcmTopicTarget;

export interface ServiceAccount {
  project_id: string;
  client_email: string;
  private_key: string;
}

const SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
/** FCM refuses data payloads above 4096 bytes. */
export const MAX_DATA_BYTES = 4096;
/**
 * APNs refuses a payload above 4096 bytes, and FCM puts the data's keys beside `aps` in it: the
 * JSON of both together must fit (Apple, "Generating a remote notification").
 */
export const MAX_APNS_PAYLOAD_BYTES = 4096;

/** The configured service account, or null when FCM is not set up (or the JSON is unusable). */
export function serviceAccountOf(env: Env): ServiceAccount | null {
  const text = (env.FCM_SERVICE_ACCOUNT ?? "").trim();
  if (text === "") return null;
  try {
    const account = JSON.parse(text) as Partial<ServiceAccount>;
    if (typeof account.project_id === "string" && typeof account.client_email === "string" && typeof account.private_key === "string") {
      return account as ServiceAccount;
    }
  } catch {
    // fall through
  }
  log(env, "error", "fcm_misconfigured", { message: "FCM_SERVICE_ACCOUNT is not a service account JSON with project_id, client_email and private_key" });
  return null;
}

/** An OAuth2 access token for the service account (RFC 7523 JWT bearer grant), cached per isolate. */
export function accessToken(account: ServiceAccount, tokenUrl: string, fetcher: typeof fetch, forceRefresh = false): Promise<string> {
  const assertion = async (now: number) => ({
    grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
    assertion: await new SignJWT({ scope: SCOPE })
      .setProtectedHeader({ alg: "RS256", typ: "JWT" })
      .setIssuer(account.client_email)
      .setAudience(tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(await importPKCS8(account.private_key, "RS256")),
  });
  return cachedAccessToken(`fcm\n${account.client_email}\n${tokenUrl}`, tokenUrl, assertion, "OAuth token endpoint", fetcher, forceRefresh);
}


/**
 * An iOS app is reached through FCM's `apns` block, since APNs itself speaks HTTP/2 only and a
 * Worker's outbound fetch does not. The push is a background one (`content-available`, no alert,
 * sound or badge): it wakes the app to sync and shows nothing. Apple takes priority 5 only for
 * background pushes (10 is refused), whatever the urgency; iOS may delay or throttle them.
 * No `apns-collapse-id`: the RFC 8030 Topic would fit its 64 bytes, but Apple describes it as
 * merging notifications shown to the user, which a background push is not.
 */
function apnsOptions(message: PushMessage, now: number) {
  return {
    headers: {
      "apns-push-type": "background",
      "apns-priority": "5",
      // RFC 8030 §5.2 TTL as APNs's expiry: Unix seconds, after which Apple stops trying
      "apns-expiration": String(now + message.ttl),
    },
    payload: { aps: { "content-available": 1 } },
  };
}

/** Android's delivery options: priority by urgency, the TTL, and the RFC 8030 Topic as collapse key. */
const androidOptions = (message: PushMessage) => ({
  priority: androidPriority(message.urgency),
  ttl: `${message.ttl}s`,
  ...(message.topic === null ? {} : { collapse_key: message.topic }),
});

/**
 * The v1 request body: a data message (string values) with the delivery options of the token's
 * platform, Android's or (for iOS) APNs's; a topic's members may be either, so a topic message
 * carries both. `now` (Unix seconds) dates the APNs expiry.
 */
export function fcmMessage(target: Pick<FcmTokenTarget, "token" | "platform"> | Pick<FcmTopicTarget, "topic">, message: PushMessage, now: number) {
  const data: Record<string, string> = { ...message.data };
  const bytes = (text: string) => new TextEncoder().encode(text).byteLength;
  const withXml = { ...data, push_message: message.xml };
  // the push-message XML goes along when it fits in FCM's data limit and, for a message that
  // reaches iOS apps (an iOS token's, a topic's), in APNs's payload beside `aps`
  const reachesIos = "topic" in target || target.platform === "ios";
  const fits =
    bytes(Object.entries(withXml).flat().join("")) <= MAX_DATA_BYTES &&
    (!reachesIos || bytes(JSON.stringify({ ...apnsOptions(message, now).payload, ...withXml })) <= MAX_APNS_PAYLOAD_BYTES);
  if (fits) data.push_message = message.xml;
  if ("topic" in target) return { message: { topic: target.topic, data, android: androidOptions(message), apns: apnsOptions(message, now) } };
  if (target.platform === "ios") return { message: { token: target.token, data, apns: apnsOptions(message, now) } };
  return { message: { token: target.token, data, android: androidOptions(message) } };
}

interface FcmErrorBody {
  error?: { status?: string; details?: { "@type"?: string; errorCode?: string; fieldViolations?: { field?: string }[] }[] };
}

/**
 * FCM v1 error codes (firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode) onto the outcome
 * table: UNREGISTERED and an invalid token are gone; QUOTA_EXCEEDED, UNAVAILABLE and INTERNAL
 * temporary; otherwise as the status says. FCM never redirects `messages:send`; a 3xx would carry
 * the access token elsewhere, so it is refused.
 */
export function fcmOutcome(status: number, body: FcmErrorBody | null, retryAfter: string | null, text: string | null = null): Outcome {
  if (status >= 200 && status < 400) return outcomeOfStatus(status, retryAfter, `FCM answered ${status}`);
  const details = body?.error?.details ?? [];
  const code = details.find((d) => d.errorCode)?.errorCode ?? body?.error?.status ?? String(status);
  const reason = `FCM answered ${status} ${code}`;
  if (code === "UNREGISTERED" || status === 404) return { kind: "gone", status, reason };
  if (code === "INVALID_ARGUMENT" && details.some((d) => d.fieldViolations?.some((v) => v.field === "message.token"))) {
    return { kind: "gone", status, reason: `${reason} (invalid registration token)` };
  }
  if (code === "QUOTA_EXCEEDED" || code === "UNAVAILABLE" || code === "INTERNAL") {
    return { kind: "retry", status, afterSeconds: retryAfterSeconds(retryAfter), reason };
  }
  // quoted: FCM's own message when its body is JSON, else whatever text it sent
  const message = body === null ? text : typeof (body.error as { message?: unknown } | undefined)?.message === "string" ? (body.error as { message: string }).message : null;
  return outcomeOfStatus(status, retryAfter, reason, message);
}

/**
 * FCM delivery: one `messages:send` per registration token, or per FCM topic once the members
 * that left it are removed; a 401 refreshes the access token once.
 */
export function fcmTransport(env: Env, account: ServiceAccount, fetcher: typeof fetch = fetch): Sender<FcmTarget> {
  /** Null when the topic may be messaged; else why not yet. */
  const ready = async (topic: string): Promise<string | null> => {
    try {
      return (await removeLeaving(env, account, () => keyringOf(env), topic, nowSeconds(), fetcher)).complete ? null : `FCM topic ${topic}: a member that left is still in it`;
    } catch (error) {
      return `FCM topic ${topic}: its members that left could not be read or removed (${(error as Error).message})`;
    }
  };
  const url = `${env.FCM_API_BASE.replace(/\/+$/, "")}/v1/projects/${encodeURIComponent(account.project_id)}/messages:send`;
  const post = async (body: string, forceRefresh: boolean) =>
    fetcher(url, {
      method: "POST",
      headers: { Authorization: `Bearer ${await accessToken(account, env.GOOGLE_OAUTH_TOKEN_URL, fetcher, forceRefresh)}`, "Content-Type": "application/json" },
      body,
      // a 3xx comes back as it is, and fcmOutcome refuses it
      redirect: "manual",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  const sendOne = async (target: FcmTarget, message: PushMessage): Promise<Outcome> => {
    const body = JSON.stringify(fcmMessage(target, message, nowSeconds()));
    if ("topic" in target) {
      // members that left since the fan-out (a retry or a retried dead letter may come much later)
      // are out of the topic before it is messaged again, or it is not messaged yet
      const why = await ready(target.topic);
      if (why !== null) return { kind: "retry", status: null, afterSeconds: null, reason: why };
    }
    try {
      let response = await post(body, false);
      if (response.status === 401) {
        await response.body?.cancel();
        response = await post(body, true);
      }
      const text = await response.text();
      let parsed: FcmErrorBody | null = null;
      try {
        parsed = text ? (JSON.parse(text) as FcmErrorBody) : null;
      } catch {
        parsed = null;
      }
      const outcome = fcmOutcome(response.status, parsed, response.headers.get("Retry-After"), text);
      // a topic is not a subscription that can be gone: nothing to delete, the message refused
      return "topic" in target && outcome.kind === "gone" ? { kind: "failed", status: outcome.status, reason: `${outcome.reason} (FCM topic ${target.topic})` } : outcome;
    } catch (error) {
      return unansweredOutcome(error, "FCM");
    }
  };
  return oneAfterAnother(sendOne);
}

/** An FCM token, and the platform of the app it belongs to (absent: android). */
const fcmSchema = z.object({
  registration_token: z.string().min(1).max(4096),
  platform: z.enum(FCM_PLATFORMS, { error: `must be ${FCM_PLATFORMS.map((p) => JSON.stringify(p)).join(" or ")}` }).optional(),
});

const NOT_CONFIGURED = notConfiguredSender<FcmTarget>("FCM is not configured (FCM_SERVICE_ACCOUNT)");

/** FCM HTTP v1, for Android apps and (through the `apns` block) iOS apps, when FCM_SERVICE_ACCOUNT is set. */
export const fcmService = {
  transport: "fcm",
  push_services: { fcm: fcmSchema },
  // by the token alone: a platform named is ignored
  forget: { fcm: fcmSchema },
  identifierToForget: async (_name, entry) => tokenIdentifier((entry as z.infer<typeof fcmSchema>).registration_token),
  configured: (env) => serviceAccountOf(env) !== null,
  parse(_name, entry) {
    const { registration_token, platform } = entry as z.infer<typeof fcmSchema>;
    return { service: "fcm", registrationToken: registration_token, platform: platform ?? "android" };
  },
  subscription(_env, entry) {
    if (entry.service !== "fcm") throw new Error(`not an FCM entry: ${entry.service}`);
    return { transport: "fcm", service: "fcm", identifier: entry.registrationToken, keys: null, platform: entry.platform };
  },
  queued: (row, tenantId, deliverable): QueuedFcmTarget | null =>
    deliverable.fcm === true
      ? { subscriptionId: row.subscription_id, tenantId, tokenDigest: row.identifier, sealedToken: row.sealed_token ?? "", platform: fcmPlatformOf(row.platform) }
      : null,
  async open(keyring, target: QueuedFcmTarget | QueuedFcmTopicTarget): Promise<FcmTarget> {
    if ("fcmTopic" in target) return { subscriptionId: target.subscriptionId, topic: target.fcmTopic };
    const token = await openToken(await keyring(), target.tenantId, target.tokenDigest, target.sealedToken, "fcm");
    // a job queued before iOS was reached carries no platform: android, as every FCM token then was
    return { subscriptionId: target.subscriptionId, token, platform: fcmPlatformOf(target.platform) };
  },
  discovery(env) {
    const account = serviceAccountOf(env);
    // iOS apps too, through FCM's apns block (README: FCM HTTP v1)
    return account === null ? {} : { fcm: { project_id: account.project_id, platforms: FCM_PLATFORMS } };
  },
  request: "target",
  // one host, Google's: its share is the service's own
  paceKey: () => "fcm",
  vapid: false,
  notConfigured: "FCM is not configured here (FCM_SERVICE_ACCOUNT)",
  host: (env) => hostOf(env.FCM_API_BASE),
  // which delivery options its messages carry: Android's, or APNs's through FCM for an iOS app
  view: ({ identifier, platform }) => ({ registration_token: identifier, platform: fcmPlatformOf(platform) }),
  sender(env, options) {
    const account = serviceAccountOf(env);
    return account === null ? NOT_CONFIGURED : fcmTransport(env, account, options?.fetcher);
  },
} satisfies PushService<FcmTarget, QueuedFcmTarget | QueuedFcmTopicTarget>;
