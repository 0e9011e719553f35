/**
 * URL rewriting for the WebDAV gateway: a client talks to `<gatewayOrigin><gatewayPath><path>`,
 * the tenant's server answers at `<originOrigin><originPath><path>`. Only the path prefix is
 * swapped, on the raw text as written: percent-encoding is never decoded and re-encoded (clients
 * match hrefs against the URLs they sent, and `%2F` is not `/`), so `%2F`, `%c3%a9` and `&amp;`
 * survive untouched. The form is kept too: an absolute URL stays one, a path stays a path (RFC 4918
 * §8.3: every href of a Multi-Status uses one format; relative ones resolve against the
 * Request-URI, which the gateway maps the same way, so they need no rewriting).
 */
import { concatBytes } from "../bytes";

/** The two sides of a gateway: absolute origins and path prefixes, each prefix ending in "/". */
export interface Prefixes {
  gatewayOrigin: string; // e.g. "https://director.example"
  gatewayPath: string; // e.g. "/dav/0123456789abcdef01234567/"
  originOrigin: string; // e.g. "https://dav.example.org" (scheme://host[:port], no path)
  originPath: string; // e.g. "/base/" or "/"
}

export type Direction = "toOrigin" | "toGateway";

/** Leading white space, the value, trailing white space (XML's S: an href may be indented). */
const PADDED = /^([ \t\r\n]*)([\s\S]*?)([ \t\r\n]*)$/;
/** A "." or ".." segment, percent-encoded or not (RFC 3986 §6.2.2.2 decodes %2E before §5.2.4). */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/**
 * One URL or path moved from one side to the other, or returned as is when it is not under the
 * source prefix. A relative reference without a leading "/" stays valid untouched (§8.3); a network-path reference
 * ("//host/…"), another host or scheme, `mailto:` principals stay untouched too. A path with a
 * dot segment after the prefix is left alone as well: mapped, it could resolve outside the target
 * prefix, so a rewritten value is always under it (the caller decides what to do with the rest).
 */
