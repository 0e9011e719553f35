import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { pushMessageXml } from "../../src/xml/push-message";
import { SPEC_XML, validate } from "../support/relaxng";

describe("push-message XML", () => {
  it("validates against the draft's schema in every shape the director sends", () => {
    const shapes = [
      { topic: "O7M1nQ7cKkKTKsoS_j6Z3w", contentUpdate: { syncToken: "http://example.com/sync/10" }, propertyUpdate: { transports: false } },
      { topic: "t", contentUpdate: { syncToken: null }, propertyUpdate: null },
      { topic: "t", contentUpdate: null, propertyUpdate: { transports: false } },
      { topic: "a&b <c> \"d\" 'e'", contentUpdate: { syncToken: "x&y<z>" }, propertyUpdate: null },
      { topic: null, contentUpdate: null, propertyUpdate: { transports: true } },
    ];
    for (const shape of shapes) {
      const xml = pushMessageXml(shape);
      expect(validate(xml, "push-message"), xml).toBeNull();
    }
  });

  it("says what the draft's sample says, and escapes text", () => {
    expect(pushMessageXml({ topic: "O7M1nQ7cKkKTKsoS_j6Z3w", contentUpdate: { syncToken: "http://example.com/sync/10" }, propertyUpdate: { transports: false } })).toBe(
      '<?xml version="1.0" encoding="utf-8"?><push-message xmlns="https://bitfire.at/webdav-push" xmlns:D="DAV:">' +
        "<topic>O7M1nQ7cKkKTKsoS_j6Z3w</topic><content-update><D:sync-token>http://example.com/sync/10</D:sync-token></content-update>" +
        "<property-update/></push-message>",
    );
    expect(pushMessageXml({ topic: "a<b", contentUpdate: { syncToken: "&" }, propertyUpdate: null })).toContain(
      "<topic>a&lt;b</topic><content-update><D:sync-token>&amp;</D:sync-token>",
    );
  });

  it("makes the key-rotation message the draft shows", () => {
    const canonical = (xml: string) => xml.replace(/<\?xml[^>]*\?>/, "").replace(/>\s+</g, "><").replace(/\s+\/>/g, "/>").trim();
    const sample = readFileSync(path.join(SPEC_XML, "push-message-vapid-key.xml"), "utf8");
    expect(canonical(pushMessageXml({ topic: null, contentUpdate: null, propertyUpdate: { transports: true } }))).toBe(canonical(sample));
  });

  it("has a validator that rejects what the schema forbids", () => {
    expect(validate('<push-message xmlns="https://bitfire.at/webdav-push"><bogus/></push-message>', "push-message")).not.toBeNull();
    expect(validate(readFileSync(path.join(SPEC_XML, "sample-push-message.xml"), "utf8"), "push-message")).toBeNull();
  });
});
