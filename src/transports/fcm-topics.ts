/**
 * FCM topic membership through the Instance ID API (issue 16 item 4): `batchAdd` and `batchRemove`
 * put up to 1000 registration tokens in or out of one topic, authorised with FCM's own OAuth
 * access token (the `access_token_auth: true` header says it is one, not a server key).
 */
import { accessToken, type ServiceAccount } from "./fcm";
import { REQUEST_TIMEOUT_MS } from "./transport";

/** The Instance ID API takes at most this many tokens per request. */
export const MEMBERSHIP_BATCH = 1000;

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
