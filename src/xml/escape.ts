/** Escapes text for XML character data and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

export const PUSH_NS = "https://bitfire.at/webdav-push";
export const XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>';
