/** `GET /healthz`: whether this deployment can serve, for load balancers and the operator's monitor. */
import { Hono } from "hono";
import { countTenants } from "../store/tenants";
import { currentVapidKeys } from "../store/vapid-keys";
import type { AppEnv } from "../types";
import { operations } from "../openapi/operation";

/** One check's result: `error` is a short sentence for the operator, never a secret's value or a stack. */
export type Check = { ok: true } | { ok: false; error: string };

export interface Checks {
  d1: Check & { ms: number };
  bindings: Check & { missing: string[] };
  secrets: Check;
}

/** The bindings every part of the director needs (wrangler.toml). */
export const REQUIRED_BINDINGS = ["DB", "TOPIC_HUB", "FANOUT", "DELIVERIES", "DEAD_LETTERS"] as const;

/** A slower D1 counts as down: a load balancer would rather try another region. */
export const D1_TIMEOUT_MS = 2000;

/** The answer for a set of checks (pure): 200 "ok" when every check passed, else 503 "fail". */
export function healthOf(checks: Checks): { status: 200 | 503; body: { status: "ok" | "fail"; checks: Checks } } {
  const ok = Object.values(checks).every((check) => check.ok);
  return { status: ok ? 200 : 503, body: { status: ok ? "ok" : "fail", checks } };
}

/** Which of the required bindings are absent (pure). */
export const missingBindings = (env: Partial<Record<string, unknown>>): string[] => REQUIRED_BINDINGS.filter((name) => env[name] === undefined || env[name] === null);

async function checkD1(env: Env): Promise<Checks["d1"]> {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), D1_TIMEOUT_MS)));
  try {
    const result = await Promise.race([countTenants(env.DB), timeout]);
    const ms = Date.now() - started;
    return result === "timeout" ? { ok: false, ms, error: `D1 did not answer within ${D1_TIMEOUT_MS / 1000} s` } : { ok: true, ms };
  } catch {
    // the driver's message may quote SQL or internals: the operator gets a sentence, the details stay in D1's own logs
    return { ok: false, ms: Date.now() - started, error: "D1 refused the probe query (SELECT count(*) FROM tenants)" };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

function checkBindings(env: Env): Checks["bindings"] {
  const missing = missingBindings(env as unknown as Record<string, unknown>);
  return missing.length === 0 ? { ok: true, missing } : { ok: false, missing, error: `bindings missing: ${missing.join(", ")}` };
}

async function checkSecrets(env: Env): Promise<Checks["secrets"]> {
  if (!env.ADMIN_TOKEN) return { ok: false, error: "ADMIN_TOKEN is not set" };
  try {
    // the key that signs now, its private half opened: what the next Web Push send needs
    if ((await currentVapidKeys(env)) === null) return { ok: false, error: "no VAPID key: set VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY, or rotate one in" };
  } catch {
    return { ok: false, error: "the current VAPID key cannot be read (D1 down, or SECRETS_KEY missing or wrong)" };
  }
  return { ok: true };
}

export const healthz = new Hono<AppEnv>();

const operation = operations("Public");

healthz.get(
  "/",
  operation({
    summary: "Health: D1, bindings and secrets",
    responses: { 200: { description: '{"status": "ok", "checks": {…}}', json: true }, 503: { description: '{"status": "fail", "checks": {…}}, the failed check with its error', json: true } },
  }),
  async (c) => {
  const bindings = checkBindings(c.env);
  // without DB there is nothing to probe: the bindings check already says why
  const [d1, secrets] = await Promise.all([
    bindings.missing.includes("DB") ? Promise.resolve({ ok: false as const, ms: 0, error: "no DB binding" }) : checkD1(c.env),
    checkSecrets(c.env),
  ]);
  const { status, body } = healthOf({ d1, bindings, secrets });
  return c.json(body, status, { "Cache-Control": "no-store" });
});
