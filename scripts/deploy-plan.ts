// What `npm run deploy` does, decided from what already exists on the account (scripts/deploy.mjs
// finds that out and carries the plan out). Invariant: a rerun against what a deploy left creates
// nothing, and no secret that exists is ever generated again: a new VAPID pair breaks every Web
// Push subscription, so the pair is generated only when the Worker does not exist or its secret
// listing says both halves are absent, never because the listing failed.

export const DATABASE = "push-director";
export const QUEUES = ["push-fanout", "push-deliveries", "push-dead-letters"];
/** The Worker's secrets (README: Security); `VAPID_*` are generated as one pair. */
export const SECRETS = ["ADMIN_TOKEN", "VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY", "SECRETS_KEY"];
const VAPID = ["VAPID_PUBLIC_KEY", "VAPID_PRIVATE_KEY"];

/** What exists on the account, as scripts/deploy.mjs found it. */
export interface Existing {
  /** The D1 database `push-director` exists. */
  database: boolean;
  /** Names of the queues that exist. */
  queues: string[];
  /** False only when the secret listing said "Worker not found". */
  workerExists: boolean;
  /** Names of the Worker's secrets; null: the listing failed (an error, not "not found"). */
  secrets: string[] | null;
}

export type Step =
  | { step: "database"; create: boolean; name: string }
  | { step: "migrations" }
  | { step: "queues"; create: string[]; existing: string[] }
  /** `refuse` stops the deploy at this step, before anything is generated. */
  | { step: "secrets"; generate: string[]; existing: string[]; refuse: string | null }
  | { step: "deploy" }
  | { step: "health" };

/** The steps, in order, given what exists; a `refuse` on the secrets step stops the deploy there. */
export function planDeploy(existing: Existing): Step[] {
  return [
    { step: "database", create: !existing.database, name: DATABASE },
    { step: "migrations" },
    {
      step: "queues",
      create: QUEUES.filter((name) => !existing.queues.includes(name)),
      existing: QUEUES.filter((name) => existing.queues.includes(name)),
    },
    secretsStep(existing),
    { step: "deploy" },
    { step: "health" },
  ];
}

function secretsStep({ workerExists, secrets }: Existing): Step {
  if (!workerExists) return { step: "secrets", generate: [...SECRETS], existing: [], refuse: null };
  if (secrets === null) {
    // an outage or a permission error says nothing about the secrets: generating would replace them
    return { step: "secrets", generate: [], existing: [], refuse: "the Worker's secrets could not be listed; nothing generated" };
  }
  const present = SECRETS.filter((name) => secrets.includes(name));
  const vapidPresent = VAPID.filter((name) => secrets.includes(name));
  if (vapidPresent.length === 1) {
    return {
      step: "secrets",
      generate: [],
      existing: present,
      refuse: `only ${vapidPresent[0]} is set: put its other half back by hand (a new pair would break every Web Push subscription)`,
    };
  }
  return { step: "secrets", generate: SECRETS.filter((name) => !secrets.includes(name)), existing: present, refuse: null };
}
