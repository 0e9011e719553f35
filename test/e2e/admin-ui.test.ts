// The operator console (`GET /admin`) in a real browser against `npm start`: Debian's Chromium
// driven by playwright-core, one director and one browser page for the whole file. Every request
// the page makes is recorded and must go to the director; elements are found by role and name.
import { type Browser, type BrowserContext, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "./browser";
import { api, startDirector, type Director } from "./director";

const TIMEOUT_MS = 15_000;
const KEY = "push-director.admin-token";

let director: Director;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const requested: string[] = [];
const authorizations: string[] = [];
const pageErrors: string[] = [];
const cspViolations: string[] = [];
const confirms: string[] = [];

beforeAll(async () => {
  const [started, launched] = await Promise.allSettled([startDirector(), launchChromium()]);
  if (started.status === "fulfilled") director = started.value;
  if (launched.status === "fulfilled") browser = launched.value;
  if (started.status === "rejected") throw started.reason;
  if (launched.status === "rejected") throw launched.reason;
  context = await browser.newContext();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: director.url });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on("request", (request) => {
    requested.push(request.url());
    const authorization = request.headers()["authorization"];
    if (authorization !== undefined) authorizations.push(authorization);
  });
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  page.on("dialog", (dialog) => {
    confirms.push(dialog.message());
    void dialog.accept();
  });
});

afterAll(async () => {
  await browser?.close();
  await director?.stop();
});

const poll = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: TIMEOUT_MS, interval: 50 });
const visible = (locator: Locator) => locator.waitFor({ state: "visible" });
const hidden = (locator: Locator) => locator.waitFor({ state: "hidden" });
const storage = () => page.evaluate(() => ({ session: { ...sessionStorage }, local: localStorage.length, cookie: document.cookie }));

const tokenField = () => page.getByLabel("Admin token");
const signIn = () => page.getByRole("button", { name: "Sign in" });
const nameField = () => page.getByRole("textbox", { name: "Tenant name" });
const tenants = () => page.getByRole("region", { name: "Tenants", exact: true });
const tenantRows = () => tenants().getByRole("row").filter({ has: page.getByRole("cell") });
const rowOf = (id: string) => tenantRows().filter({ hasText: id });
const secrets = () => page.getByRole("dialog");

/** Creates a tenant through the form; answers what the dialog showed, the dialog still open. */
async function createInPage(name: string) {
  await nameField().fill(name);
  const created = page.waitForResponse((r) => r.url().endsWith("/v1/admin/tenants") && r.request().method() === "POST");
  await page.getByRole("button", { name: "Create tenant" }).click();
  const body = await (await created).json();
  await visible(secrets());
  return {
    id: body.id as string,
    notifyToken: (await secrets().getByLabel("Notify token", { exact: true }).textContent()) ?? "",
    grantSecret: (await secrets().getByLabel("Grant secret", { exact: true }).textContent()) ?? "",
  };
}

