/**
 * The draft's Push-Dont-Notify header, `1#quoted-registration-url / "*"` (RFC 9110 §5.6.1 lists,
 * §5.6.4 quoted-string), as a tenant relays it from its client's request. Invalid values are
 * ignored, as the draft requires; several header lines are one list (RFC 9110 §5.2).
 */
export function parseDontNotify(lines: string | string[]): string[] | "*" {
  const value = (Array.isArray(lines) ? lines : [lines]).join(",");
  const urls: string[] = [];
  let star = false;
  let elements = 0;
  let i = 0;
  while (i < value.length) {
    const c = value[i];
    if (c === " " || c === "\t" || c === ",") {
      i++;
      continue;
    }
    elements++;
    if (c === '"') {
      let text = "";
      let closed = false;
      for (i++; i < value.length; i++) {
        if (value[i] === "\\" && i + 1 < value.length) text += value[++i];
        else if (value[i] === '"') {
          closed = true;
          i++;
          break;
        } else text += value[i];
      }
      if (closed && /^https?:\/\/\S+$/.test(text)) urls.push(text);
      continue;
    }
    // a bare token: only "*" means something, and only on its own
    const end = value.indexOf(",", i);
    const token = value.slice(i, end === -1 ? value.length : end).trim();
    if (token === "*") star = true;
    i = end === -1 ? value.length : end;
  }
  return star && elements === 1 ? "*" : urls;
}
