/** Settings read from the environment, with the defaults and floors the draft asks for. */

const DAY = 86_400;
/** The draft's Expiration section: a server SHOULD allow registrations to live at least three days. */
export const MIN_MAX_REGISTRATION_SECONDS = 3 * DAY;
export const DEFAULT_MAX_REGISTRATION_SECONDS = 7 * DAY;
export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_NOTIFY_BATCH = 100;
export const MAX_TOPIC_LENGTH = 256;
/** RFC 8030 leaves TTL open; the big push services keep messages at most four weeks. */
export const MAX_TTL_SECONDS = 28 * DAY;
/** A client grant lives at most a day by default; never less than a minute, the clock skew we allow. */
export const DEFAULT_MAX_GRANT_SECONDS = DAY;
export const MIN_MAX_GRANT_SECONDS = 60;

/** Issue 11: a subscription failing this long (since its first failure after a success) is deleted. */
export const DEFAULT_FAILING_SUBSCRIPTION_DAYS = 3;
export const MIN_FAILING_SUBSCRIPTION_DAYS = 1;

/** FCM's topic fan-out has its own latency and quotas: worth it only for large groups (issue 16). */
export const DEFAULT_FCM_TOPIC_THRESHOLD = 1000;

export const DEFAULT_PUSH_SERVICE_PREFERENCE = "web_push,unified_push,fcm,websocket";

export interface Config {
  /** How long an isolate keeps a tenant's row (issue 15): 0 = always read it from D1. */
  tenantCacheSeconds: number;
  /** The push gateway (issue 14): the least poll_seconds in force, and how long to wait for an origin's answer. */
  gatewayMinPollSeconds: number;
  gatewayOriginTimeoutMs: number;
  maxRegistrationSeconds: number;
  allowInsecurePushResources: boolean;
  publicBaseUrl: string | null;
  coalesceMs: number;
  /** How far ahead of now a client grant's `exp` may lie (and `exp - iat` at most). */
  maxGrantSeconds: number;
  websocket: {
    /** Sockets one topic holds at most (a Durable Object holds at most 32,768). */
    maxPerTopic: number;
    /**
     * Sockets the notify token holds on one topic at most (`WS_MAX_SOCKETS_PER_CLIENT`); a user's
     * sockets are counted across topics by the tenant's `sockets_per_user` (src/limits/).
     */
    maxPerClient: number;
    /** Frames a client may send on a socket at once, then per second; beyond, the socket is closed 1008. */
    frameBurst: number;
    framesPerSecond: number;
    /** Messages kept for replay after reconnect, and for how long. */
    replaySize: number;
    replaySeconds: number;
    /** How long a closed connection (the early draft's connection-ID flow) keeps its registrations and missed pushes. */
    reconnectGraceSeconds: number;
  };
  /** The push services a subscription may name, most preferred first (`PUSH_SERVICE_PREFERENCE`). */
  pushServicePreference: string[];
  /** Refuse keyless (unencrypted) UnifiedPush subscriptions (`REQUIRE_ENCRYPTION`). */
  requireEncryption: boolean;
  /** Days a subscription may fail without a success before it is deleted (`FAILING_SUBSCRIPTION_DAYS`). */
  failingSubscriptionDays: number;
  /**
   * FCM groups (a topic's FCM registrations with identical triggers) larger than this get one FCM
   * topic message instead of one per token (`FCM_TOPIC_THRESHOLD`, issue 16); 0 = never.
   */
  fcmTopicThreshold: number;
}

function intOr(value: string | undefined, fallback: number): number {
  const n = Number.parseInt(value ?? "", 10);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

export function readConfig(env: Env): Config {
  const base = (env.PUBLIC_BASE_URL ?? "").trim().replace(/\/+$/, "");
  return {
    maxRegistrationSeconds: Math.max(
      MIN_MAX_REGISTRATION_SECONDS,
      intOr(env.MAX_REGISTRATION_SECONDS, DEFAULT_MAX_REGISTRATION_SECONDS),
    ),
    allowInsecurePushResources: env.ALLOW_INSECURE_PUSH_RESOURCES === "true",
    publicBaseUrl: base === "" ? null : base,
    coalesceMs: intOr(env.COALESCE_MS, 1000),
    maxGrantSeconds: Math.max(MIN_MAX_GRANT_SECONDS, intOr(env.MAX_GRANT_SECONDS, DEFAULT_MAX_GRANT_SECONDS)),
    websocket: {
      maxPerTopic: Math.min(32_768, intOr(env.WS_MAX_SOCKETS_PER_TOPIC, 10_000)),
      maxPerClient: intOr(env.WS_MAX_SOCKETS_PER_CLIENT, 20),
      // at least one: a client's first stray frame gets the error frame that says what the socket takes
      frameBurst: Math.max(1, intOr(env.WS_FRAME_BURST, 20)),
      framesPerSecond: intOr(env.WS_FRAMES_PER_SECOND, 1),
      replaySize: intOr(env.WS_REPLAY_SIZE, 100),
      replaySeconds: intOr(env.WS_REPLAY_SECONDS, 3600),
      reconnectGraceSeconds: intOr(env.WS_RECONNECT_GRACE_SECONDS, 60),
    },
    pushServicePreference: (env.PUSH_SERVICE_PREFERENCE || DEFAULT_PUSH_SERVICE_PREFERENCE)
      .split(",")
      .map((name) => name.trim())
      .filter((name) => name !== ""),
    requireEncryption: env.REQUIRE_ENCRYPTION === "true",
    failingSubscriptionDays: Math.max(MIN_FAILING_SUBSCRIPTION_DAYS, intOr(env.FAILING_SUBSCRIPTION_DAYS, DEFAULT_FAILING_SUBSCRIPTION_DAYS)),
    tenantCacheSeconds: intOr(env.TENANT_CACHE_SECONDS, 10),
    gatewayMinPollSeconds: Math.max(1, intOr(env.GATEWAY_MIN_POLL_SECONDS, 5)),
    gatewayOriginTimeoutMs: Math.max(1, intOr(env.GATEWAY_ORIGIN_TIMEOUT_MS, 30_000)),
    fcmTopicThreshold: intOr(env.FCM_TOPIC_THRESHOLD, DEFAULT_FCM_TOPIC_THRESHOLD),
  };
}
