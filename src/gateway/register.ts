/**
 * push-register through the gateway (issue 14, item 5): a client POSTs the draft's push-register
 * to a collection's gateway URL, as it would to a WebDAV-Push server. The gateway asks the origin
 * first, with the client's own credentials, whether the client may read that collection and who
 * it is (PROPFIND Depth 0: resourcetype, current-user-principal); only then does it register, for
 * the collection's topic, as `POST /v1/register` does.
 */
import { DOMParser, type Element } from "@xmldom/xmldom";
import { PUSH_NS } from "../xml/escape";
import { childElements, DAV_NS } from "../xml/parse";

/** CalendarServer's namespace, of `getctag` (Radicale and others still answer it). */
export const CALENDARSERVER_NS = "http://calendarserver.org/ns/";

/** The PROPFIND the gateway sends before registering or unregistering. */
export const WHO_AND_WHAT =
  `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:CS="${CALENDARSERVER_NS}"><D:prop>` +
  `<D:resourcetype/><D:current-user-principal/><D:sync-token/><CS:getctag/><D:getetag/></D:prop></D:propfind>`;

/** The PROPFIND the poller sends (issue 14, item 7): the tokens only. */
export const TOKENS =
  `<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:CS="${CALENDARSERVER_NS}"><D:prop>` +
  `<D:sync-token/><CS:getctag/><D:getetag/></D:prop></D:propfind>`;

/** Whether a POST body is the draft's push-register (the gateway's), not something for the origin. */
export function isPushRegister(text: string): boolean {
  if (!text.includes("push-register") || !text.includes(PUSH_NS)) return false;
  try {
    const root = new DOMParser({ onError: () => { throw new Error("not well-formed"); } }).parseFromString(text.replace(/^\uFEFF/, "").trimStart(), "application/xml").documentElement;
    return root !== null && root.namespaceURI === PUSH_NS && root.localName === "push-register";
  } catch {
    // not well-formed but naming push-register: ours, so that the client hears why (400)
    return /<([\w.-]+:)?push-register[\s>/]/.test(text);
  }
}

const isDav = (e: Element, name: string) => e.namespaceURI === DAV_NS && e.localName === name;


export interface CollectionFacts {
  isCollection: boolean;
  /** the current-user-principal's href as the origin wrote it, or null (unauthenticated) */
  principal: string | null;
  /** the resource's href as the origin wrote it */
  href: string | null;
  /** its tokens now: the baseline a later change is told against */
  tokens: { sync_token: string | null; ctag: string | null; etag: string | null };
}

/** What the origin's 207 to WHO_AND_WHAT says of the one resource asked (its first response). */
export function collectionFacts(xml: string): CollectionFacts | null {
  let root: Element | null;
  try {
    root = new DOMParser({ onError: (level) => { if (level !== "warning") throw new Error("not well-formed"); } }).parseFromString(xml, "application/xml").documentElement;
  } catch {
    return null;
  }
  if (root === null || !isDav(root, "multistatus")) return null;
  const response = childElements(root).find((e) => isDav(e, "response"));
  if (response === undefined) return null;
  let isCollection = false;
  let principal: string | null = null;
  const tokens: CollectionFacts["tokens"] = { sync_token: null, ctag: null, etag: null };
  const text = (e: Element) => e.textContent?.trim() || null;
  for (const propstat of childElements(response).filter((e) => isDav(e, "propstat"))) {
    const status = childElements(propstat).find((e) => isDav(e, "status"))?.textContent ?? "";
    if (!/\s2\d\d\s/.test(` ${status} `)) continue;
    for (const prop of childElements(propstat).filter((e) => isDav(e, "prop"))) {
      for (const e of childElements(prop)) {
        if (isDav(e, "resourcetype")) isCollection ||= childElements(e).some((t) => isDav(t, "collection"));
        if (isDav(e, "current-user-principal")) principal = childElements(e).find((h) => isDav(h, "href"))?.textContent?.trim() || principal;
        if (isDav(e, "sync-token")) tokens.sync_token = text(e);
        if (isDav(e, "getetag")) tokens.etag = text(e);
        if (e.namespaceURI === CALENDARSERVER_NS && e.localName === "getctag") tokens.ctag = text(e);
      }
    }
  }
  const href = childElements(response).find((e) => isDav(e, "href"));
  return { isCollection, principal, href: href === undefined ? null : text(href), tokens };
}

/** The user of a Basic `Authorization` (RFC 7617), or null. */
export function basicUser(authorization: string | null): string | null {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? "");
  if (match === null) return null;
  try {
    const decoded = new TextDecoder().decode(Uint8Array.from(atob(match[1]), (ch) => ch.charCodeAt(0)));
    const colon = decoded.indexOf(":");
    return colon > 0 ? decoded.slice(0, colon) : null;
  } catch {
    return null;
  }
}

/**
 * Who owns a registration made through the gateway: the origin's principal (its path, however
 * the href was written), else the Basic user, else anyone the origin lets read it. Prefixed, so
 * it never equals a grant's `sub` of the same tenant.
 */
export function gatewayOwner(facts: CollectionFacts, authorization: string | null, originOrigin: string): string {
  if (facts.principal !== null) {
    try {
      return `principal:${new URL(facts.principal, `${originOrigin}/`).pathname}`;
    } catch {
      // not a URL: the text as written
      return `principal:${facts.principal}`;
    }
  }
  const user = basicUser(authorization);
  return user === null ? "anonymous" : `basic:${user}`;
}
