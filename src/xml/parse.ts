/**
 * Namespace-aware XML parsing for request bodies (@xmldom/xmldom). Document type declarations are
 * refused before parsing, so no entity is ever declared, let alone expanded (XXE, billion laughs).
 */
import { DOMParser, type Document, type Element } from "@xmldom/xmldom";
import { badRequest } from "../errors";

export const DAV_NS = "DAV:";

export function parseXml(text: string): Document {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw badRequest("invalid_xml", "XML with a document type declaration (DTD) or entity declarations is not accepted");
  }
  let doc: Document;
  try {
    doc = new DOMParser({
      onError: (level, message) => {
        if (level !== "warning") throw new Error(message);
      },
    }).parseFromString(text, "application/xml");
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