describe("the operator console at /admin", () => {
  it("signed out, shows only the admin token field and Sign in", async () => {
    await page.goto(`${director.url}/admin`);
    await visible(tokenField());
    expect(await tokenField().getAttribute("type")).toBe("password");
    await visible(signIn());
    expect(await page.locator("input:visible, textarea:visible, select:visible").count()).toBe(1);
    expect(await nameField().count()).toBe(0);
    expect(await page.getByRole("button", { name: "Sign out" }).count()).toBe(0);
  });

  it("refuses a wrong token, stores nothing and keeps it out of the URL", async () => {
    await tokenField().fill("not-the-admin-token");
    await signIn().click();
    await visible(page.getByText("token refused"));
    expect(await storage()).toEqual({ session: {}, local: 0, cookie: "" });
    expect(page.url()).toBe(`${director.url}/admin`);
    expect(await nameField().count()).toBe(0);
  });

  it("signs in with the admin token, kept in sessionStorage only and sent only as a bearer token", async () => {
    await tokenField().fill(director.adminToken);
    await signIn().click();
    await visible(nameField());
    expect(await storage()).toEqual({ session: { [KEY]: director.adminToken }, local: 0, cookie: "" });
    expect(await context.cookies()).toEqual([]);
    expect(page.url()).toBe(`${director.url}/admin`);
    expect(authorizations).toContain(`Bearer ${director.adminToken}`);
    await visible(page.getByRole("button", { name: "Sign out" }));
    expect(await tokenField().isVisible()).toBe(false);
    // the create form comes first: no other field named for a tenant or a name before it
    expect(await page.getByRole("textbox", { name: /tenant|name/i }).count()).toBe(1);
    expect(await page.getByPlaceholder(/tenant|name/i).count()).toBe(0);
  });

  it("stays signed in across a reload", async () => {
    await page.reload();
    await visible(nameField());
    expect(await tokenField().isVisible()).toBe(false);
    expect((await storage()).session[KEY]).toBe(director.adminToken);
  });

  let tenant: { id: string; name: string; notifyToken: string; grantSecret: string };

  it("creates a tenant: its secrets once in a modal dialog, removed on Done; the tenant at the top", async () => {
    const name = `console-${Date.now()}`;
    const shown = await createInPage(name);
    tenant = { name, ...shown };
    expect(tenant.notifyToken).toMatch(new RegExp(`^pdn_${tenant.id}_`));
    expect(tenant.grantSecret.length).toBeGreaterThan(20);
    expect(await page.evaluate(() => document.querySelector("dialog")!.matches(":modal"))).toBe(true);
    expect((await api(director, "/v1/stats", tenant.notifyToken)).status).toBe(200);

    expect(await secrets().getByRole("button", { name: /copy/i }).count()).toBe(2);
    await secrets().getByRole("button", { name: "Copy notify token" }).click();
    await poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(tenant.notifyToken);

    await secrets().getByRole("button", { name: "Done" }).click();
    await hidden(secrets());
    const html = await page.content();
    expect(html).not.toContain(tenant.notifyToken);
    expect(html).not.toContain(tenant.grantSecret);

    const top = tenantRows().first();
    await poll(() => top.textContent()).toContain(tenant.id);
    expect(await top.getByRole("cell").first().textContent()).toBe(name);
    expect(await top.getByRole("cell", { name: "enabled", exact: true }).count()).toBe(1);
    expect(await nameField().inputValue()).toBe("");
  });

  it("shows the message of a 400: an empty name, a name too long", async () => {
    await nameField().fill("");
    await page.getByRole("button", { name: "Create tenant" }).click();
    await visible(page.getByText("name: must not be empty"));

    const long = "x".repeat(201);
    const refused = await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: long } });
    expect(refused.status).toBe(400);
    await nameField().fill(long);
    await page.getByRole("button", { name: "Create tenant" }).click();
    await visible(page.getByText(refused.body.error.message));
    expect(await secrets().isVisible()).toBe(false);
  });

  it("disables and enables a tenant, redrawing its row from the answer", async () => {
    const row = rowOf(tenant.id);
    await row.getByRole("button", { name: "Disable", exact: true }).click();
    await visible(row.getByRole("cell", { name: "disabled", exact: true }));
    await visible(row.getByRole("button", { name: "Enable", exact: true }));
    expect((await api(director, `/v1/admin/tenants/${tenant.id}`, director.adminToken)).body.disabled).toBe(true);
    expect((await api(director, "/v1/stats", tenant.notifyToken)).status).toBe(403);

    await row.getByRole("button", { name: "Enable", exact: true }).click();
    await visible(row.getByRole("cell", { name: "enabled", exact: true }));
    await visible(row.getByRole("button", { name: "Disable", exact: true }));
    expect((await api(director, `/v1/admin/tenants/${tenant.id}`, director.adminToken)).body.disabled).toBe(false);
    expect((await api(director, "/v1/stats", tenant.notifyToken)).status).toBe(200);
  });

  it("rotates a tenant's secrets after a confirm, showing the new ones; Escape removes them", async () => {
    const before = confirms.length;
    await rowOf(tenant.id).getByRole("button", { name: "Rotate secrets" }).click();
    await visible(secrets());
    expect(confirms.length).toBe(before + 1);
    expect(confirms.at(-1)).toContain(tenant.name);
    const notifyToken = (await secrets().getByLabel("Notify token", { exact: true }).textContent()) ?? "";
    const grantSecret = (await secrets().getByLabel("Grant secret", { exact: true }).textContent()) ?? "";
    expect(notifyToken).toMatch(new RegExp(`^pdn_${tenant.id}_`));
    expect(notifyToken).not.toBe(tenant.notifyToken);
    expect(grantSecret).not.toBe(tenant.grantSecret);
    expect((await api(director, "/v1/stats", tenant.notifyToken)).status).toBe(401);
    expect((await api(director, "/v1/stats", notifyToken)).status).toBe(200);

    await page.keyboard.press("Escape");
    await hidden(secrets());
    const html = await page.content();
    expect(html).not.toContain(notifyToken);
    expect(html).not.toContain(grantSecret);
    tenant = { ...tenant, notifyToken, grantSecret };
  });

  it("shows a hostile tenant name as text", async () => {
    const name = "<img src=x onerror=window.__xss=1>";
    const shown = await createInPage(name);
    await visible(secrets().getByText(name));
    await secrets().getByRole("button", { name: "Done" }).click();
    await hidden(secrets());
    const row = rowOf(shown.id);
    expect(await row.getByRole("cell").first().textContent()).toBe(name);
    await row.getByRole("button", { name: "Details" }).click();
    await visible(page.getByRole("region", { name: `Details of “${name}”` }));
    expect(await page.locator("img").count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(requested.some((url) => new URL(url).pathname.endsWith("/x"))).toBe(false);
  });

  it("shows a tenant's details: counts and supported triggers", async () => {
    const expected = (await api(director, `/v1/admin/tenants/${tenant.id}`, director.adminToken)).body;
    await rowOf(tenant.id).getByRole("button", { name: "Details" }).click();
    const details = page.getByRole("region", { name: `Details of “${tenant.name}”` });
    await visible(details);
    const text = (await details.textContent()) ?? "";
    expect(text).toContain(`Subscriptions${expected.counts.subscriptions}`);
    expect(text).toContain(`Live registrations${expected.counts.registrations}`);
    expect(text).toContain(`Content updates${expected.supported_triggers.content_update === null ? "not supported" : `depth ${expected.supported_triggers.content_update.depth}`}`);
    expect(text).toContain("Property updates");
    await details.getByRole("button", { name: "Close details" }).click();
    await hidden(details);
  });

  it("lists tenants newest first, with Load more for the next page", async () => {
    const made: string[] = [];
    for (let i = 0; i < 21; i++) {
      const created = await api(director, "/v1/admin/tenants", director.adminToken, { json: { name: `bulk-${i}` } });
      expect(created.status).toBe(201);
      made.push(created.body.id);
    }
    const all = (await api(director, "/v1/admin/tenants?order=newest&limit=100", director.adminToken)).body.tenants as { id: string }[];
    expect(all.length).toBeGreaterThan(20);
    await page.reload();
    await visible(page.getByRole("button", { name: "Load more" }));
    await poll(() => tenantRows().count()).toBe(20);
    expect(made.every((id) => all.some((t) => t.id === id))).toBe(true);
    expect(await tenantRows().first().textContent()).toContain(all[0].id);
    await page.getByRole("button", { name: "Load more" }).click();
    await poll(() => tenantRows().count()).toBe(Math.min(all.length, 40));
    const ids = await tenantRows().evaluateAll((rows) => rows.map((row) => row.querySelector("td:nth-child(2)")!.textContent));
    expect(ids).toEqual(all.slice(0, 40).map((t) => t.id));
  });

  it("shows the dead letters, newest first", async () => {
    const { dead_letters } = (await api(director, "/v1/admin/dead-letters", director.adminToken)).body as { dead_letters: { id: number }[] };
    const section = page.getByRole("region", { name: "Dead letters" });
    await visible(section.getByRole("heading", { name: "Dead letters" }));
    if (dead_letters.length === 0) await visible(section.getByText("No dead letters."));
    else await poll(() => section.getByRole("row").count()).toBe(1 + Math.min(dead_letters.length, 20));
    await section.getByRole("button", { name: "Refresh dead letters" }).click();
    await visible(section.getByRole("button", { name: "Refresh dead letters" }));
  });

  it("shows the VAPID keys and rotates them after a confirm", async () => {
    const vapid = (await api(director, "/v1/admin/vapid", director.adminToken)).body;
    expect(vapid.public_key).toBe(director.vars.VAPID_PUBLIC_KEY);
    const section = page.getByRole("region", { name: "VAPID keys" });
    await visible(section.getByText(vapid.public_key));

    const before = confirms.length;
    const rotated = page.waitForResponse((r) => r.url().endsWith("/v1/admin/vapid/rotate"));
    await section.getByRole("button", { name: "Rotate VAPID key" }).click();
    const answer = await rotated;
    expect(answer.status()).toBe(202);
    expect(confirms.length).toBe(before + 1);
    const { pending_public_key } = await answer.json();
    // pending until every subscription has been told, then current: the page shows it either way
    await visible(section.getByText(pending_public_key));
  });

  it("signs out with a message when the token stops working", async () => {
    await page.evaluate((key) => sessionStorage.setItem(key, "a-token-no-longer-valid"), KEY);
    await page.reload();
    await visible(tokenField());
    await visible(page.getByText(/Signed out: the director refused the admin token/));
    expect(await storage()).toEqual({ session: {}, local: 0, cookie: "" });
    expect(await nameField().count()).toBe(0);
  });

  it("signs out with Sign out, clearing sessionStorage", async () => {
    await tokenField().fill(director.adminToken);
    await signIn().click();
    await visible(nameField());
    await visible(tenantRows().first());
    await page.getByRole("button", { name: "Sign out" }).click();
    await visible(tokenField());
    expect(await storage()).toEqual({ session: {}, local: 0, cookie: "" });
    expect(await nameField().count()).toBe(0);
    expect(await page.locator("#tenant-rows tr").count()).toBe(0);
    await page.reload();
    await visible(tokenField());
  });

  it("made every request to the director, never put the token in a URL, and broke no CSP rule", () => {
    expect(requested.length).toBeGreaterThan(10);
    const origin = new URL(director.url).origin;
    expect(origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(requested.filter((url) => new URL(url).origin !== origin)).toEqual([]);
    expect(requested.filter((url) => url.includes(director.adminToken) || url.includes(encodeURIComponent(director.adminToken)))).toEqual([]);
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
