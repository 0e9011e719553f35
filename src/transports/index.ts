/**
 * The push services the director sends to, listed once (issue 16): registering, fan-out,
 * deliveries and discovery loop over this table. A new service is a module beside these, behind
 * `PushService` (./transport.ts), and one line here.
 */
import { fcmService } from "./fcm";
import { hmsService } from "./hms";
import { readConfig } from "../config";
import type { PushServiceName } from "../store/subscriptions";
import type { AnyPushService, DeliveredTransport, Deliverable, PushService } from "./transport";
import { webPushService } from "./web-push";

export const PUSH_SERVICE_TABLE = [webPushService, fcmService, hmsService] as const satisfies readonly AnyPushService[];

type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
/** Every `push_services` entry schema of the table, by name (the registering schema is built from it). */
export type PushServiceEntrySchemas = Intersection<(typeof PUSH_SERVICE_TABLE)[number]["push_services"]>;
/** Every unsubscribe entry schema of the table, by name. */
export type PushServiceForgetSchemas = Intersection<(typeof PUSH_SERVICE_TABLE)[number]["forget"]>;

/** What this director sends to now: every service of the table, configured or not, and keyless Web Push unless refused. */
export function deliverableFor(env: Env): Deliverable {
  const deliverable: Deliverable = { plain: !readConfig(env).requireEncryption };
  for (const service of PUSH_SERVICE_TABLE) deliverable[service.transport] = service.configured(env);
  return deliverable;
}

/** Any of the table's queued targets (each service's own form; src/queues/jobs.ts DeliveryTarget). */
export type QueuedTarget = Parameters<(typeof PUSH_SERVICE_TABLE)[number]["open"]>[1];

/** The service a subscription stored under `transport` is delivered by; null for a WebSocket connection, whose TopicHub sends its frames. */
export function serviceStoredAs(transport: string): PushService<unknown> | null {
  return ((PUSH_SERVICE_TABLE as readonly AnyPushService[]).find((s) => s.transport === transport) as PushService<unknown> | undefined) ?? null;
}

/** The service that registers a `push_services` name; undefined for websocket, which is no push service. */
export const serviceNamed = (name: PushServiceName): PushService<unknown> | undefined =>
  (PUSH_SERVICE_TABLE as readonly AnyPushService[]).find((service) => name in service.push_services) as PushService<unknown> | undefined;

/** The service a delivery job goes out by (a job without `transport` is Web Push's, as every job once was). */
export function serviceOf(transport: DeliveredTransport | undefined): PushService<unknown> {
  const service = serviceStoredAs(transport ?? "web_push");
  if (service === null) throw new Error(`no push service delivers ${transport}`);
  return service;
}
