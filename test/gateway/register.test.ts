import { describe, expect, it } from "vitest";
import { basicUser, collectionFacts, gatewayOwner, isPushRegister } from "../../src/gateway/register";

const P = "https://bitfire.at/webdav-push";

describe("isPushRegister", () => {
  it("knows the draft's push-register whatever its prefix, and nothing else", () => {
    expect(isPushRegister(`<?xml version="1.0"?><push-register xmlns="${P}"><subscription/></push-register>`)).toBe(true);
    expect(isPushRegister(`\uFEFF  <p:push-register xmlns:p="${P}"/>`)).toBe(true);
    // not well-formed, but meant as one: ours, so the client hears why
    expect(isPushRegister(`<push-register xmlns="${P}"><subscription>`)).toBe(true);
    expect(isPushRegister(`<push-register xmlns="urn:other"/>`)).toBe(false);
    expect(isPushRegister(`<x:thing xmlns:x="urn:test">push-register ${P}</x:thing>`)).toBe(false);
    expect(isPushRegister(`<D:propfind xmlns:D="DAV:"/>`)).toBe(false);
  });
});

describe("collectionFacts", () => {
  it("reads resourcetype, the principal and the tokens from the 2xx propstats of the first response", () => {
    const xml =
      `<d:multistatus xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:response><d:href>/base/cal%20x/</d:href>` +
      `<d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype><d:current-user-principal><d:href>/base/p/alice/</d:href></d:current-user-principal>` +
      `<d:sync-token> http://x/sync/7 </d:sync-token><cs:getctag>"c1"</cs:getctag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>` +
      `<d:propstat><d:prop><d:getetag>"e"</d:getetag></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response></d:multistatus>`;
    expect(collectionFacts(xml)).toEqual({ isCollection: true, principal: "/base/p/alice/", href: "/base/cal%20x/", tokens: { sync_token: "http://x/sync/7", ctag: '"c1"', etag: null } });
  });

  it("says no collection, no principal for a plain resource read anonymously, and null for what is no multistatus", () => {
    const xml = `<multistatus xmlns="DAV:"><response><href>/a.ics</href><propstat><prop><resourcetype/><current-user-principal><unauthenticated/></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>`;
    expect(collectionFacts(xml)).toEqual({ isCollection: false, principal: null, href: "/a.ics", tokens: { sync_token: null, ctag: null, etag: null } });
    expect(collectionFacts(`<error xmlns="DAV:"/>`)).toBeNull();
    expect(collectionFacts(`<multistatus xmlns="DAV:">`)).toBeNull();
    expect(collectionFacts(`<multistatus xmlns="DAV:"/>`)).toBeNull();
  });
});

describe("gatewayOwner", () => {
  const facts = (principal: string | null) => ({ isCollection: true, principal, href: null, tokens: { sync_token: null, ctag: null, etag: null } });
  it("is the principal's path however written, else the Basic user, else anonymous", () => {
    expect(gatewayOwner(facts("/base/p/alice/"), null, "https://dav.example.org")).toBe("principal:/base/p/alice/");
    expect(gatewayOwner(facts("https://dav.example.org/base/p/alice/"), null, "https://dav.example.org")).toBe("principal:/base/p/alice/");
    expect(gatewayOwner(facts(null), `Basic ${btoa("bob:pw:with:colons")}`, "https://dav.example.org")).toBe("basic:bob");
    expect(gatewayOwner(facts(null), "Bearer abc", "https://dav.example.org")).toBe("anonymous");
    expect(gatewayOwner(facts(null), null, "https://dav.example.org")).toBe("anonymous");
  });

  it("reads a Basic user only from a well-formed header", () => {
    expect(basicUser(`Basic ${btoa("alice:pw")}`)).toBe("alice");
    expect(basicUser(`basic ${btoa("alice:pw")}`)).toBe("alice");
    expect(basicUser(`Basic ${btoa(":pw")}`)).toBeNull();
    expect(basicUser(`Basic ${btoa("nocolon")}`)).toBeNull();
    expect(basicUser("Basic !!!")).toBeNull();
    expect(basicUser(null)).toBeNull();
  });
});
