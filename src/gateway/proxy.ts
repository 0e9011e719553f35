/**
 * The push gateway's proxy (issue 14): a request to `/dav/<tenant id>/<path>` goes to the
 * tenant's origin `<origin><path>` with its method, query, headers (credentials included) and
 * body; the answer comes back as the origin gave it, redirects passed on, never followed. URLs
 * in either direction are moved from one path prefix to the other (src/gateway/rewrite.ts):
 * request headers `Destination` and `If` and the hrefs of WebDAV request bodies to the origin;
 * `Location`, `Content-Location` and the hrefs of WebDAV answers, streamed, to the gateway.
 */
import { concatBytes } from "../bytes";
import { ApiError } from "../errors";
import { advertise, pushPropfind, type PushPropfind } from "./advertise";
import { collectionFacts, WHO_AND_WHAT, type CollectionFacts } from "./register";
import { rewriteDestination, rewriteHrefs, rewriteHrefsStream, rewriteIf, rewriteLocation, type Prefixes } from "./rewrite";

/** RFC 9110 §7.6.1: hop-by-hop fields are the connection's, not the message's. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host"]);

/**
 * Methods whose bodies are WebDAV protocol XML (RFC 4918, RFC 4791, RFC 3253 REPORT, RFC 3744
 * ACL, RFC 5689 extended MKCOL): their hrefs name resources and are rewritten. A PUT's or GET's
 * XML is a resource's content and passes untouched.
 */
const PROTOCOL_METHODS = new Set(["PROPFIND", "PROPPATCH", "REPORT", "MKCOL", "MKCALENDAR", "LOCK", "SEARCH", "ACL"]);

/** What a WebDAV request body may be when it has to be read to be rewritten (issue 14: 1 MiB). */
export const MAX_XML_REQUEST_BYTES = 1024 * 1024;

export const isXml = (type: string | null) => type !== null && /^(application|text)\/([\w.+-]+\+)?xml\s*(;|$)/i.test(type);

export interface ProxyTarget {
  prefixes: Prefixes;
  /** the origin URL the request goes to (origin prefix + rest of the path + query) */
  url: string;
  timeoutMs: number;
  /**
   * The push properties (`<P:transports>…`, `<P:topic>…`, `<P:supported-triggers>…`) of the
   * collection at this origin path; absent when the gateway does not advertise push (its tenant
   * is disabled).
   */
  pushProperties?: (originPath: string) => Promise<string>;
}

/**
 * How much of a 207 the gateway reads whole to put the push properties in (the other answers
 * stream): PROPFINDs naming them ask for few properties of a collection and its members.
 */
export const MAX_ADVERTISED_ANSWER_BYTES = 16 * 1024 * 1024;

/** A body's text, or null past `max` bytes (read no further). */
export async function textUpTo(body: ReadableStream<Uint8Array>, declaredLength: string | null, max: number): Promise<string | null> {
  if (Number(declaredLength ?? "0") > max) {
    await body.cancel();
    return null;
  }
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return null;
    }
    parts.push(value);
  }
  return new TextDecoder().decode(concatBytes(parts));
}

const tooLarge = () => new ApiError(413, "body_too_large", `WebDAV request bodies (XML) through the gateway are limited to ${MAX_XML_REQUEST_BYTES} bytes`);

/**
 * One request to the origin, redirects not followed. The timeout covers the wait for the answer's
 * head; a long body may take longer to stream. 504 origin_timeout, 502 origin_unreachable.
 */
