import { DOMParser, type Element } from "@xmldom/xmldom";
import { keyringOf } from "../../src/crypto/sealed";
import { openAuth } from "../../src/store/subscriptions";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, bearer, call, createTenant, grant, userAgentKeys, type TestTenant } from "../helpers";

const SAMPLE = env.TEST_SPEC_SAMPLES["sample-push-register.xml"];
const PUSH = "https://bitfire.at/webdav-push";

function post(token: string, body: string, headers: Record<string, string> = { "Push-Topic": "O7M1nQ7cKkKTKsoS_j6Z3w" }, path = "/v1/register") {
  return call(path, { method: "POST", headers: { ...bearer(token), "Content-Type": 'application/xml; charset="utf-8"', ...headers }, body });
}

/** The precondition a 403 names: the element inside {DAV:}error. */
async function preconditionOf(response: Response): Promise<string> {
  expect(response.status).toBe(403);
  expect(response.headers.get("Content-Type")).toMatch(/^application\/xml/);
  const doc = new DOMParser().parseFromString(await response.text(), "application/xml");
  const root = doc.documentElement!;
  expect([root.namespaceURI, root.localName]).toEqual(["DAV:", "error"]);
  const condition = [...Array.from(root.childNodes)].find((n) => n.nodeType === 1 && (n as Element).namespaceURI === PUSH) as Element;
  return condition.localName ?? "";
}

async function registration(tenant: TestTenant, location: string) {
  return (await call(new URL(location).pathname, { headers: bearer(tenant.notify_token) })).json<Record<string, any>>();
}

function registerXml(subscription: string, trigger = "<trigger><content-update><D:depth>1</D:depth></content-update></trigger>") {
  return `<?xml version="1.0" encoding="utf-8"?><push-register xmlns="${PUSH}" xmlns:D="DAV:"><subscription>${subscription}</subscription>${trigger}</push-register>`;
}

async function webPush(endpoint = `https://push.example.net/${crypto.randomUUID()}`, extra = "<content-encoding>aes128gcm</content-encoding>") {
  const keys = await userAgentKeys();
  return `<web-push-subscription><push-resource>${endpoint}</push-resource>${extra}<subscription-public-key type="p256dh">${keys.p256dh}</subscription-public-key><auth-secret>${keys.auth}</auth-secret></web-push-subscription>`;
}

