import { describe, expect, it } from "vitest";
import { parseDontNotify } from "../../src/hub/dont-notify";
import { normalizeChange } from "../../src/routes/notify";

describe("Push-Dont-Notify (RFC 9110 quoted-string list)", () => {
  it("reads one or more quoted registration URLs, over several header lines", () => {
    expect(parseDontNotify('"https://example.com/webdav/subscriptions/io6Efei4ooph"')).toEqual(["https://example.com/webdav/subscriptions/io6Efei4ooph"]);
    expect(parseDontNotify(['"https://a.example/1", "https://a.example/2"', ' "https://a.example/3"'])).toEqual([
      "https://a.example/1",
      "https://a.example/2",
      "https://a.example/3",
    ]);
    expect(parseDontNotify('"https://a.example/x\\"y"')).toEqual(['https://a.example/x"y']);
  });

  it("reads a lone * and ignores invalid values", () => {
    expect(parseDontNotify("*")).toBe("*");
    expect(parseDontNotify(" * ")).toBe("*");
    expect(parseDontNotify('*, "https://a.example/1"')).toEqual(["https://a.example/1"]);
    expect(parseDontNotify('https://bare.example/1, "not a url", "https://a.example/ok", "unterminated')).toEqual(["https://a.example/ok"]);
    expect(parseDontNotify("")).toEqual([]);
  });

  it("joins the header with dont_notify in a notify", () => {
    const id = "AAAAAAAAAAAAAAAAAAAAAA";
    const other = "BBBBBBBBBBBBBBBBBBBBBB";
    const change = normalizeChange({
      topic: "t",
      dont_notify: [`https://d.example/v1/registrations/${id}`],
      dont_notify_header: `"https://d.example/v1/registrations/${other}", "https://elsewhere.example/v1/x"`,
    });
    expect(change.dontNotify).toEqual([id, other]);
    expect(normalizeChange({ topic: "t", dont_notify_header: "*" }).dontNotify).toBe("*");
  });
});