export async function fetchOrigin(url: string, init: { method: string; headers: Headers; body?: BodyInit | null }, timeoutMs: number): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await fetch(url, { ...init, redirect: "manual", signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted) throw new ApiError(504, "origin_timeout", `the origin did not answer within ${timeoutMs} ms`);
    throw new ApiError(502, "origin_unreachable", `the origin could not be reached: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

/** PROPFIND Depth 0 of `url` at the origin for these properties, with these credentials or none. */
export function propfindZero(url: string, body: string, authorization: string | null, timeoutMs: number): Promise<Response> {
  const headers = new Headers({ Depth: "0", "Content-Type": 'application/xml; charset="utf-8"', "Accept-Encoding": "identity" });
  if (authorization !== null) headers.set("Authorization", authorization);
  return fetchOrigin(url, { method: "PROPFIND", headers, body }, timeoutMs);
}

/**
 * What a 207 to a Depth 0 PROPFIND says of the resource asked, or null when it is no multistatus
 * the gateway can read (over MAX_XML_REQUEST_BYTES, not well-formed, no response).
 */
export async function factsOf(answer: Response): Promise<CollectionFacts | null> {
  if (answer.body === null) return null;
  const text = await textUpTo(answer.body, answer.headers.get("Content-Length"), MAX_XML_REQUEST_BYTES);
  return text === null ? null : collectionFacts(text);
}

/**
 * PROPFIND Depth 0 for WHO_AND_WHAT (resourcetype, principal, tokens): before a push-register,
 * its DELETE, and after a write.
 */
export const askWhoAndWhat = (url: string, authorization: string | null, timeoutMs: number) => propfindZero(url, WHO_AND_WHAT, authorization, timeoutMs);

/** Sends the request on to the origin and answers what it answered, rewritten for the gateway. */
export async function proxy(request: Request, target: ProxyTarget): Promise<Response> {
  const { prefixes } = target;
  const method = request.method.toUpperCase();
  const headers = new Headers();
  for (const [name, value] of request.headers) {
    if (HOP_BY_HOP.has(name) || name.startsWith("cf-") || name === "x-real-ip") continue;
    headers.set(name, value);
  }
  // the answer's hrefs are rewritten as text: ask for it uncompressed
  headers.set("Accept-Encoding", "identity");
  const destination = request.headers.get("Destination");
  if (destination !== null) headers.set("Destination", rewriteDestination(destination, prefixes));
  const condition = request.headers.get("If");
  if (condition !== null) headers.set("If", rewriteIf(condition, prefixes));

  let body: BodyInit | null = request.body;
  let push: PushPropfind | null = null;
  if (request.body !== null && PROTOCOL_METHODS.has(method) && isXml(request.headers.get("Content-Type"))) {
    const text = await textUpTo(request.body, request.headers.get("Content-Length"), MAX_XML_REQUEST_BYTES);
    if (text === null) throw tooLarge();
    push = method === "PROPFIND" && target.pushProperties !== undefined ? pushPropfind(text) : null;
    body = rewriteHrefs(push?.body ?? text, "toOrigin", prefixes);
    headers.delete("Content-Length");
  }

  const answer = await fetchOrigin(target.url, { method, headers, body }, target.timeoutMs);

  const out = new Headers(answer.headers);
  for (const name of ["Location", "Content-Location"]) {
    const value = answer.headers.get(name);
    if (value !== null) out.set(name, rewriteLocation(value, prefixes));
  }
  if (method === "OPTIONS") {
    const dav = answer.headers.get("DAV");
    // the draft (Service Detection): a server that supports WebDAV-Push names it in DAV
    if (dav !== null && !/(^|,)\s*webdav-push\s*(,|$)/i.test(dav)) out.set("DAV", `${dav}, webdav-push`);
  }
  if (push !== null && answer.status === 207 && answer.body !== null && isXml(answer.headers.get("Content-Type"))) {
    const text = await textUpTo(answer.body, answer.headers.get("Content-Length"), MAX_ADVERTISED_ANSWER_BYTES);
    if (text === null) throw new ApiError(502, "answer_too_large", `a PROPFIND naming push properties is answered through the gateway up to ${MAX_ADVERTISED_ANSWER_BYTES} bytes`);
    const advertised = (await advertise(text, push, prefixes.originOrigin, target.pushProperties!)) ?? text;
    out.delete("Content-Length");
    return new Response(rewriteHrefs(advertised, "toGateway", prefixes), { status: 207, statusText: answer.statusText, headers: out });
  }
  let responseBody: ReadableStream<Uint8Array> | null = answer.body;
  if (responseBody !== null && (answer.status === 207 || PROTOCOL_METHODS.has(method)) && isXml(answer.headers.get("Content-Type"))) {
    responseBody = responseBody.pipeThrough(rewriteHrefsStream("toGateway", prefixes));
    out.delete("Content-Length");
  }
  return new Response(method === "HEAD" ? null : responseBody, { status: answer.status, statusText: answer.statusText, headers: out });
}
