import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, bearer, call, createTenant, grant } from "../helpers";

describe("PROPFIND-ready XML", () => {
  it("serves transports with the VAPID public key to anyone", async () => {
    const response = await call("/v1/transports.xml");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/xml/);
    expect(await response.text()).toBe(
      `<?xml version="1.0" encoding="utf-8"?><P:transports xmlns:P="https://bitfire.at/webdav-push"><P:web-push>` +
        `<P:vapid-public-key type="p256ecdsa">${env.VAPID_PUBLIC_KEY}</P:vapid-public-key></P:web-push></P:transports>`,
    );
  });

  it("serves a topic's transports, topic and the tenant's supported triggers to the tenant", async () => {
    const tenant = await createTenant();
    const path = `/v1/topics/${encodeURIComponent("cal/å b")}/properties.xml`;
    expect((await call(path)).status).toBe(401);
    const xml = await (await call(path, { headers: bearer(tenant.notify_token) })).text();
    expect(xml).toContain("<P:topic>cal/å b</P:topic>");
    expect(xml).toContain(
      "<P:supported-triggers><P:content-update><D:depth>1</D:depth></P:content-update><P:property-update><D:depth>0</D:depth></P:property-update></P:supported-triggers>",
    );
    await call(`/v1/admin/tenants/${tenant.id}/triggers`, { method: "PUT", headers: ADMIN, json: { content_update: { depth: "infinity" }, property_update: null } });
    const changed = await (await call(path, { headers: bearer(tenant.notify_token) })).text();
    expect(changed).toContain("<P:supported-triggers><P:content-update><D:depth>infinity</D:depth></P:content-update></P:supported-triggers>");
    const forOtherTopic = await call(path, { headers: bearer(await grant(tenant, { topics: ["elsewhere"] })) });
    expect(forOtherTopic.status).toBe(403);
    const bad = await call(`/v1/admin/tenants/${tenant.id}/triggers`, { method: "PUT", headers: ADMIN, json: { content_update: { depth: 5 }, property_update: null } });
    expect(bad.status).toBe(400);
  });
});
