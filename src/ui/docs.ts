/**
 * `GET /docs`: the API document rendered as one HTML page on the server, so it needs no script,
 * no CDN and no web font (the page's only other asset is its stylesheet, also from the Worker).
 * Every string from the document is escaped: descriptions and schemas are text, never markup.
 */

import type { ApiDocument as Doc, OperationObject as Op } from "../openapi/document";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (text: unknown) => String(text).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);

/** A schema in short: its type and bounds for a parameter, the whole JSON Schema for a body. */
function typeOf(schema: Record<string, unknown>): string {
  const parts: string[] = [];
  if (Array.isArray(schema.enum)) parts.push(schema.enum.map((v) => JSON.stringify(v)).join(" | "));
  else if (schema.type !== undefined) parts.push(String(schema.type));
  else if (Array.isArray(schema.anyOf)) parts.push(schema.anyOf.map((s) => typeOf(s as Record<string, unknown>)).join(" | "));
  if (schema.const !== undefined) parts.push(JSON.stringify(schema.const));
  for (const [key, label] of [["minimum", "≥"], ["maximum", "≤"], ["minLength", "length ≥"], ["maxLength", "length ≤"]] as const) {
    if (schema[key] !== undefined) parts.push(`${label} ${schema[key]}`);
  }
  if (schema.default !== undefined) parts.push(`default ${JSON.stringify(schema.default)}`);
  return parts.join(", ") || "any";
}

const schemaBlock = (schema: unknown) =>
  schema === undefined ? "" : `<pre class="schema">${esc(JSON.stringify(schema, null, 2))}</pre>`;

function contentBlock(content: Record<string, { schema?: unknown }> | undefined): string {
  if (content === undefined) return "";
  return Object.entries(content)
    .map(([type, media]) => `<p class="media"><code>${esc(type)}</code></p>${schemaBlock(media.schema)}`)
    .join("");
}

function securityText(security: Record<string, string[]>[]): string {
  if (security.length === 0) return "none";
  return security.map((way) => (Object.keys(way).length === 0 ? "none" : Object.keys(way).join(" + "))).join(" or ");
}

function operationHtml(method: string, path: string, op: Op): string {
  const parameters = op.parameters ?? [];
  return `<section class="op" id="${esc(op.operationId)}">
<h3><span class="method ${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code></h3>
<p class="summary">${esc(op.summary)}</p>
${op.description ? `<p>${esc(op.description)}</p>` : ""}
<p class="auth">Authorization: ${esc(securityText(op.security))}</p>
${
  parameters.length === 0
    ? ""
    : `<h4>Parameters</h4><table><thead><tr><th>name</th><th>in</th><th>required</th><th>schema</th></tr></thead><tbody>${parameters
        .map((p) => `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? "yes" : "no"}</td><td>${esc(typeOf(p.schema))}</td></tr>`)
        .join("")}</tbody></table>`
}
${
  op.requestBody === undefined
    ? ""
    : `<h4>Request body${op.requestBody.required ? "" : " (optional)"}</h4>${op.requestBody.description ? `<p>${esc(op.requestBody.description)}</p>` : ""}${contentBlock(op.requestBody.content)}`
}
<h4>Responses</h4>
<dl class="responses">${Object.entries(op.responses)
    .map(
      ([status, r]) =>
        `<dt class="s${esc(status[0])}">${esc(status)}</dt><dd><p>${esc(r.description)}</p>${
          r.headers ? `<p class="headers">Headers: ${Object.entries(r.headers).map(([name, h]) => `<code>${esc(name)}</code> (${esc(h.description)})`).join(", ")}</p>` : ""
        }${contentBlock(r.content)}</dd>`,
    )
    .join("")}</dl>
</section>`;
}

export function docsPage(doc: Doc): string {
  const byTag = new Map<string, string[]>();
  const index = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = op.tags[0] ?? "Other";
      byTag.set(tag, [...(byTag.get(tag) ?? []), operationHtml(method, path, op)]);
      index.set(tag, [...(index.get(tag) ?? []), `<li><a href="#${esc(op.operationId)}"><span class="method ${esc(method)}">${esc(method.toUpperCase())}</span> ${esc(path)}</a></li>`]);
    }
  }
  const schemes = Object.entries(doc.components.securitySchemes)
    .map(([name, scheme]) => `<li><code>${esc(name)}</code>: <code>Authorization: Bearer</code> with ${esc(scheme.description ?? name)}</li>`)
    .join("");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.info.title)} API</title>
<link rel="stylesheet" href="/docs/docs.css">
</head>
<body>
<header>
<h1>${esc(doc.info.title)} API <small>${esc(doc.info.version)}</small></h1>
<p>${esc(doc.info.description ?? "")}</p>
<p>Server: <code>${esc(doc.servers[0]?.url ?? "")}</code> · the document: <a href="/v1/openapi.json">/v1/openapi.json</a> (OpenAPI 3.1)</p>
<h2>Authorization</h2>
<ul>${schemes}</ul>
<p>Every JSON error is <code>{"error": {"code", "message"}}</code>:</p>
${schemaBlock(doc.components.schemas.Error)}
</header>
<nav aria-label="Operations">${[...index].map(([tag, items]) => `<h2>${esc(tag)}</h2><ul>${items.join("")}</ul>`).join("")}</nav>
<main>${[...byTag].map(([tag, ops]) => `<h2>${esc(tag)}</h2>${ops.join("\n")}`).join("\n")}</main>
</body>
</html>`;
}

export const DOCS_CSS = `
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 72rem; padding: 0 1rem 4rem; color: #1d1d1f; }
h1 small { font-weight: normal; color: #666; font-size: .6em; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
nav ul { list-style: none; padding: 0; columns: 2 24rem; }
nav li { margin: .15rem 0; } nav a { text-decoration: none; color: inherit; } nav a:hover { text-decoration: underline; }
code, pre { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 13px; }
.op { border: 1px solid #ddd; border-radius: 6px; padding: .3rem 1rem .8rem; margin: 1rem 0; }
.op h3 { margin: .6rem 0 .2rem; } .summary { font-weight: 600; margin: .2rem 0; } .auth { color: #555; }
.method { display: inline-block; min-width: 4.2em; text-align: center; border-radius: 4px; padding: 0 .3em; color: #fff; font-size: 12px; font-weight: 700; }
.get { background: #1f6feb; } .post { background: #1a7f37; } .put { background: #9a6700; } .delete { background: #cf222e; } .patch { background: #8250df; }
table { border-collapse: collapse; } th, td { border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; vertical-align: top; }
pre.schema { background: #f6f8fa; padding: .5rem; border-radius: 4px; overflow: auto; max-height: 24rem; }
dl.responses dt { font-weight: 700; margin-top: .4rem; } dl.responses dd { margin-left: 1.5rem; }
dt.s2 { color: #1a7f37; } dt.s4 { color: #9a6700; } dt.s5 { color: #cf222e; }
.media { margin: .2rem 0; }
`;
