// Validates XML against the draft's RELAX NG schema (../shared/spec/xml/webdav-push.rng) with
// libxml2 (the engine behind xmllint) compiled to WebAssembly. The schema defines patterns but no
// start, so a start naming the wanted pattern is added, as validate-samples.rng does by include.
import { readFileSync } from "node:fs";
import path from "node:path";
import { RelaxNGValidator, XmlDocument } from "libxml2-wasm";
import { specXml } from "./shared";

/** ../shared/spec/xml beside the checkout: the draft's samples and schema, never copied here. */
export const SPEC_XML = specXml();

const schemaText = readFileSync(path.join(SPEC_XML, "webdav-push.rng"), "utf8");

/** `pattern` is a define of webdav-push.rng, e.g. "push-message" or "prop-transports". */
export function validate(xml: string, pattern: string): string | null {
  const grammar = schemaText.replace(/(<grammar[^>]*>)/, `$1<start><ref name="${pattern}"/></start>`);
  const schema = XmlDocument.fromString(grammar);
  const validator = RelaxNGValidator.fromDoc(schema);
  const doc = XmlDocument.fromString(xml);
  try {
    validator.validate(doc);
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    doc.dispose();
    validator.dispose();
    schema.dispose();
  }
}
