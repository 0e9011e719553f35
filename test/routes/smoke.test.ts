import { describe, expect, it } from "vitest";
import { call, createTenant } from "../helpers";

describe("smoke", () => {
  it("creates a tenant", async () => {
    const t = await createTenant();
    expect(t.id).toMatch(/^[0-9a-f]{24}$/);
    const r = await call("/.well-known/webdav-push");
    expect(r.status).toBe(200);
  });
});
