/**
 * The gateway answers the draft's Push Properties for the origin (issue 14): a PROPFIND naming
 * `transports`, `topic` or `supported-triggers` gets them for every collection of the 207 in a
 * 200 propstat, taken out of the 404 propstat the origin, which knows nothing of push, put them
 * in. `resourcetype` tells a collection; the request asks for it too, and the answer drops it
 * again when the client did not ask. A collection's topic is derived from its path at the origin
 * (`gatewayTopic`), so it is the same at any Depth and for every client.
 */
import { DOMParser, XMLSerializer, type Document, type Element } from "@xmldom/xmldom";
import { encodeBase64url } from "../crypto/base64url";
import { PUSH_NS } from "../xml/escape";
import { childElements, DAV_NS } from "../xml/parse";

export const PUSH_PROPERTIES = ["transports", "topic", "supported-triggers"] as const;

export interface PushPropfind {
  /** the push properties named in the request's `{DAV:}prop` */
  asked: string[];
  /** whether the client asked for `{DAV:}resourcetype` itself */
  resourcetypeAsked: boolean;
  /** the body to send the origin: the client's, with `{DAV:}resourcetype` added when missing */
  body: string;
}

function parse(text: string): Document | null {
  try {
    const doc = new DOMParser({ onError: (level) => { if (level !== "warning") throw new Error("not well-formed"); } }).parseFromString(text, "application/xml");
    return doc.documentElement === null ? null : doc;
  } catch {
    return null;
  }
}

/** What a PROPFIND body asks of the push properties; null when none (or not a `prop` PROPFIND). */
export function pushPropfind(body: string): PushPropfind | null {
  if (!body.includes(PUSH_NS)) return null;
  const doc = parse(body);
  const root = doc?.documentElement;
  if (root === null || root === undefined || root.namespaceURI !== DAV_NS || root.localName !== "propfind") return null;
  const prop = childElements(root).find((e) => e.namespaceURI === DAV_NS && e.localName === "prop");
  if (prop === undefined) return null;
  const names = childElements(prop);
  const asked = PUSH_PROPERTIES.filter((name) => names.some((e) => e.namespaceURI === PUSH_NS && e.localName === name));
  if (asked.length === 0) return null;
  const resourcetypeAsked = names.some((e) => e.namespaceURI === DAV_NS && e.localName === "resourcetype");
  if (!resourcetypeAsked) prop.appendChild(doc!.createElementNS(DAV_NS, prop.prefix ? `${prop.prefix}:resourcetype` : "resourcetype"));
  return { asked, resourcetypeAsked, body: resourcetypeAsked ? body : new XMLSerializer().serializeToString(doc!) };
}

/**
 * A collection's topic: 22 base64url characters (128 bits) of HMAC-SHA-256, under the gateway's
 * own key, of its path at the origin, percent-decoded, with one trailing slash. Not guessable
 * from the path without the key, and the same whichever way a client spells the URL.
 */
export async function gatewayTopic(key: CryptoKey, originPath: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(collectionPath(originPath)));
  return encodeBase64url(new Uint8Array(mac)).slice(0, 22);
}

/** A collection's path as its topic is made of it: percent-decoded, one trailing slash. */
export function collectionPath(originPath: string): string {
  let path: string;
  try {
    path = decodeURIComponent(originPath);
  } catch {
    path = originPath;
  }
  return `${path.replace(/\/+$/, "")}/`;
}

export const importTopicKey = (raw: Uint8Array<ArrayBuffer>) => crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);

const isDav = (e: Element, name: string) => e.namespaceURI === DAV_NS && e.localName === name;
const davChild = (e: Element, name: string) => childElements(e).find((c) => isDav(c, name));

/**
 * The 207 with the push properties for each collection: `properties(originPath)` gives the
 * `<P:…>` elements to put in (as XML text, P bound to the push namespace). Answers null when the
 * text is not a multistatus it can read (the caller then passes the origin's answer on as it is).
 */
export async function advertise(xml: string, request: Pick<PushPropfind, "asked" | "resourcetypeAsked">, originOrigin: string, properties: (originPath: string) => Promise<string>): Promise<string | null> {
  const doc = parse(xml);
  const root = doc?.documentElement;
  if (doc === null || root === null || root === undefined || !isDav(root, "multistatus")) return null;
  for (const response of childElements(root).filter((e) => isDav(e, "response"))) {
    const href = davChild(response, "href")?.textContent?.trim();
    const propstats = childElements(response).filter((e) => isDav(e, "propstat"));
    const isCollection = propstats.some((ps) => {
      const type = davChild(ps, "prop") && davChild(davChild(ps, "prop")!, "resourcetype");
      return type !== undefined && childElements(type).some((e) => isDav(e, "collection"));
    });
    for (const ps of propstats) {
      const prop = davChild(ps, "prop");
      if (prop === undefined) continue;
      for (const e of childElements(prop)) {
        const pushProperty = e.namespaceURI === PUSH_NS && (PUSH_PROPERTIES as readonly string[]).includes(e.localName ?? "");
        // the origin's 404 for a push property goes where we answer it; resourcetype when unasked
        if ((pushProperty && isCollection) || (!request.resourcetypeAsked && isDav(e, "resourcetype"))) prop.removeChild(e);
      }
      if (childElements(prop).length === 0) response.removeChild(ps);
    }
    if (!isCollection || href === undefined) continue;
    let originPath: string;
    try {
      originPath = new URL(href, `${originOrigin}/`).pathname;
    } catch {
      continue;
    }
    const wanted = await properties(originPath);
    const fragment = parse(`<D:prop xmlns:D="${DAV_NS}" xmlns:P="${PUSH_NS}">${wanted}</D:prop>`)!.documentElement!;
    const propstat = doc.createElementNS(DAV_NS, response.prefix ? `${response.prefix}:propstat` : "propstat");
    const prop = doc.createElementNS(DAV_NS, response.prefix ? `${response.prefix}:prop` : "prop");
    for (const e of childElements(fragment)) {
      if (request.asked.includes(e.localName ?? "")) prop.appendChild(doc.importNode(e, true));
    }
    const status = doc.createElementNS(DAV_NS, response.prefix ? `${response.prefix}:status` : "status");
    status.appendChild(doc.createTextNode("HTTP/1.1 200 OK"));
    propstat.appendChild(prop);
    propstat.appendChild(status);
    const first = childElements(response).find((e) => isDav(e, "propstat"));
    response.insertBefore(propstat, first ?? davChild(response, "responsedescription") ?? null);
  }
  return new XMLSerializer().serializeToString(doc);
}
