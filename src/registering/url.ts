/**
 * The draft's registration URL, built and parsed here only: the absolute URL a registration
 * answers at, which clients get in `Location`, DELETE, and name again in Push-Dont-Notify.
 */
import { readConfig } from "../config";
import { randomToken } from "../crypto/secrets";

/** Where registrations live, under the director's origin (or PUBLIC_BASE_URL, which may add a path). */
export const REGISTRATIONS_PATH = "/v1/registrations";

/** 16 random bytes in base64url: 128 bits, so the URL can be a capability (DELETE needs no credentials). */
const ID = "[A-Za-z0-9_-]{22}";
const ID_ONLY = new RegExp(`^${ID}$`);
/** Ours, and the push gateway's (`/dav/<tenant id>/.webdav-push/registrations/<id>`, issue 14). */
const URL_ID = new RegExp(`(?:${REGISTRATIONS_PATH}|/dav/[0-9a-f]{24}/\\.webdav-push/registrations)/(${ID})$`);

export const newRegistrationId = () => randomToken(16);

/** Whether `text` has the form of a registration id (the store is asked only about those). */
export const isRegistrationId = (text: string) => ID_ONLY.test(text);

/** The absolute registration URL: on PUBLIC_BASE_URL when set, else the origin the request came to. */
export function registrationUrl(env: Env, requestUrl: string, id: string): string {
  const base = readConfig(env).publicBaseUrl ?? new URL(requestUrl).origin;
  return `${base}${REGISTRATIONS_PATH}/${id}`;
}

/** The id a registration URL names, or null when the text is not one of our registration URLs. */
function registrationIdOf(url: string): string | null {
  return URL_ID.exec(url.trim())?.[1] ?? null;
}

/**
 * Registration ids from the registration URLs a client named (Push-Dont-Notify, `dont_notify`).
 * URLs other than ours are invalid values, which the draft says to ignore.
 */
export function registrationIdsOf(urls: string[]): string[] {
  const ids = new Set<string>();
  for (const url of urls) {
    const id = registrationIdOf(url);
    if (id !== null) ids.add(id);
  }
  return [...ids];
}
