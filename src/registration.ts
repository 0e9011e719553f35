/**
 * Registering a subscription for a topic, shared by the JSON Subscription API and the draft's
 * push-register bridge: fit the triggers to the tenant, clamp the expiry, create or update.
 */
import { readConfig } from "./config";
import { keyringOf } from "./crypto/sealed";
import { randomToken } from "./crypto/secrets";
import { grantedExpiry } from "./expiry";
import { getSupportedTriggers } from "./store/tenant-triggers";
import { upsertRegistration, type Actor, type RegistrationRow } from "./store/registrations";
import { storedSubscription, type SubscriptionInput } from "./store/subscriptions";
import { downgradeTriggers, type Requested } from "./triggers";

export type RegisterResult =
  | { kind: "registered"; row: RegistrationRow; created: boolean }
  | { kind: "no_supported_trigger" }
  | { kind: "owned_by_another" };

export async function register(
  env: Env,
  actor: Actor,
  input: { topic: string; subscription: SubscriptionInput; requested: Requested; clientId: string | null; requestedExpiry: number | null },
  now: number,
): Promise<RegisterResult> {
  const trigger = downgradeTriggers(input.requested, await getSupportedTriggers(env.DB, actor.tenantId));
  if (trigger === null) return { kind: "no_supported_trigger" };
  const keys = () => keyringOf(env);
  const result = await upsertRegistration(
    env.DB,
    keys,
    actor,
    await storedSubscription(await keys(), actor.tenantId, input.subscription),
    {
      id: randomToken(16),
      topic: input.topic,
      clientId: input.clientId,
      trigger,
      expiresAt: grantedExpiry(input.requestedExpiry, now, readConfig(env).maxRegistrationSeconds),
    },
    now,
  );
  return result === null ? { kind: "owned_by_another" } : { kind: "registered", ...result };
}