function swap(value: string, fromOrigin: string, fromPath: string, toOrigin: string, toPath: string): string {
  const [, lead, core, trail] = PADDED.exec(value)!;
  let origin: string;
  let rest: string;
  if (core.startsWith("/") && !core.startsWith("//")) {
    origin = "";
    rest = core;
  } else if (core.slice(0, fromOrigin.length).toLowerCase() === fromOrigin.toLowerCase()) {
    // scheme and host are case-insensitive (RFC 3986 §6.2.2.1), the path is not; after
    // "https://host.evil" or "https://host:8443" comes no "/", which no prefix matches below
    origin = toOrigin;
    rest = core.slice(fromOrigin.length);
  } else return value;
  const cut = rest.search(/[?#]/);
  const path = cut < 0 ? rest : rest.slice(0, cut);
  let mapped: string;
  if (path.startsWith(fromPath)) {
    const below = path.slice(fromPath.length);
    if (below.split("/").some((segment) => DOT_SEGMENT.test(segment))) return value;
    mapped = toPath + below;
  } else if (path === fromPath.slice(0, -1)) {
    // the collection itself without its slash: "/dav/<id>" ↔ "/base" (an empty path is "/" when alone)
    mapped = toPath.slice(0, -1) || (origin ? "" : "/");
  } else return value;
  return lead + origin + mapped + rest.slice(path.length) + trail;
}

/** A URL or path as the client wrote it (gateway side), as the tenant's server must see it. */
export function toOrigin(value: string, p: Prefixes): string {
  return swap(value, p.gatewayOrigin, p.gatewayPath, p.originOrigin, p.originPath);
}

/** A URL or path as the tenant's server wrote it, as the client must see it. */
export function toGateway(value: string, p: Prefixes): string {
  return swap(value, p.originOrigin, p.originPath, p.gatewayOrigin, p.gatewayPath);
}

/** `Destination` of COPY/MOVE (RFC 4918 §10.3: a Simple-ref, absolute URI or absolute path). */
export function rewriteDestination(value: string, p: Prefixes): string {
  return toOrigin(value, p);
}

/** `Location` and `Content-Location` of an answer. */
export function rewriteLocation(value: string, p: Prefixes): string {
  return toGateway(value, p);
}

/**
 * `If` (RFC 4918 §10.4): `1*No-tag-list | 1*Tagged-list`, a Tagged-list being a Resource-Tag
 * `<Simple-ref>` followed by lists `( [Not] <state-token> | [entity-tag] … )`. Only the
 * Resource-Tags, the `<…>` outside parentheses, name resources; a `<…>` inside a list is a state
 * token (a lock token such as `urn:uuid:…`, or `DAV:no-lock`), opaque to us. Entity tags are
 * quoted strings that may hold `(`, `)`, `<` or `>`, so quotes are skipped whole.
 */
export function rewriteIf(value: string, p: Prefixes): string {
  let out = "";
  let depth = 0;
  let i = 0;
  while (i < value.length) {
    const c = value[i];
    let end = i + 1;
    if (c === '"') {
      const close = value.indexOf('"', i + 1);
      end = close < 0 ? value.length : close + 1;
    } else if (c === "<") {
      const close = value.indexOf(">", i + 1);
      if (close < 0) return out + value.slice(i);
      const inner = value.slice(i + 1, close);
      out += `<${depth === 0 ? toOrigin(inner, p) : inner}>`;
      i = close + 1;
      continue;
    } else if (c === "(") depth++;
    else if (c === ")") depth = Math.max(0, depth - 1);
    out += value.slice(i, end);
    i = end;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// {DAV:}href in XML bodies (RFC 4918 §14.7), streamed.
//
// A byte-level tokenizer: every byte of XML markup is ASCII and every byte of a multi-byte UTF-8
// character is ≥ 0x80, so a character split across chunks never looks like markup and bytes are
// passed on exactly as received. Only the text of a `{DAV:}href` is decoded, rewritten and, if
// changed, encoded again. What is held between chunks: the token being read (a tag or `<!…>`
// declaration is kept whole; comments, CDATA sections and PIs are passed on as they come, less the
// bytes that could start their terminator) and the text of an open href. So output follows input
// chunk by chunk, well before the end of each {DAV:}response of a 207 Multi-Status (§13), and a
// 20 MB REPORT answer never sits in memory whole.

const MAX_TAG = 64 * 1024; // a "<" followed by more than this without ">" is taken as text
const MAX_HREF = 64 * 1024; // an href longer than this is passed on unchanged
const MAX_DEPTH = 256; // deeper elements are not tracked (an href there is passed on unchanged)
const [LT, GT, BANG, QUESTION, SLASH, DQ, SQ] = [..."<>!?/\"'"].map((c) => c.charCodeAt(0));
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
/** Openers of the tokens read until a terminator, with their terminator. */
const UNTIL: [Uint8Array, Uint8Array][] = [
  [ascii("<!--"), ascii("-->")],
  [ascii("<![CDATA["), ascii("]]>")],
  [ascii("<?"), ascii("?>")],
];
/** An attribute with its value: matched in order, so a quoted value is never read as attributes. */
const ATTRIBUTE = /([^\s=/<>"']+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
const encoder = new TextEncoder();
const loose = new TextDecoder();
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Where `needle` starts in bytes[from, to), or -1. */
function indexOf(bytes: Uint8Array, needle: Uint8Array, from: number, to: number): number {
  for (let i = from; i <= to - needle.length; i++) {
    let j = 0;
    while (j < needle.length && bytes[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/** An open element: its qualified name and the namespaces it declares (null: none). */
type Frame = { name: string; ns: Map<string, string> | null };

class HrefRewriter {
  private buf = new Uint8Array(4096); // unread bytes are buf[start, end), starting at a token boundary
  private start = 0;
  private end = 0;
  private out: Uint8Array[] = [];
  private frames: Frame[] = [];
  private until: Uint8Array | null = null; // inside a comment, CDATA or PI: its terminator…
  private from = 0; // …and where in the unread bytes it may start
  private inTag = false; // inside a tag or declaration: how far it was scanned, open quote
  private tagScanned = 0;
  private quote = 0;
  /** An open {DAV:}href: the index of its frame and its content so far. */
  private href: { frame: number; parts: Uint8Array[]; size: number; textOnly: boolean } | null = null;

  constructor(private readonly rewrite: (text: string) => string) {}

  push(chunk: Uint8Array): Uint8Array | null {
    this.append(chunk);
    this.read();
    return this.take();
  }

  /** The end of input: whatever is still held (an unclosed tag, href, comment) goes out as is. */
  finish(): Uint8Array | null {
    if (this.href) this.out.push(...this.href.parts);
    this.href = null;
    if (this.end > this.start) this.out.push(this.buf.slice(this.start, this.end));
    this.start = this.end = 0;
    return this.take();
  }

  private append(chunk: Uint8Array) {
    const live = this.end - this.start;
    if (this.end + chunk.length > this.buf.length) {
      const target = live + chunk.length > this.buf.length ? new Uint8Array(Math.max(2 * this.buf.length, live + chunk.length)) : this.buf;
      target.set(this.buf.subarray(this.start, this.end)); // set() copies overlapping ranges correctly
      this.buf = target;
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  private take(): Uint8Array | null {
    if (this.out.length === 0) return null;
    const all = concatBytes(this.out);
    this.out = [];
    return all;
  }

  /** Bytes read, to the output or, inside an href, to its content (anything but text spoils it). */
  private emit(bytes: Uint8Array, text: boolean) {
    const href = this.href;
    if (href === null) return void this.out.push(bytes);
    href.parts.push(bytes);
    href.size += bytes.length;
    href.textOnly &&= text;
    if (href.size > MAX_HREF) {
      this.out.push(...href.parts);
      this.href = null;
    }
  }

  /** Reads every complete token, and what can already go out of an incomplete one. */
  private read() {
    const b = this.buf;
    while (this.start < this.end) {
      const s = this.start;
      const e = this.end;
      if (this.until) {
        const found = indexOf(b, this.until, s + this.from, e);
        if (found >= 0) {
          this.start = found + this.until.length;
          this.until = null;
          this.emit(b.slice(s, this.start), false);
          continue;
        }
        // keep only what could be the start of the terminator (or of the opener still to skip)
        const cut = Math.max(s, e - (this.until.length - 1));
        if (cut > s) this.emit(b.slice(s, cut), false);
        this.from = Math.max(0, s + this.from - cut);
        this.start = cut;
        return;
      }
      if (this.inTag) {
        const stop = Math.min(e, s + MAX_TAG); // the same limit whatever the chunks
        let i = s + this.tagScanned;
        for (; i < stop; i++) {
          const c = b[i];
          if (this.quote) {
            if (c === this.quote) this.quote = 0;
          } else if (c === DQ || c === SQ) this.quote = c;
          else if (c === GT) break;
        }
        if (i < stop) {
          this.inTag = false;
          this.start = i + 1;
          this.markup(b.slice(s, i + 1));
          continue;
        }
        this.tagScanned = i - s;
        if (this.tagScanned < MAX_TAG) return;
        this.inTag = false; // malformed: let the "<" be text and read on after it
        this.start = s + 1;
        this.emit(b.slice(s, s + 1), true);
        continue;
      }
      // text up to the next "<"
      const lt = b.subarray(s, e).indexOf(LT);
      if (lt !== 0) {
        this.start = lt < 0 ? e : s + lt;
        this.emit(b.slice(s, this.start), true);
        continue;
      }
      if (e - s < 2) return; // what follows "<" decides
      const next = b[s + 1];
      if (next === BANG || next === QUESTION) {
        // the opener as far as it has arrived: "<!-" may become "<!--"
        const known = UNTIL.find(([opener]) => opener.subarray(0, e - s).every((c, i) => b[s + i] === c));
        if (known && e - s < known[0].length) return;
        if (known) {
          this.until = known[1];
          this.from = known[0].length;
          continue;
        }
      }
      if (next === BANG || next === SLASH || next === 0x3a || next === 0x5f || next >= 0x80 || /[A-Za-z]/.test(String.fromCharCode(next))) {
        this.inTag = true;
        this.tagScanned = 1;
        this.quote = 0;
        continue;
      }
      this.start = s + 1; // a stray "<" (malformed): text
      this.emit(b.slice(s, s + 1), true);
    }
  }

  /** A whole tag or declaration: namespaces are tracked, `{DAV:}href` starts and ends noticed. */
  private markup(raw: Uint8Array) {
    const tag = loose.decode(raw);
    if (tag.startsWith("</")) {
      const name = tag.slice(2, -1).trim();
      const at = this.frames.findLastIndex((frame) => frame.name === name); // unmatched: ignored
      if (at >= 0) {
        this.frames.length = at;
        if (this.href && at <= this.href.frame) this.closeHref();
      }
      return this.emit(raw, false);
    }
    this.emit(raw, false);
    if (tag.startsWith("<!")) return; // DOCTYPE or another declaration
    const name = /^<([^\s/>]+)/.exec(tag)![1];
    let ns: Map<string, string> | null = null;
    for (const [, attribute, dq, sq] of tag.slice(name.length + 1).matchAll(ATTRIBUTE)) {
      if (attribute === "xmlns" || attribute.startsWith("xmlns:")) (ns ??= new Map()).set(attribute.slice(6), dq ?? sq);
    }
    const colon = name.indexOf(":");
    const prefix = colon < 0 ? "" : name.slice(0, colon);
    // an empty element opens no scope; nor does one too deep, so a hostile `<a><a>…` holds no memory
    if (tag.endsWith("/>") || this.frames.length >= MAX_DEPTH) return;
    this.frames.push({ name, ns });
    // RFC 4918 §14.7; the prefix is whatever the document bound to "DAV:" (none for Radicale)
    if (!this.href && name.slice(colon + 1) === "href" && (ns?.get(prefix) ?? this.namespace(prefix)) === "DAV:") {
      this.href = { frame: this.frames.length - 1, parts: [], size: 0, textOnly: true };
    }
  }

  /** The namespace a prefix ("" for the default) is bound to by the open elements, or "". */
  private namespace(prefix: string): string {
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const uri = this.frames[i].ns?.get(prefix);
      if (uri !== undefined) return uri;
    }
    return "";
  }

  /** The href's text rewritten, if it is text only and valid UTF-8; as received otherwise. */
  private closeHref() {
    const { parts, textOnly } = this.href!;
    this.href = null;
    if (parts.length === 0) return;
    const raw = concatBytes(parts);
    if (textOnly) {
      let text: string | null = null;
      try {
        text = strict.decode(raw);
      } catch {
        // not UTF-8: passed on as received
      }
      const rewritten = text === null ? null : this.rewrite(text);
      if (rewritten !== null && rewritten !== text) return void this.out.push(encoder.encode(rewritten));
    }
    this.out.push(raw);
  }
}

function rewriterFor(direction: Direction, p: Prefixes): (text: string) => string {
  return direction === "toOrigin" ? (text) => toOrigin(text, p) : (text) => toGateway(text, p);
}

/** Rewrites the text of every `{DAV:}href` of a UTF-8 XML body as it streams; all else is kept. */
export function rewriteHrefsStream(direction: Direction, p: Prefixes): TransformStream<Uint8Array, Uint8Array> {
  const rewriter = new HrefRewriter(rewriterFor(direction, p));
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      const out = rewriter.push(chunk);
      if (out) controller.enqueue(out);
    },
    flush(controller) {
      const out = rewriter.finish();
      if (out) controller.enqueue(out);
    },
  });
}

/** The same for a whole body held as a string (a request body, e.g. a calendar-multiget REPORT). */
export function rewriteHrefs(xml: string, direction: Direction, p: Prefixes): string {
  const rewriter = new HrefRewriter(rewriterFor(direction, p));
  const parts = [rewriter.push(encoder.encode(xml)), rewriter.finish()].filter((part) => part !== null);
  return new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(concatBytes(parts));
}
