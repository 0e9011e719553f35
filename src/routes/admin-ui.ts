/** The operator's console at `/admin`: a page, its script and its style, all from the Worker. */
import { Hono } from "hono";
import { operations } from "../openapi/operation";
import type { AppEnv } from "../types";
import { ADMIN_HTML } from "../ui/admin/page";
import { ADMIN_JS } from "../ui/admin/script";
import { ADMIN_CSS } from "../ui/admin/style";

/** Nothing inline and nothing from elsewhere: the script and style are the two files below. */
export const ADMIN_UI_CSP = "default-src 'self'; frame-ancestors 'none'";

const headers = (contentType: string, cacheControl: string) => ({
  "Content-Type": contentType,
  "Content-Security-Policy": ADMIN_UI_CSP,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": cacheControl,
});

export const adminUi = new Hono<AppEnv>();

const operation = operations("Operator");

// `/admin/`, typed by hand: to the one address of the page (src/app.ts mounts this at `/admin`)
adminUi.get("*", async (c, next) => {
  const url = new URL(c.req.url);
  if (url.pathname !== "/admin/") return next();
  return c.redirect(`/admin${url.search}`, 308);
});

adminUi.get("/", operation({ summary: "The operator's console (sign in with ADMIN_TOKEN)", responses: { 200: { description: "the page", content: "text/html" } } }), (c) => c.body(ADMIN_HTML, 200, headers("text/html; charset=utf-8", "no-store")));
adminUi.get("/app.js", operation({ summary: "The console's script", responses: { 200: { description: "JavaScript", content: "text/javascript" } } }), (c) => c.body(ADMIN_JS, 200, headers("text/javascript; charset=utf-8", "no-cache")));
adminUi.get("/app.css", operation({ summary: "The console's stylesheet", responses: { 200: { description: "CSS", content: "text/css" } } }), (c) => c.body(ADMIN_CSS, 200, headers("text/css; charset=utf-8", "no-cache")));
