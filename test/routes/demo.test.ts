import { describe, expect, it } from "vitest";
import { call } from "../helpers";

describe("GET /demo", () => {
  it("serves a page that connects to /v1/ws with the grant as a subprotocol", async () => {
    const response = await call("/demo");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/html/);
    expect(response.headers.get("Content-Security-Policy")).toContain("connect-src 'self'");
    const html = await response.text();
    expect(html).toContain('new WebSocket(url, ["webdav-push", "bearer." + $("grant").value.trim()])');
    expect(html).toContain('url.searchParams.set("since", lastSeq)');
  });
});
