/**
 * The push services a subscription may name (the early draft's `push_services`), their order of
 * preference, and the choice: of those a body names, the first usable one is registered, only it.
 */
import { z } from "zod";
import { readConfig } from "../config";
import { FCM_PLATFORMS, type FcmPlatform, type PushServiceName } from "../store/subscriptions";
import { serviceAccountOf } from "../transports/fcm";

/** Every push service, in the default order of preference (DEFAULT_PUSH_SERVICE_PREFERENCE). */
export const PUSH_SERVICES = ["web_push", "unified_push", "fcm", "websocket"] as const satisfies readonly PushServiceName[];

const keysSchema = z.object({ p256dh: z.string().min(1), auth: z.string().min(1) });
const webPushSchema = z.object({
  endpoint: z.string().min(1),
  keys: keysSchema,
  content_encoding: z.string().max(64).optional(),
});
/** A connection id is any text: one we do not know is a 404, whatever its form, never a 400. */
const websocketSchema = z.object({ connection_id: z.string() });
/** An FCM token, and the platform of the app it belongs to (absent: android). */
const fcmSchema = z.object({
  registration_token: z.string().min(1).max(4096),
  platform: z.enum(FCM_PLATFORMS, { error: `must be ${FCM_PLATFORMS.map((p) => JSON.stringify(p)).join(" or ")}` }).optional(),
});
const namesOne = (services: Record<string, unknown>) => Object.values(services).some((entry) => entry !== undefined);
const NAME_ONE = { message: `name at least one of ${PUSH_SERVICES.join(", ")}` };

/**
 * Names a client may use for Apple's push service. APNs is not reached directly (it speaks HTTP/2
 * only, which a Worker's outbound fetch does not), so an entry under either name is never
 * registered: kept through the schema (not stripped as unknown), so the refusal can say what works.
 */
const APNS_NAMES = ["apns", "apn"] as const;
const apnsSchema = z.unknown().optional().describe('never registered: an iOS app registers its FCM token as "fcm" with "platform": "ios"');

/** `push_services` of a subscription: each entry named is schema-checked, chosen or not. */
export const pushServicesSchema = z
  .object({
    web_push: webPushSchema.optional(),
    // A UnifiedPush endpoint is a Web Push resource; without keys it is sent the message plain.
    unified_push: webPushSchema.extend({ keys: keysSchema.optional() }).optional(),
    fcm: fcmSchema.optional(),
    websocket: websocketSchema.optional(),
    apns: apnsSchema,
    apn: apnsSchema,
  })
  .refine(namesOne, NAME_ONE);

/** `push_services` of an unsubscribe: a subscription by its identifier alone (keys and an FCM platform are ignored). */
export const pushServicesToForgetSchema = z
  .object({
    web_push: z.object({ endpoint: z.string().min(1) }).optional(),
    unified_push: z.object({ endpoint: z.string().min(1) }).optional(),
    fcm: fcmSchema.optional(),
    websocket: websocketSchema.optional(),
  })
  .refine(namesOne, NAME_ONE);

export type PushServices = z.infer<typeof pushServicesSchema>;
export type PushServicesToForget = z.infer<typeof pushServicesToForgetSchema>;

/** One named push service, whichever syntax named it (a JSON entry, or the draft's XML). */
export type ServiceEntry =
  | {
      service: "web_push" | "unified_push";
      endpoint: string;
      /** RFC 8291 keys; null: a keyless UnifiedPush endpoint. */
      keys: { p256dh: string; auth: string } | null;
      contentEncoding: string | null;
    }
  | { service: "fcm"; registrationToken: string; platform: FcmPlatform }
  | { service: "websocket"; connectionId: string };

/** No push service a body named can be registered here; `code` is the API's. */
export class NoUsableService extends Error {
  constructor(
    readonly code: "transport_unavailable" | "encryption_required",
    message: string,
  ) {
    super(message);
    this.name = "NoUsableService";
  }
}

