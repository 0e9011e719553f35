/**
 * Namespace-aware XML parsing for request bodies (@xmldom/xmldom). Characters XML 1.0 forbids and
 * document type declarations are refused before parsing, so no entity is ever declared, let alone
 * expanded (XXE, billion laughs).
 */
import { DOMParser, type Document, type Element } from "@xmldom/xmldom";
import { badRequest } from "../errors";

export const DAV_NS = "DAV:";

/**
 * Anything outside XML 1.0 §2.2 `Char` (#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
 * [#x10000-#x10FFFF]): NUL and the other C0 controls, U+FFFE and U+FFFF, and, since the `u` flag
 * reads a lone surrogate as a code point of its own, any surrogate not in a pair.
 */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/**
 * The first character XML 1.0 forbids, as `U+XXXX` and its offset in UTF-8 bytes (the unit a
 * client sent), or null. xmldom parses them all into text nodes unremarked, so we look ourselves.
 */
function forbiddenCharacter(text: string): { character: string; byteOffset: number } | null {
  const match = NOT_XML_CHAR.exec(text);
  if (match === null) return null;
  const character = `U+${match[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
  return { character, byteOffset: new TextEncoder().encode(text.slice(0, match.index)).byteLength };
}

/**
 * A character reference must name a Char too (XML 1.0 §4.1, WFC: Legal Character): `&#0;` would
 * put the NUL back that the raw-text check keeps out, and xmldom expands it unremarked.
 */
function forbiddenReference(text: string): string | null {
  for (const match of text.matchAll(/&#(?:x([0-9a-fA-F]+)|([0-9]+));/g)) {
    const code = match[1] !== undefined ? Number.parseInt(match[1], 16) : Number.parseInt(match[2], 10);
    if (!(code <= 0x10ffff) || NOT_XML_CHAR.test(String.fromCodePoint(code))) return match[0];
  }
  return null;
}

/**
 * XML 1.0 §2.8 puts the XML declaration first, but real servers' bodies arrive with whitespace
 * before it (rustical's own sample) or a UTF-8 byte order mark (an encoding signature, §4.3.3 and
 * Appendix F, not content), which xmldom refuses. Only those go, only before `<?xml` (or a lone
 * leading BOM); nothing else is loosened.
 */
function withoutLeadingSignature(text: string): string {
  const beforeDeclaration = /^[\uFEFF \t\r\n]+(?=<\?xml[ \t\r\n])/.exec(text);
  if (beforeDeclaration !== null) return text.slice(beforeDeclaration[0].length);
  return text.startsWith("\uFEFF") ? text.slice(1) : text;
}

export function parseXml(text: string): Document {
  const reference = forbiddenReference(text);
  if (reference !== null) throw badRequest("invalid_xml", `the body holds the character reference ${reference}, which names a character XML 1.0 does not allow (§4.1)`);
  const forbidden = forbiddenCharacter(text);
  if (forbidden !== null) {
    throw badRequest(
      "invalid_xml",
      `the body holds ${forbidden.character} at byte offset ${forbidden.byteOffset}, a character XML 1.0 does not allow (§2.2 Char)`,
    );
  }
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw badRequest("invalid_xml", "XML with a document type declaration (DTD) or entity declarations is not accepted");
  }
  let doc: Document;
  try {
    doc = new DOMParser({
      onError: (level, message) => {
        if (level !== "warning") throw new Error(message);
      },
    }).parseFromString(withoutLeadingSignature(text), "application/xml");
  } catch (error) {
    throw badRequest("invalid_xml", `the body is not well-formed XML: ${(error as Error).message.split("\n")[0]}`);
  }
  if (doc.documentElement === null) throw badRequest("invalid_xml", "the body holds no XML element");
  return doc;
}

/** Element children of `parent` (no text, comments or processing instructions). */
export function childElements(parent: Element): Element[] {
  const out: Element[] = [];
  for (let node = parent.firstChild; node !== null; node = node.nextSibling) {
    if (node.nodeType === 1) out.push(node as Element);
  }
  return out;
}

/** The first child element with this namespace and local name, whatever its prefix. */
export function child(parent: Element, ns: string, localName: string): Element | null {
  return childElements(parent).find((e) => e.namespaceURI === ns && e.localName === localName) ?? null;
}

export const textOf = (element: Element | null): string | null => (element === null ? null : (element.textContent ?? "").trim());

/** `{namespace}local-name` (Clark notation), as props are compared. */
export const clarkName = (element: Element) => `{${element.namespaceURI ?? ""}}${element.localName}`;
