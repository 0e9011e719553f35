/**
 * `GET /v1/openapi.json` and `GET /docs`: the API document, read off the app's own routes
 * (src/openapi/document.ts), and the same document as a page. Both public: they describe the
 * API, they hold nothing of any tenant.
 */
import { Hono } from "hono";
import { version } from "../../package.json";
import { readConfig } from "../config";
import { openApiDocument, type ApiDocument, type RouteEntry } from "../openapi/document";
import { operations } from "../openapi/operation";
import { DOCS_CSS, docsPage } from "../ui/docs";
import type { AppEnv } from "../types";

const operation = operations("Documentation");

/** The page and its stylesheet come from here only; nothing else may load, nothing may frame it. */
const PAGE_HEADERS = {
  "Content-Security-Policy": "default-src 'none'; style-src 'self'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
};

/** `routes`: the app's routes, read when asked, so this module need not import the app. */
export function apiDocs(routes: () => readonly RouteEntry[]) {
  const docs = new Hono<AppEnv>();
  // one document per server URL and isolate: the routes do not change while it runs
  const built = new Map<string, ApiDocument>();
  const documentFor = (env: Env, url: string) => {
    const server = readConfig(env).publicBaseUrl ?? new URL(url).origin;
    let document = built.get(server);
    if (document === undefined) {
      document = openApiDocument(routes(), server, version);
      if (built.size < 16) built.set(server, document);
    }
    return document;
  };

  docs.get(
    "/v1/openapi.json",
    operation({ summary: "This API document (OpenAPI 3.1)", responses: { 200: { description: "the document", json: true } } }),
    (c) => c.json(documentFor(c.env, c.req.url), 200, { "Access-Control-Allow-Origin": "*" }),
  );

  docs.get(
    "/docs",
    operation({ summary: "The API document as a page", responses: { 200: { description: "every operation: method, path, parameters, bodies, responses", content: "text/html" } } }),
    (c) => c.html(docsPage(documentFor(c.env, c.req.url)), 200, PAGE_HEADERS),
  );

  docs.get(
    "/docs/docs.css",
    operation({ summary: "The docs page's stylesheet", responses: { 200: { description: "CSS", content: "text/css" } } }),
    (c) => c.body(DOCS_CSS, 200, { ...PAGE_HEADERS, "Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=300" }),
  );
  return docs;
}
