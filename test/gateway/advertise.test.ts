import { describe, expect, it } from "vitest";
import { advertise, gatewayTopic, importTopicKey, pushPropfind } from "../../src/gateway/advertise";

const P = "https://bitfire.at/webdav-push";

/** The definition, computed here on its own: HMAC-SHA-256 of the path, base64url, 22 characters. */
async function expectedTopic(raw: Uint8Array<ArrayBuffer>, path: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(path)));
  return btoa(String.fromCharCode(...mac)).replace(/\+/g, "-").replace(/\//g, "_").slice(0, 22);
}

describe("pushPropfind", () => {
  it("finds the push properties asked and adds resourcetype to what the origin is asked", () => {
    const body = `<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:p="${P}"><d:prop><d:displayname/><p:topic/><p:transports/></d:prop></d:propfind>`;
    const found = pushPropfind(body)!;
    expect(found.asked).toEqual(["transports", "topic"]);
    expect(found.resourcetypeAsked).toBe(false);
    expect(found.body).toBe(`<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:p="${P}"><d:prop><d:displayname/><p:topic/><p:transports/><d:resourcetype/></d:prop></d:propfind>`);
  });

  it("keeps a body that already asks resourcetype as it is", () => {
    const body = `<propfind xmlns="DAV:"><prop><resourcetype/><supported-triggers xmlns="${P}"/></prop></propfind>`;
    expect(pushPropfind(body)).toEqual({ asked: ["supported-triggers"], resourcetypeAsked: true, body });
  });

  it("is null for no push property, allprop, another root, or XML it cannot read", () => {
    expect(pushPropfind(`<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>`)).toBeNull();
    expect(pushPropfind(`<propfind xmlns="DAV:" xmlns:p="${P}"><allprop/></propfind>`)).toBeNull();
    expect(pushPropfind(`<x:propfind xmlns:x="urn:other" xmlns:p="${P}"><x:prop><p:topic/></x:prop></x:propfind>`)).toBeNull();
    expect(pushPropfind(`<propfind xmlns="DAV:" xmlns:p="${P}"><prop><p:topic/></prop>`)).toBeNull();
  });
});

describe("gatewayTopic", () => {
  it("is 22 base64url characters of HMAC-SHA-256 of the percent-decoded path with one trailing slash", async () => {
    const raw = new Uint8Array(32).map((_, i) => i);
    const key = await importTopicKey(raw);
    const topic = await gatewayTopic(key, "/base/cal%40home");
    expect(topic).toBe(await expectedTopic(raw, "/base/cal@home/"));
    expect(topic).toMatch(/^[A-Za-z0-9_-]{22}$/);
    for (const spelling of ["/base/cal@home/", "/base/cal%40home/", "/base/cal@home//"]) expect(await gatewayTopic(key, spelling)).toBe(topic);
    expect(await gatewayTopic(key, "/base/other/")).not.toBe(topic);
    expect(await gatewayTopic(await importTopicKey(new Uint8Array(32)), "/base/cal@home/")).not.toBe(topic);
  });
});

describe("advertise", () => {
  const answer =
    `<?xml version="1.0" encoding="utf-8"?>\n<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">` +
    `<response><href>/base/cal/</href><propstat><prop><displayname>Work</displayname><resourcetype><collection/><C:calendar/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat>` +
    `<propstat><prop><ns0:topic xmlns:ns0="${P}"/><ns0:transports xmlns:ns0="${P}"/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>` +
    `<response><href>/base/cal/a.ics</href><propstat><prop><displayname>A</displayname><resourcetype/></prop><status>HTTP/1.1 200 OK</status></propstat>` +
    `<propstat><prop><ns0:topic xmlns:ns0="${P}"/><ns0:transports xmlns:ns0="${P}"/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>` +
    `</multistatus>`;
  const properties = async (path: string) => `<P:transports><P:web-push/></P:transports><P:topic>t:${path}</P:topic><P:supported-triggers/>`;

  it("answers the asked properties of each collection in a 200 propstat, out of the origin's 404, and drops an unasked resourcetype", async () => {
    const out = await advertise(answer, { asked: ["transports", "topic"], resourcetypeAsked: false }, "https://dav.example.org", properties);
    expect(out).toBe(
      `<?xml version="1.0" encoding="utf-8"?>\n<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">` +
        `<response><href>/base/cal/</href><propstat><prop><P:transports xmlns:P="${P}"><P:web-push/></P:transports><P:topic xmlns:P="${P}">t:/base/cal/</P:topic></prop><status>HTTP/1.1 200 OK</status></propstat>` +
        `<propstat><prop><displayname>Work</displayname></prop><status>HTTP/1.1 200 OK</status></propstat></response>` +
        `<response><href>/base/cal/a.ics</href><propstat><prop><displayname>A</displayname></prop><status>HTTP/1.1 200 OK</status></propstat>` +
        `<propstat><prop><ns0:topic xmlns:ns0="${P}"/><ns0:transports xmlns:ns0="${P}"/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>` +
        `</multistatus>`,
    );
  });

  it("keeps resourcetype when asked, finds the collection's path in an absolute href, and passes what is not a multistatus as null", async () => {
    const absolute = answer.replace("<href>/base/cal/</href>", "<href>https://dav.example.org/base/cal%20x/</href>");
    const out = (await advertise(absolute, { asked: ["topic"], resourcetypeAsked: true }, "https://dav.example.org", properties))!;
    expect(out).toContain(`<prop><P:topic xmlns:P="${P}">t:/base/cal%20x/</P:topic></prop>`);
    expect(out).toContain("<resourcetype><collection/><C:calendar/></resourcetype>");
    expect(out).not.toContain("<P:transports");
    expect(await advertise("<error xmlns='DAV:'/>", { asked: ["topic"], resourcetypeAsked: true }, "https://dav.example.org", properties)).toBeNull();
    expect(await advertise("not xml <", { asked: ["topic"], resourcetypeAsked: true }, "https://dav.example.org", properties)).toBeNull();
  });
});
