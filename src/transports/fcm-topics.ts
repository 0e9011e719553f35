/**
 * FCM topic membership through the Instance ID API (issue 16 item 4): `batchAdd` and `batchRemove`
 * put up to 1000 registration tokens in or out of one topic, authorised with FCM's own OAuth
 * access token (the `access_token_auth: true` header says it is one, not a server key).
 */
import { SecretUndecryptable, type Keyring } from "../crypto/sealed";
import { log } from "../log";
import { leavingMembers, settleLeaving, type Member } from "../store/fcm-topics";
import { openToken } from "../store/subscriptions";
import { accessToken, type ServiceAccount } from "./fcm";
import { REQUEST_TIMEOUT_MS } from "./transport";

/** The Instance ID API takes at most this many tokens per request. */
export const MEMBERSHIP_BATCH = 1000;

/** Leaving members removed per topic and call at most; more than that, and the topic is not messaged this time. */
export const LEAVES_PER_CALL = 5 * MEMBERSHIP_BATCH;

/**
 * What one token's entry in the answer's `results` came to: `ok` (added or removed), `gone` (the
 * token is not, or no longer, an app instance's: NOT_FOUND or INVALID_ARGUMENT), or `error`
 * (anything else: this time it is sent per token).
 */
export type MembershipResult = "ok" | "gone" | "error";

/** Each token's result, in order, from an answer's JSON; null when the answer is not one (no usable `results`). */
export function membershipResults(count: number, body: unknown): MembershipResult[] | null {
  const results = (body as { results?: unknown } | null)?.results;
  if (!Array.isArray(results) || results.length !== count) return null;
  return results.map((entry) => {
    if (typeof entry !== "object" || entry === null) return "error";
    const error = (entry as { error?: unknown }).error;
    if (error === undefined) return "ok";
    return error === "NOT_FOUND" || error === "INVALID_ARGUMENT" ? "gone" : "error";
  });
}

/** The FCM topic name as the Instance ID API and `messages:send` address it. */
export const topicPath = (name: string) => `/topics/${name}`;

/**
 * Adds (`batchAdd`) or removes (`batchRemove`) ≤ MEMBERSHIP_BATCH tokens: each token's result, or
 * a string saying why the request as a whole failed (no answer, a non-2xx status, an unreadable
 * body), in which case nothing may be assumed of any token. A 401 renews the access token once.
 */
export async function changeMembership(
  env: Pick<Env, "FCM_IID_API_BASE" | "GOOGLE_OAUTH_TOKEN_URL">,
  account: ServiceAccount,
  action: "batchAdd" | "batchRemove",
  name: string,
  tokens: string[],
  fetcher: typeof fetch = fetch,
): Promise<MembershipResult[] | string> {
  if (tokens.length === 0) return [];
  if (tokens.length > MEMBERSHIP_BATCH) throw new Error(`${action} takes at most ${MEMBERSHIP_BATCH} tokens`);
  const url = `${env.FCM_IID_API_BASE.replace(/\/+$/, "")}/iid/v1:${action}`;
  const body = JSON.stringify({ to: topicPath(name), registration_tokens: tokens });
  const post = async (forceRefresh: boolean) =>
    fetcher(url, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${await accessToken(account, env.GOOGLE_OAUTH_TOKEN_URL, fetcher, forceRefresh)}`,
        access_token_auth: "true",
        "Content-Type": "application/json",
      },
      body,
      // a 3xx would carry the access token elsewhere: it is a failure, never followed
      redirect: "manual",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  try {
    let response = await post(false);
    if (response.status === 401) {
      await response.body?.cancel();
      response = await post(true);
    }
    const text = (await response.text()).slice(0, 200_000);
    if (response.status < 200 || response.status > 299) return `${action} answered ${response.status}`;
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      return `${action} answered ${response.status} with a body that is not JSON`;
    }
    return membershipResults(tokens.length, parsed) ?? `${action} answered without one result per token`;
  } catch (error) {
    return `${action}: ${(error as Error).message}`;
  }
}

/** Opens members' tokens; one whose secret no longer opens is left out (logged), as a delivery would fail it. */
export async function openMembers(env: Env, keyring: () => Promise<Keyring>, members: Member[]): Promise<{ member: Member; token: string }[]> {
  if (members.length === 0) return [];
  const keys = await keyring();
  const opened = await Promise.all(
    members.map(async (member) => {
      try {
        return { member, token: await openToken(keys, member.tenantId, member.tokenDigest, member.sealedToken) };
      } catch (error) {
        if (!(error instanceof SecretUndecryptable)) throw error;
        log(env, "error", "secret_undecryptable", { tenant: member.tenantId, subscription: member.subscriptionId });
        return null;
      }
    }),
  );
  return opened.filter((entry) => entry !== null);
}

/** batchAdd or batchRemove in requests of ≤ MEMBERSHIP_BATCH: each token's result (`error` for a request that failed). */
export async function membership(env: Env, account: ServiceAccount, action: "batchAdd" | "batchRemove", name: string, tokens: string[], fetcher: typeof fetch = fetch): Promise<MembershipResult[]> {
  const results: MembershipResult[] = [];
  for (let i = 0; i < tokens.length; i += MEMBERSHIP_BATCH) {
    const chunk = tokens.slice(i, i + MEMBERSHIP_BATCH);
    const answer = await changeMembership(env, account, action, name, chunk, fetcher);
    if (typeof answer === "string") log(env, "warn", "fcm_topic_membership_failed", { action, tokens: chunk.length, reason: answer });
    results.push(...(typeof answer === "string" ? chunk.map(() => "error" as const) : answer));
  }
  return results;
}

/**
 * Removes from `name` the members that left it and those whose registration expired (at most
 * LEAVES_PER_CALL of each): how many are out now (or FCM no longer knows their token), and
 * whether none is left in.
 */
export async function removeLeaving(
  env: Env,
  account: ServiceAccount,
  /** Asked only when there is a member to remove. */
  keyring: () => Promise<Keyring>,
  name: string,
  now: number,
  fetcher: typeof fetch = fetch,
): Promise<{ removed: number; complete: boolean }> {
  const { left, expired } = await leavingMembers(env.DB, name, now, LEAVES_PER_CALL);
  if (left.length === 0 && expired.length === 0) return { removed: 0, complete: true };
  const all = [...left, ...expired];
  const opened = await openMembers(env, keyring, all);
  const results = await membership(env, account, "batchRemove", name, opened.map((o) => o.token), fetcher);
  const out = new Set(opened.filter((_, i) => results[i] !== "error").map((o) => o.member));
  // an unopenable token cannot be removed and never will be: settled, as its subscription is unusable
  const unopenable = all.filter((m) => !opened.some((o) => o.member === m));
  for (const m of unopenable) out.add(m);
  await settleLeaving(
    env.DB,
    name,
    left.filter((m) => out.has(m)).map((m) => m.subscriptionId),
    expired.filter((m) => out.has(m)).map((m) => m.registrationId!),
  );
  return { removed: out.size, complete: out.size === all.length && left.length < LEAVES_PER_CALL && expired.length < LEAVES_PER_CALL };
}
