import { describe, expect, it } from "vitest";
import { call } from "../helpers";

const CSP = "default-src 'self'; frame-ancestors 'none'";

const assets = [
  { path: "/admin", type: /^text\/html\b/ },
  { path: "/admin/app.js", type: /^text\/javascript\b/ },
  { path: "/admin/app.css", type: /^text\/css\b/ },
];

/** What would make the browser fetch from another origin: absolute URLs, protocol-relative src/href/url(). */
const OFF_ORIGIN = [/\bhttps?:\/\//i, /\b(?:src|href|action)\s*=\s*["']?\s*\/\//i, /url\(\s*["']?\s*\/\//i, /@import/i];

describe("GET /admin (the operator console)", () => {
  for (const asset of assets) {
    it(`serves ${asset.path} with its type, the CSP and no-sniff`, async () => {
      const response = await call(asset.path);
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Type")).toMatch(asset.type);
      expect(response.headers.get("Content-Security-Policy")).toBe(CSP);
      expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(response.headers.get("Referrer-Policy")).toBe("no-referrer");
      const body = await response.text();
      expect(body.length).toBeGreaterThan(100);
      for (const pattern of OFF_ORIGIN) expect(body).not.toMatch(pattern);
    });
  }

  it("never lets the page be stored", async () => {
    const response = await call("/admin");
    expect(response.headers.get("Cache-Control")).toBe("no-store");
  });

  it("references only /admin/app.js and /admin/app.css, with nothing inline", async () => {
    const html = await (await call("/admin")).text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.map((m) => /\bsrc="([^"]*)"/.exec(m[1])?.[1])).toEqual(["/admin/app.js"]);
    expect(scripts.every((m) => m[2].trim() === "")).toBe(true);
    const links = [...html.matchAll(/<link\b[^>]*\bhref="([^"]*)"/gi)].map((m) => m[1]);
    expect(links).toEqual(["/admin/app.css"]);
    const references = [...html.matchAll(/\b(?:src|href|action|formaction|poster|data)\s*=\s*"([^"]*)"/gi)].map((m) => m[1]);
    expect(references.sort()).toEqual(["/admin/app.css", "/admin/app.js"]);
    expect(html).not.toMatch(/<style\b/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
    expect(html).not.toMatch(/javascript:/i);
    // no form that the browser could submit as a GET, with the token in the URL
    for (const form of html.matchAll(/<form\b[^>]*>/gi)) expect(form[0]).toMatch(/method="post"/);
  });

  it("has the controls the console is driven by", async () => {
    const html = await (await call("/admin")).text();
    expect(html).toMatch(/<label for="admin-token">Admin token<\/label>/);
    expect(html).toMatch(/<input id="admin-token"[^>]*type="password"/);
    expect(html).toMatch(/<label for="tenant-name">Tenant name<\/label>/);
    expect(html).toMatch(/<dialog\b/);
  });

  it("keeps the token in sessionStorage only, and writes data as text", async () => {
    const js = await (await call("/admin/app.js")).text();
    expect(js).toContain("sessionStorage");
    expect(js).not.toMatch(/localStorage|document\.cookie|innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    expect(js).not.toContain("${");
  });

  it("serves the page at /admin/ too, and nothing else under /admin", async () => {
    const slash = await call("/admin/");
    expect([200, 301, 302, 308]).toContain(slash.status);
    if (slash.status === 200) expect(await slash.text()).toContain('src="/admin/app.js"');
    else expect(new URL(slash.headers.get("Location")!, "https://director.test").pathname).toBe("/admin");

    const missing = await call("/admin/nope");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: "not_found", message: "no route for GET /admin/nope" } });
  });
});
