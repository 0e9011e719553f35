/**
 * Registering and unregistering, for every route that does either (the JSON Subscription API, its
 * early-draft aliases, push-register, registration URLs): fit the triggers to the tenant, apply
 * the expiry rule, create or update; attach and detach connections of the connection-ID flow.
 */
import { readConfig } from "../config";
import type { Limits } from "../limits/limits";
import { keyringOf } from "../crypto/sealed";
import { attachConnection, connectionOwner, detachConnection } from "../hub/connections";
import { topicHub } from "../hub/topic-hub";
import { errorFields, log } from "../log";
import {
  deleteRegistration,
  deleteTopicRegistrations,
  upsertRegistration,
  type Actor,
  type DeletedRegistration,
  type RegistrationRow,
} from "../store/registrations";
import { getSupportedTriggers } from "../store/tenant-triggers";
import { currentVapidPublicKey } from "../store/vapid-keys";
import { storedSubscription, type PushServiceName, type SubscriptionInput, type Transport } from "../store/subscriptions";
import { PUSH_SERVICE_TABLE, serviceStoredAs } from "../transports";
import type { AnyPushService } from "../transports/transport";
import { downgradeTriggers, type Requested } from "../triggers";
import type { Principal } from "../types";
import { expiresAt } from "./expiry";
import type { PushServicesToForget } from "./services";
import { isRegistrationId, newRegistrationId } from "./url";

/** Who acts: the tenant (its notify token), or one of its users (a grant's `sub`). */
export const actorOf = (principal: Principal): Actor => ({
  tenantId: principal.tenant.id,
  owner: principal.kind === "grant" ? principal.sub : null,
});

export type RegisterResult =
  | { kind: "registered"; row: RegistrationRow; created: boolean }
  | { kind: "no_supported_trigger" }
  | { kind: "owned_by_another" }
  /** a new registration, and no slot left under this limit (issue 12) */
  | { kind: "quota_exceeded"; limit: "registrations" | "registrations_per_user"; max: number }
  /** websocket: no such connection of the tenant (or its grace is over). */
  | { kind: "connection_unknown" }
  /** websocket: another user's connection. */
  | { kind: "connection_not_yours" };

export interface Registering {
  topic: string;
  subscription: SubscriptionInput;
  requested: Requested;
  clientId: string | null;
  /** The client's `expires`, as it wrote it; null when absent. */
  expires: number | string | null;
}

/**
 * Registers (or updates) a subscription for a topic. A refusal writes nothing. A connection's
 * registrations are its owner's, whoever attached them (the tenant may attach any connection of
 * its own; a user only theirs), and the connection hears the topic from its next flush on.
 * `limits`: the tenant's, in force; a new registration needs a slot of the tenant's and of its
 * owner's (checked last, in the transaction that writes).
 */
export async function register(env: Env, actor: Actor, limits: Limits, input: Registering, now: number): Promise<RegisterResult> {
  const expires = expiresAt(input.expires, now, readConfig(env).maxRegistrationSeconds);
  let owner = actor.owner;
  if (input.subscription.transport === "websocket") {
    const connection = await connectionOwner(env, actor.tenantId, input.subscription.identifier);
    if (connection === null) return { kind: "connection_unknown" };
    if (actor.owner !== null && connection.owner !== actor.owner) return { kind: "connection_not_yours" };
    owner = connection.owner;
  }
  const trigger = downgradeTriggers(input.requested, await getSupportedTriggers(env.DB, actor.tenantId));
  if (trigger === null) return { kind: "no_supported_trigger" };
  const keys = () => keyringOf(env);
  const registrant: Actor = { tenantId: actor.tenantId, owner };
  const result = await upsertRegistration(
    env.DB,
    keys,
    registrant,
    // a new Web Push subscription is bound for good to the VAPID key signing now (issue 11)
    await storedSubscription(await keys(), actor.tenantId, input.subscription, serviceStoredAs(input.subscription.transport)?.vapid === true ? await currentVapidPublicKey(env) : null),
    { id: newRegistrationId(), topic: input.topic, clientId: input.clientId, trigger, expiresAt: expires },
    limits,
    now,
  );
  if (result.kind !== "written") return result;
  await tellHub(env, actor.tenantId, input.topic);
  if (input.subscription.transport === "websocket") {
    try {
      await attachConnection(env, actor.tenantId, input.topic, input.subscription.identifier, { id: result.row.id, trigger, expiresAt: result.row.expires_at });
    } catch (error) {
      // not attached, so not registered either: a new registration goes again
      if (result.created) await deleteRegistration(env.DB, registrant, result.row.id, now);
      throw error;
    }
  }
  return { kind: "registered", row: result.row, created: result.created };
}

/**
 * Tells the topic's hub that it has a registration, so it fans out from its next flush on (it
 * skips the queue for topics nobody registered to). A failure is logged, not the client's: the
 * hub asks D1 again within LISTENERS_KNOWN_MS anyway.
 */
async function tellHub(env: Env, tenantId: string, topic: string): Promise<void> {
  try {
    await topicHub(env, tenantId, topic).registered();
  } catch (error) {
    log(env, "warn", "hub_not_told", { tenant: tenantId, ...errorFields(error) });
  }
}

/** A deleted connection registration stops its frames at once. */
async function detached(env: Env, deleted: DeletedRegistration[]): Promise<void> {
  await Promise.all(
    deleted.filter((row) => row.transport === "websocket").map((row) => detachConnection(env, row.tenant_id, row.topic, row.identifier)),
  );
}

/**
 * Deletes the registration a registration URL names. `actor` null: by the URL alone, a capability
 * (DAVx⁵ sends no credentials to another host); else only one the actor may see. False: unknown,
 * expired, or not the actor's.
 */
export async function unregister(env: Env, actor: Actor | null, id: string, now: number): Promise<boolean> {
  if (!isRegistrationId(id)) return false;
  const deleted = await deleteRegistration(env.DB, actor, id, now);
  if (deleted === null) return false;
  await detached(env, [deleted]);
  return true;
}

/** How the store finds a named subscription: its transport and identifier (keys play no part). */
async function identifiersOf(services: PushServicesToForget): Promise<{ transport: Transport; identifier: string }[]> {
  const out: { transport: Transport; identifier: string }[] = [];
  // each push service finds its own (src/transports)
  for (const service of PUSH_SERVICE_TABLE as readonly AnyPushService[]) {
    for (const name of Object.keys(service.forget) as PushServiceName[]) {
      const entry = (services as Record<string, unknown>)[name];
      if (entry !== undefined) out.push({ transport: service.transport, identifier: await service.identifierToForget(name, entry) });
    }
  }
  if (services.websocket !== undefined) out.push({ transport: "websocket", identifier: services.websocket.connection_id });
  return out;
}

/**
 * The early draft's unsubscribe: deletes the actor's registrations of `topic` for each push service
 * named; answers how many went (0: none was the actor's).
 */
export async function unsubscribe(env: Env, actor: Actor, topic: string, services: PushServicesToForget, now: number): Promise<number> {
  const deleted = await deleteTopicRegistrations(env.DB, actor, topic, await identifiersOf(services), now);
  await detached(env, deleted);
  return deleted.length;
}
