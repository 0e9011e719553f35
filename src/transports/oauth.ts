/**
 * The access tokens a push service's API wants (FCM: a service account's JWT bearer grant,
 * RFC 7523; Huawei Push Kit: client credentials, RFC 6749 §4.4): one form POST to the service's
 * token endpoint, the answer cached per isolate until shortly before it expires.
 */
import { REQUEST_TIMEOUT_MS } from "./transport";

/** Renew an access token this long before the service says it expires. */
const RENEW_BEFORE_SECONDS = 300;

interface CachedToken {
  token: string;
  expiresAt: number;
}

const tokens = new Map<string, Promise<CachedToken>>();

/**
 * The access token cached under `key` (the credential and the endpoint), or a fresh one from
 * `tokenUrl` for the form `form()` makes; `label` names the endpoint in errors. A refresh is
 * forced after the service refused the token it had.
 */
export async function cachedAccessToken(
  key: string,
  tokenUrl: string,
  form: (now: number) => Promise<Record<string, string>>,
  label: string,
  fetcher: typeof fetch,
  forceRefresh = false,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const cached = tokens.get(key);
  if (!forceRefresh && cached !== undefined) {
    const value = await cached.catch(() => null);
    if (value !== null && value.expiresAt - RENEW_BEFORE_SECONDS > now) return value.token;
  }
  const fresh = (async (): Promise<CachedToken> => {
    const response = await fetcher(tokenUrl, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(await form(now)),
      // the credential goes to the configured endpoint only, never to a Location it names
      redirect: "manual",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new Error(`${label} answered ${response.status} (redirects are not followed)`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`${label} answered ${response.status}`);
    }
    const body = (await response.json()) as { access_token?: unknown; expires_in?: unknown };
    if (typeof body.access_token !== "string" || body.access_token === "") throw new Error(`${label} sent no access_token`);
    const lifetime = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 3600;
    return { token: body.access_token, expiresAt: now + lifetime };
  })();
  tokens.set(key, fresh);
  fresh.catch(() => tokens.delete(key));
  return (await fresh).token;
}