describe("POST /v1/register (push-register)", () => {
  it("registers the draft's sample: 204, absolute Location, IMF-fixdate Expires, triggers fitted", async () => {
    const tenant = await createTenant();
    const response = await post(tenant.notify_token, SAMPLE);
    expect(response.status).toBe(204);
    const location = response.headers.get("Location")!;
    expect(location).toMatch(/^https:\/\/director\.test\/v1\/registrations\/[A-Za-z0-9_-]{22}$/);
    expect(response.headers.get("Expires")).toMatch(/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
    // the sample's expiry lies in the past: taken as no wish, so the maximum (7 days)
    expect(Date.parse(response.headers.get("Expires")!)).toBeGreaterThan(Date.now() + 6.9 * 86_400_000);
    expect(await registration(tenant, location)).toMatchObject({
      topic: "O7M1nQ7cKkKTKsoS_j6Z3w",
      transport: "web_push",
      push_resource: "https://up.example.net/yohd4yai5Phiz1wi",
      // infinity downgraded to the supported depth 1 (the draft's Example 2)
      trigger: { content_update: { depth: 1 }, property_update: { depth: 0, props: ["{DAV:}displayname", "{DAV:}owner"] } },
    });
    const stored = (await env.DB.prepare("SELECT p256dh, auth, content_encoding FROM subscriptions WHERE identifier = ? AND tenant_id = ?")
      .bind("https://up.example.net/yohd4yai5Phiz1wi", tenant.id)
      .first<{ p256dh: string; auth: string; content_encoding: string }>())!;
    expect(stored).toMatchObject({
      p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
      content_encoding: "aes128gcm",
    });
    // the auth secret is sealed at rest, and opens to what the client sent
    expect(stored.auth).not.toContain("BTBZMqHH6r4Tts7J_aSIgg");
    expect(await openAuth(await keyringOf(env), tenant.id, "https://up.example.net/yohd4yai5Phiz1wi", stored.auth)).toBe("BTBZMqHH6r4Tts7J_aSIgg");
  });

  it("updates the registration when the same push resource registers the topic again", async () => {
    const tenant = await createTenant();
    const first = await post(tenant.notify_token, SAMPLE);
    const second = await post(tenant.notify_token, SAMPLE.replace("<D:depth>infinity</D:depth>", "<D:depth>0</D:depth>"));
    expect(second.status).toBe(204);
    expect(second.headers.get("Location")).toBe(first.headers.get("Location"));
    expect((await registration(tenant, second.headers.get("Location")!)).trigger.content_update).toEqual({ depth: 0 });
  });

  it("accepts older bodies without trigger or content-encoding, any prefixes, and ?topic=", async () => {
    const tenant = await createTenant();
    const keys = await userAgentKeys();
    const body = `<wp:push-register xmlns:wp="${PUSH}"><wp:subscription><wp:web-push-subscription>
      <wp:push-resource>https://push.example.net/old-davx5</wp:push-resource>
      <wp:subscription-public-key type="p256dh">${keys.p256dh}</wp:subscription-public-key>
      <wp:auth-secret>${keys.auth}</wp:auth-secret>
    </wp:web-push-subscription></wp:subscription></wp:push-register>`;
    const response = await post(tenant.notify_token, body, {}, "/v1/register?topic=addressbook");
    expect(response.status).toBe(204);
    expect((await registration(tenant, response.headers.get("Location")!)).trigger).toEqual({ content_update: { depth: 1 }, property_update: null });
  });

  it("takes a client grant for the topic and answers push-not-available for other topics", async () => {
    const tenant = await createTenant();
    const token = await grant(tenant, { topics: ["cal"] });
    expect((await post(token, registerXml(await webPush()), { "Push-Topic": "cal" })).status).toBe(204);
    expect(await preconditionOf(await post(token, registerXml(await webPush()), { "Push-Topic": "other" }))).toBe("push-not-available");
    const bob = await grant(tenant, { topics: ["cal"] }, { sub: "bob" });
    const shared = await webPush("https://push.example.net/shared");
    expect((await post(token, registerXml(shared), { "Push-Topic": "cal" })).status).toBe(204);
    expect(await preconditionOf(await post(bob, registerXml(shared), { "Push-Topic": "cal" }))).toBe("push-not-available");
    // on another topic too: a push resource belongs to its user, and a refusal writes nothing
    const bobBoth = await grant(tenant, { topics: ["cal", "cal-2"] }, { sub: "bob" });
    const keysBefore = await env.DB.prepare("SELECT auth, updated_at FROM subscriptions WHERE identifier = ?").bind("https://push.example.net/shared").first();
    expect(await preconditionOf(await post(bobBoth, registerXml(await webPush("https://push.example.net/shared")), { "Push-Topic": "cal-2" }))).toBe(
      "push-not-available",
    );
    expect(await env.DB.prepare("SELECT auth, updated_at FROM subscriptions WHERE identifier = ?").bind("https://push.example.net/shared").first()).toEqual(keysBefore);
    const onCal2 = await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE tenant_id = ? AND topic = 'cal-2'").bind(tenant.id).first<{ n: number }>();
    expect(onCal2!.n).toBe(0);
  });

  it("answers 403 invalid-subscription for a subscription it cannot use", async () => {
    const tenant = await createTenant();
    const keys = await userAgentKeys();
    const bodies = [
      registerXml(""),
      registerXml((await webPush()) + (await webPush())),
      registerXml("<other-subscription/>"),
      registerXml(await webPush("http://push.example.net/plain")),
      registerXml(await webPush("https://localhost/x")),
      registerXml(await webPush(undefined, "<content-encoding>aesgcm</content-encoding>")),
      registerXml(`<web-push-subscription><push-resource>https://push.example.net/x</push-resource><auth-secret>${keys.auth}</auth-secret></web-push-subscription>`),
      registerXml(
        `<web-push-subscription><push-resource>https://push.example.net/x</push-resource><subscription-public-key type="p256dh">AAAA</subscription-public-key><auth-secret>${keys.auth}</auth-secret></web-push-subscription>`,
      ),
      registerXml(
        `<web-push-subscription><push-resource>https://push.example.net/x</push-resource><subscription-public-key type="x25519">${keys.p256dh}</subscription-public-key><auth-secret>${keys.auth}</auth-secret></web-push-subscription>`,
      ),
    ];
    for (const body of bodies) expect(await preconditionOf(await post(tenant.notify_token, body)), body).toBe("invalid-subscription");
  });

  it("answers 403 no-supported-trigger when every requested trigger is unsupported", async () => {
    const tenant = await createTenant();
    await call(`/v1/admin/tenants/${tenant.id}/triggers`, { method: "PUT", headers: ADMIN, json: { content_update: { depth: 1 }, property_update: null } });
    const propertyOnly = "<trigger><property-update><D:depth>0</D:depth></property-update></trigger>";
    expect(await preconditionOf(await post(tenant.notify_token, registerXml(await webPush(), propertyOnly)))).toBe("no-supported-trigger");
    expect(await preconditionOf(await post(tenant.notify_token, registerXml(await webPush(), "<trigger/>")))).toBe("no-supported-trigger");
    const badDepth = "<trigger><content-update><D:depth>2</D:depth></content-update></trigger>";
    expect(await preconditionOf(await post(tenant.notify_token, registerXml(await webPush(), badDepth)))).toBe("no-supported-trigger");
    // the property trigger is ignored, the content trigger kept (the draft's Example 2)
    const both = await post(tenant.notify_token, SAMPLE);
    expect((await registration(tenant, both.headers.get("Location")!)).trigger).toEqual({ content_update: { depth: 1 }, property_update: null });
  });

  it("refuses hostile and malformed XML with 400, never expanding an entity", async () => {
    const tenant = await createTenant();
    const laughs =
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
      '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><push-register xmlns="https://bitfire.at/webdav-push">&lol3;</push-register>';
    const xxe = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><push-register xmlns="${PUSH}"><expires>&xxe;</expires></push-register>`;
    const cases: [string, string][] = [
      [laughs, "invalid_xml"],
      [xxe, "invalid_xml"],
      [`<push-register xmlns="${PUSH}"><expires>&undefined;</expires></push-register>`, "invalid_xml"],
      ["<push-register", "invalid_xml"],
      ["not xml at all", "invalid_xml"],
      ["", "invalid_xml"],
      [`<push-register xmlns="urn:other"/>`, "invalid_request"],
      [`<propfind xmlns="DAV:"/>`, "invalid_request"],
    ];
    for (const [body, code] of cases) {
      const response = await post(tenant.notify_token, body);
      const text = await response.text();
      expect(response.status, body).toBe(400);
      expect(JSON.parse(text).error.code, text).toBe(code);
    }
    const json = await call("/v1/register", { method: "POST", headers: { ...bearer(tenant.notify_token), "Push-Topic": "t" }, json: {} });
    expect(json.status).toBe(415);
    expect((await post(tenant.notify_token, SAMPLE, {})).status).toBe(400);
    expect((await call("/v1/register", { method: "POST", headers: { "Push-Topic": "t", "Content-Type": "application/xml" }, body: SAMPLE })).status).toBe(401);
  });

  it("strips whitespace and a UTF-8 byte order mark before <?xml, and nothing else", async () => {
    const tenant = await createTenant();
    const body = async () => registerXml(await webPush());
    const bom = new Uint8Array([0xef, 0xbb, 0xbf]);
    const bytes = (prefix: Uint8Array, text: string) => {
      const encoded = new TextEncoder().encode(text);
      const out = new Uint8Array(prefix.length + encoded.length);
      out.set(prefix);
      out.set(encoded, prefix.length);
      return out;
    };
    const accepted: [string, BodyInit][] = [
      ["newline and indentation (rustical)", `\n            ${await body()}`],
      ["tabs and CRLF", `\t\r\n${await body()}`],
      ["a BOM as bytes", bytes(bom, await body())],
      ["a BOM as bytes, then whitespace", bytes(bom, `\n  ${await body()}`)],
      ["whitespace, then a BOM", `\n\uFEFF${await body()}`],
      ["a BOM before a body without declaration", `\uFEFF<push-register xmlns="${PUSH}"><subscription>${await webPush()}</subscription></push-register>`],
    ];
    for (const [what, payload] of accepted) {
      const response = await call("/v1/register", {
        method: "POST",
        headers: { ...bearer(tenant.notify_token), "Content-Type": "application/xml", "Push-Topic": "cal" },
        body: payload,
      });
      expect(response.status, `${what}: ${await response.clone().text()}`).toBe(204);
    }
    const refused: [string, string, string][] = [
      ["text before the declaration", `x${await body()}`, "invalid_xml"],
      ["a comment before the declaration", `<!-- hi -->${await body()}`, "invalid_xml"],
      ["a non-breaking space before the declaration", `\u00A0${await body()}`, "invalid_xml"],
      ["a DTD after a BOM", `\uFEFF<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><push-register xmlns="${PUSH}"/>`, "invalid_xml"],
      ["another root after whitespace", `\n <?xml version="1.0"?><propfind xmlns="DAV:"/>`, "invalid_request"],
    ];
    const before = await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>();
    for (const [what, payload, code] of refused) {
      const response = await post(tenant.notify_token, payload, { "Push-Topic": "cal" });
      expect(response.status, what).toBe(400);
      expect((await response.json<{ error: { code: string } }>()).error.code, what).toBe(code);
    }
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>()).toEqual(before);
  });

  it("stays 403 invalid-subscription without keys: push-register has no keyless UnifiedPush, and writes nothing", async () => {
    const tenant = await createTenant();
    const keyless = registerXml("<web-push-subscription><push-resource>https://up.example.net/keyless</push-resource></web-push-subscription>");
    expect(await preconditionOf(await post(tenant.notify_token, keyless))).toBe("invalid-subscription");
    const rows = await env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>();
    expect(rows!.n).toBe(0);
  });

  it("takes an expires already past as no wish and a readable one as asked; an unreadable one is 400", async () => {
    const tenant = await createTenant();
    const withExpires = async (expires: string) =>
      registerXml(await webPush()).replace("</push-register>", `<expires>${expires}</expires></push-register>`);
    const past = await post(tenant.notify_token, await withExpires("Wed, 20 Dec 2023 10:03:31 GMT"));
    expect(past.status).toBe(204);
    expect(Math.abs(Date.parse(past.headers.get("Expires")!) - (Date.now() + 7 * 86_400_000))).toBeLessThan(5000);
    const wanted = new Date(Math.floor(Date.now() / 1000 + 4 * 86_400) * 1000).toUTCString();
    const asked = await post(tenant.notify_token, await withExpires(wanted));
    expect(asked.headers.get("Expires")).toBe(wanted);
    const unreadable = await post(tenant.notify_token, await withExpires("soon"));
    expect(unreadable.status).toBe(400);
    expect((await unreadable.json<{ error: { code: string } }>()).error.code).toBe("invalid_request");
  });
});
