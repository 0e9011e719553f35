/**
 * The push services a subscription may name (the early draft's `push_services`), their order of
 * preference, and the choice: of those a body names, the first usable one is registered, only it.
 */
import { z } from "zod";
import { DEFAULT_PUSH_SERVICE_PREFERENCE, readConfig } from "../config";
import type { PushServiceName } from "../store/subscriptions";
import { PUSH_SERVICE_TABLE, serviceNamed, type PushServiceEntrySchemas, type PushServiceForgetSchemas } from "../transports";
import type { ServiceEntry } from "../transports/transport";

export type { ServiceEntry };

/**
 * Every push service, in the default order of preference: DEFAULT_PUSH_SERVICE_PREFERENCE's, then
 * the table's services it does not name (a service added since ranks last until the operator's
 * PUSH_SERVICE_PREFERENCE says otherwise). WebSocket's frames the TopicHub sends itself.
 */
export const PUSH_SERVICES: readonly PushServiceName[] = [
  ...new Set([
    ...(DEFAULT_PUSH_SERVICE_PREFERENCE.split(",") as PushServiceName[]),
    ...PUSH_SERVICE_TABLE.flatMap((service) => Object.keys(service.push_services) as PushServiceName[]),
    "websocket" as const,
  ]),
];

/** Each `push_services` entry schema of the table, by name, optional. */
function optionalEntries(): { [K in keyof PushServiceEntrySchemas]: z.ZodOptional<PushServiceEntrySchemas[K]> } {
  const schemas = PUSH_SERVICE_TABLE.flatMap((service) => Object.entries(service.push_services) as [string, z.ZodType][]);
  return Object.fromEntries(schemas.map(([name, schema]) => [name, schema.optional()])) as never;
}

/** Each unsubscribe entry schema of the table, by name, optional. */
function optionalForgetEntries(): { [K in keyof PushServiceForgetSchemas]: z.ZodOptional<PushServiceForgetSchemas[K]> } {
  const schemas = PUSH_SERVICE_TABLE.flatMap((service) => Object.entries(service.forget) as [string, z.ZodType][]);
  return Object.fromEntries(schemas.map(([name, schema]) => [name, schema.optional()])) as never;
}

/** A connection id is any text: one we do not know is a 404, whatever its form, never a 400. */
const websocketSchema = z.object({ connection_id: z.string() });
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
    // each push service's entries, as its module in src/transports checks them
    ...optionalEntries(),
    websocket: websocketSchema.optional(),
    apns: apnsSchema,
    apn: apnsSchema,
  })
  .refine(namesOne, NAME_ONE);

/** `push_services` of an unsubscribe: a subscription by its identifier alone (keys and an FCM platform are ignored). */
export const pushServicesToForgetSchema = z
  .object({
    ...optionalForgetEntries(),
    websocket: websocketSchema.optional(),
  })
  .refine(namesOne, NAME_ONE);

export type PushServices = z.infer<typeof pushServicesSchema>;
export type PushServicesToForget = z.infer<typeof pushServicesToForgetSchema>;

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

/** Whether the director can deliver over the service at all (FCM needs FCM_SERVICE_ACCOUNT): its module says. */
const enabled = (env: Env, name: PushServiceName) => serviceNamed(name)?.configured(env) ?? true;

/** The services this director registers, most preferred first (discovery tells them). */
export const enabledServices = (env: Env): PushServiceName[] => servicePreference(env).filter((name) => enabled(env, name));

/** REQUIRE_ENCRYPTION refuses keyless UnifiedPush: its messages would travel in clear. */
const keylessRefused = (env: Env, entry: ServiceEntry) =>
  entry.service === "unified_push" && entry.keys === null && readConfig(env).requireEncryption;

const usable = (env: Env, entry: ServiceEntry) => enabled(env, entry.service) && !keylessRefused(env, entry);

function entryOf(services: PushServices, name: PushServiceName): ServiceEntry | null {
  const entry = (services as Record<string, unknown>)[name];
  if (entry === undefined) return null;
  if (name === "websocket") return { service: "websocket", connectionId: services.websocket!.connection_id };
  return serviceNamed(name)!.parse(name, entry);
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