/**
 * PUSH_SERVICE_PREFERENCE's names first, in its order; the services it leaves out rank after, in
 * the default order (names it does not know are ignored).
 */
export function servicePreference(env: Env): PushServiceName[] {
  const listed = readConfig(env).pushServicePreference.filter((name): name is PushServiceName => (PUSH_SERVICES as readonly string[]).includes(name));
  return [...new Set<PushServiceName>([...listed, ...PUSH_SERVICES])];
}

/** Whether the director can deliver over the service at all: FCM needs FCM_SERVICE_ACCOUNT. */
const enabled = (env: Env, name: PushServiceName) => name !== "fcm" || serviceAccountOf(env) !== null;

/** The services this director registers, most preferred first (discovery tells them). */
export const enabledServices = (env: Env): PushServiceName[] => servicePreference(env).filter((name) => enabled(env, name));

/** REQUIRE_ENCRYPTION refuses keyless UnifiedPush: its messages would travel in clear. */
const keylessRefused = (env: Env, entry: ServiceEntry) =>
  entry.service === "unified_push" && entry.keys === null && readConfig(env).requireEncryption;

const usable = (env: Env, entry: ServiceEntry) => enabled(env, entry.service) && !keylessRefused(env, entry);

function entryOf(services: PushServices, name: PushServiceName): ServiceEntry | null {
  switch (name) {
    case "web_push":
    case "unified_push": {
      const entry = services[name];
      return entry === undefined ? null : { service: name, endpoint: entry.endpoint, keys: entry.keys ?? null, contentEncoding: entry.content_encoding ?? null };
    }
    case "fcm":
      return services.fcm === undefined ? null : { service: "fcm", registrationToken: services.fcm.registration_token, platform: services.fcm.platform ?? "android" };
    case "websocket":
      return services.websocket === undefined ? null : { service: "websocket", connectionId: services.websocket.connection_id };
  }
}

/**
 * The first usable service of those named, in order of preference. Only usability decides: bad
 * details in the chosen entry fail later (subscriptionOf), they do not pass the turn to the next.
 * An `apns` (or `apn`) entry is never usable: beside a usable service it is ignored; else the
 * refusal says how an iOS app registers instead.
 */
export function chooseService(env: Env, services: PushServices): ServiceEntry {
  const named = servicePreference(env)
    .map((name) => entryOf(services, name))
    .filter((entry) => entry !== null);
  const chosen = named.find((entry) => usable(env, entry));
  if (chosen !== undefined) return chosen;
  const apns = APNS_NAMES.find((name) => services[name] !== undefined);
  if (apns === undefined && named.length === 1 && keylessRefused(env, named[0])) {
    throw new NoUsableService("encryption_required", "this director requires message encryption (REQUIRE_ENCRYPTION): unified_push needs keys {p256dh, auth} (RFC 8291)");
  }
  const offered = enabledServices(env).map((name) => (name === "unified_push" && readConfig(env).requireEncryption ? "unified_push (with keys)" : name));
  const usableHere = `usable: ${offered.join(", ")}`;
  const none = named.length === 0 ? usableHere : `none of the push services named (${named.map((entry) => entry.service).join(", ")}) is usable on this director; ${usableHere}`;
  throw new NoUsableService("transport_unavailable", apns === undefined ? none : `${apnsRefusal(env, apns)}; ${none}`);
}

/** Why an `apns` (or `apn`) entry is not registered, and what an iOS app registers instead. */
function apnsRefusal(env: Env, name: (typeof APNS_NAMES)[number]): string {
  const fcm = enabled(env, "fcm") ? "" : " (FCM is not configured on this director, so neither is usable here)";
  return (
    `${name} is not registered here: APNs needs HTTP/2, which a Worker's outbound fetch does not speak; ` +
    `an iOS app registers its FCM token as "fcm": {"registration_token": "…", "platform": "ios"}${fcm}`
  );
}
