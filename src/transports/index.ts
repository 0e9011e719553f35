/**
 * The push services the director sends to, listed once (issue 16): registering, fan-out,
 * deliveries and discovery loop over this table. A new service is a module beside these, behind
 * `PushService` (./transport.ts), and one line here.
 */
import { fcmService } from "./fcm";
import { hmsService } from "./hms";
import type { DeliveredTransport, PushService } from "./transport";
import { webPushService } from "./web-push";

export const PUSH_SERVICE_TABLE = [webPushService, fcmService, hmsService] as const satisfies readonly PushService<never>[];

type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
/** Every `push_services` entry schema of the table, by name (the registering schema is built from it). */
export type PushServiceEntrySchemas = Intersection<(typeof PUSH_SERVICE_TABLE)[number]["push_services"]>;
/** Every unsubscribe entry schema of the table, by name. */
export type PushServiceForgetSchemas = Intersection<(typeof PUSH_SERVICE_TABLE)[number]["forget"]>;

/** The service a delivery job goes out by (a job without `transport` is Web Push's, as every job once was). */
export function serviceOf(transport: DeliveredTransport | undefined): PushService<unknown> {
  const service = (PUSH_SERVICE_TABLE as readonly PushService<never>[]).find((s) => s.transport === (transport ?? "web_push"));
  if (service === undefined) throw new Error(`no push service delivers ${transport}`);
  return service as PushService<unknown>;
}
