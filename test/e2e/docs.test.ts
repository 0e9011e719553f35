// The API document as a client sees it under `npm start`: valid OpenAPI 3.1 by an independent
// validator (ajv compiles with `new Function`, which workerd refuses, so this runs in Node), and
// /docs rendered in Chromium with every operation, nothing loaded from elsewhere.
import { Validator } from "@seriousme/openapi-schema-validator";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, recordRequests } from "./browser";
import { startDirector, type Director } from "./director";

interface Doc {
  servers: { url: string }[];
  paths: Record<string, Record<string, { operationId: string; summary: string; responses: Record<string, unknown> }>>;
}

let director: Director;
let browser: Browser;

beforeAll(async () => {
  [director, browser] = await Promise.all([startDirector(), launchChromium()]);
});

afterAll(async () => {
  await browser?.close();
  await director?.stop();
});

describe("the API document under npm start", () => {
  it("is valid OpenAPI 3.1, every $ref resolving, served for this origin", async () => {
    const response = await fetch(`${director.url}/v1/openapi.json`);
    expect(response.status).toBe(200);
    const doc = (await response.json()) as Doc;
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    expect(() => validator.resolveRefs()).not.toThrow();
    expect(doc.servers).toEqual([{ url: director.url }]);
  });

  it("shows every operation at /docs in Chromium, loading nothing from another origin", async () => {
    const doc = (await (await fetch(`${director.url}/v1/openapi.json`)).json()) as Doc;
    const page = await browser.newPage();
    const requests = recordRequests(page);
    const errors: string[] = [];
    page.on("console", (message) => message.type() === "error" && errors.push(message.text()));
    await page.goto(`${director.url}/docs`);
    await expect.poll(() => page.title()).toBe("Push Director API");
    let operations = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const section = page.locator(`section[id="${op.operationId}"]`);
        await section.scrollIntoViewIfNeeded();
        expect(await section.locator("h3").innerText()).toBe(`${method.toUpperCase()} ${path}`);
        expect(await section.locator(".summary").innerText()).toBe(op.summary);
        for (const status of Object.keys(op.responses)) expect(await section.locator("dl.responses dt").allInnerTexts()).toContain(status);
        operations++;
      }
    }
    expect(operations).toBeGreaterThan(35);
    // the stylesheet applied: a method badge has its colour
    expect(await page.locator(".method.get").first().evaluate((el) => getComputedStyle(el).backgroundColor)).toBe("rgb(31, 111, 235)");
    // the nav links to each operation
    await page.getByRole("navigation", { name: "Operations" }).getByRole("link", { name: "POST /v1/notify" }).click();
    await expect.poll(() => new URL(page.url()).hash).toBe(`#${doc.paths["/v1/notify"].post.operationId}`);
    expect(errors).toEqual([]);
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(requests.filter((url) => new URL(url).origin !== director.url)).toEqual([]);
    await page.close();
  });
});
