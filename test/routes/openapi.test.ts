import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import type { ApiDocument } from "../../src/openapi/document";
import { call, ORIGIN } from "../helpers";
import { env } from "cloudflare:workers";

describe("GET /v1/openapi.json", () => {
  it("is public JSON naming this origin as the server, without a path", async () => {
    const response = await call("/v1/openapi.json");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
    const doc: ApiDocument = await response.json();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers).toEqual([{ url: ORIGIN }]);
    expect(Object.keys(doc.paths)).toContain("/v1/registrations/{id}");
  });

  it("names PUBLIC_BASE_URL as the server when set", async () => {
    const response = await app.fetch(new Request(`${ORIGIN}/v1/openapi.json`), { ...env, PUBLIC_BASE_URL: "https://push.example.org" } as Env);
    expect(((await response.json()) as ApiDocument).servers).toEqual([{ url: "https://push.example.org" }]);
  });
});

describe("GET /docs", () => {
  it("renders every operation of the document, with its stylesheet from this origin only", async () => {
    const doc: ApiDocument = await (await call("/v1/openapi.json")).json();
    const response = await call("/docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/html/);
    expect(response.headers.get("Content-Security-Policy")).toBe("default-src 'none'; style-src 'self'; frame-ancestors 'none'");
    const html = await response.text();
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        expect(html).toContain(`id="${op.operationId}"`);
        expect(html).toContain(`<span class="method ${method}">${method.toUpperCase()}</span> <code>${path.replace(/&/g, "&amp;")}</code>`);
      }
    }
    expect(html).toContain('<link rel="stylesheet" href="/docs/docs.css">');
    expect(html).not.toMatch(/<script/i);
    expect(html.match(/(src|href)="[^"#]*"/g)!.filter((attr) => !/^(src|href)="\//.test(attr))).toEqual([]);
    const css = await call("/docs/docs.css");
    expect(css.headers.get("Content-Type")).toMatch(/^text\/css/);
    expect(await css.text()).not.toMatch(/url\(|@import|@font-face/);
  });

  it("escapes what it shows", async () => {
    const html = await (await call("/docs")).text();
    // the Error schema's JSON is shown as text
    expect(html).toContain("&quot;error&quot;");
  });
});
