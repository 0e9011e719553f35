/**
 * What a write through the gateway changes (issue 14, item 6), decided without I/O: the
 * collections it concerns, each with how far the written resource is from it (the draft's
 * trigger depth: 0 the collection itself, 1 a member, infinity deeper), and the change a watched
 * one is told; and what the poller tells of tokens it found moved (item 7).
 */
import { DOMParser, type Element } from "@xmldom/xmldom";
import type { Depth } from "../depth";
import type { Change } from "../hub/change";
import { childElements, DAV_NS } from "../xml/parse";
import type { CollectionTokens } from "../store/gateways";
import { collectionPath } from "./advertise";

/** Methods that change what they name when they succeed (RFC 4918 §9, RFC 3253, RFC 5689; POST: the origin's own). */
export const WRITE_METHODS = new Set(["PUT", "DELETE", "MKCOL", "MKCALENDAR", "MOVE", "COPY", "PROPPATCH", "POST"]);

/**
 * Each collection a written resource concerns, as `collectionPath` writes paths: the resource
 * itself (a collection, or not watched anyway) at 0, its parent at 1, every ancestor above at
 * infinity. Several written paths (MOVE's two ends): the nearest depth wins.
 */
export function concernedCollections(writtenPaths: string[]): Map<string, Depth> {
  const out = new Map<string, Depth>();
  const keep = (path: string, depth: Depth) => {
    const known = out.get(path);
    if (known === undefined || depth < known) out.set(path, depth);
  };
  for (const written of writtenPaths) {
    const self = collectionPath(written);
    keep(self, 0);
    const segments = self.split("/").filter((s) => s !== "");
    for (let up = 1; up <= segments.length; up++) {
      keep(`/${segments.slice(0, segments.length - up).join("/")}${segments.length - up > 0 ? "/" : ""}`, up === 1 ? 1 : 2);
    }
  }
  return out;
}

/** The property names (Clark notation) a PROPPATCH sets or removes; null when its body cannot be read. */
export function proppatchNames(body: string): string[] | null {
  let root: Element | null;
  try {
    root = new DOMParser({ onError: (level) => { if (level !== "warning") throw new Error("not well-formed"); } }).parseFromString(body, "application/xml").documentElement;
  } catch {
    return null;
  }
  if (root === null || root.namespaceURI !== DAV_NS || root.localName !== "propertyupdate") return null;
  const names = new Set<string>();
  for (const action of childElements(root)) {
    for (const prop of childElements(action).filter((e) => e.namespaceURI === DAV_NS && e.localName === "prop")) {
      for (const e of childElements(prop)) names.add(`{${e.namespaceURI ?? ""}}${e.localName}`);
    }
  }
  return [...names];
}

/** The change a watched collection is told after a write at `depth` from it. */
export function writeChange(
  topic: string,
  depth: Depth,
  write: { proppatch: string[] | null | undefined; syncToken: string | null; dontNotify: string[] | "*" },
): Change {
  const property = write.proppatch !== undefined;
  return {
    topic,
    contentUpdate: property ? null : { syncToken: write.syncToken, depth },
    propertyUpdate: property ? { props: write.proppatch ?? null, depth } : null,
    urgency: "normal",
    ttl: null,
    dontNotify: write.dontNotify,
  };
}

/**
 * What the poller tells of a collection whose tokens it found changed (issue 14, item 7), or
 * null. A new sync-token (RFC 6578) means its members changed: content-update at depth 1, with
 * the token. Only the ctag or etag moved: its own properties changed (Radicale's PROPPATCH moves
 * them, not its sync-token), property-update at depth 0. A collection with no sync-token at all
 * has only its ctag to show a member's change: content-update at depth 1, without a token.
 */
export function pollChange(topic: string, was: CollectionTokens, now: CollectionTokens): Change | null {
  const change = (contentUpdate: Change["contentUpdate"], propertyUpdate: Change["propertyUpdate"]): Change => ({
    topic,
    contentUpdate,
    propertyUpdate,
    urgency: "normal",
    ttl: null,
    dontNotify: [],
  });
  if (now.sync_token !== null && now.sync_token !== was.sync_token) return change({ syncToken: now.sync_token, depth: 1 }, null);
  if (now.ctag === was.ctag && now.etag === was.etag) return null;
  if (now.sync_token === null && was.sync_token === null) return change({ syncToken: null, depth: 1 }, null);
  return change(null, { props: null, depth: 0 });
}
