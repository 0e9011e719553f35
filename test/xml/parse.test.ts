// parseXml refuses what XML 1.0 does not allow before xmldom sees it: characters outside §2.2
// Char, and document type declarations.
import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors";
import { parseXml } from "../../src/xml/parse";

const PUSH = "https://bitfire.at/webdav-push";
const wrap = (text: string) => `<push-register xmlns="${PUSH}"><expires>${text}</expires></push-register>`;

/** The ApiError parseXml throws for `xml`. */
function refusal(xml: string): ApiError {
  try {
    parseXml(xml);
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error("parseXml accepted it");
}

describe("parseXml: XML 1.0 characters (§2.2)", () => {
  const prefix = `<push-register xmlns="${PUSH}"><expires>`;
  it.each([
    ["NUL", "\u0000", "U+0000"],
    ["SOH", "\u0001", "U+0001"],
    ["unit separator", "\u001f", "U+001F"],
    ["U+FFFE", "\ufffe", "U+FFFE"],
    ["U+FFFF", "\uffff", "U+FFFF"],
    ["a lone high surrogate", "\ud83d", "U+D83D"],
    ["a lone low surrogate", "\ude00", "U+DE00"],
  ])("refuses %s with 400 invalid_xml, naming it and its byte offset", (_, character, name) => {
    const error = refusal(wrap(`ab${character}cd`));
    expect(error.status).toBe(400);
    expect(error.code).toBe("invalid_xml");
    expect(error.message).toContain(name);
    expect(error.message).toContain(`byte offset ${prefix.length + 2}`);
  });

  it("counts the offset in UTF-8 bytes of what precedes the character", () => {
    // "é" is 2 bytes, "😀" 4
    expect(refusal(wrap("é😀\u0000")).message).toContain(`byte offset ${prefix.length + 6}`);
    expect(refusal("\u0000<a/>").message).toContain("U+0000 at byte offset 0");
  });

  it.each(["&#0;", "&#x1;", "&#x1F;", "&#xFFFE;", "&#65535;", "&#xD800;", "&#x110000;", "&#99999999999;"])(
    "refuses the character reference %s (§4.1 Legal Character)",
    (reference) => {
      const error = refusal(wrap(`a${reference}b`));
      expect(error.code).toBe("invalid_xml");
      expect(error.message).toContain(reference);
    },
  );

  it("expands character references to allowed characters", () => {
    expect(parseXml(wrap("&#9;&#x41;&#x1F600;&#xFFFD;")).documentElement!.textContent).toBe("\tA😀\ufffd");
  });

  it("refuses a surrogate pair written backwards", () => {
    expect(refusal(wrap("\ude00\ud83d")).message).toContain("U+DE00");
  });

  it("accepts tab, LF, CR, the edges of Char, and characters beyond the BMP", () => {
    for (const text of ["\t", "\n", "\r\n", " ", "\ud7ff", "\ue000", "\ufffd", "😀", "\u{10ffff}", "ü€"]) {
      const doc = parseXml(wrap(`1${text}2`));
      expect(doc.documentElement!.textContent, JSON.stringify(text)).toBe(`1${text}2`.replace("\r\n", "\n"));
    }
  });
});

describe("parseXml: document type declarations", () => {
  it("refuses a DTD and entity declarations, and still refuses malformed XML", () => {
    expect(refusal(`<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>`).code).toBe("invalid_xml");
    expect(refusal(`<r><!ENTITY x "y"></r>`).code).toBe("invalid_xml");
    expect(refusal("<r>").code).toBe("invalid_xml");
    expect(refusal("").code).toBe("invalid_xml");
  });
});
