import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors";
import { checkGatewayOrigin } from "../../src/gateway/origin";

const strict = { insecure: false, selfOrigins: ["https://director.test"] };
const insecure = { insecure: true, selfOrigins: ["http://127.0.0.1:8787"] };

function refusal(value: string, options = strict): string {
  try {
    checkGatewayOrigin(value, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe("invalid_origin");
    return (error as ApiError).message;
  }
  throw new Error(`${value} was accepted`);
}

describe("checkGatewayOrigin", () => {
  it("keeps an https: URL of a public host, with a path ending in one slash", () => {
    expect(checkGatewayOrigin("https://dav.example.org", strict)).toBe("https://dav.example.org/");
    expect(checkGatewayOrigin("https://dav.example.org/radicale", strict)).toBe("https://dav.example.org/radicale/");
    expect(checkGatewayOrigin("https://dav.example.org:8443/a%20b/", strict)).toBe("https://dav.example.org:8443/a%20b/");
  });

  it("refuses what would reach the director's own network, or itself, naming why", () => {
    expect(refusal("http://dav.example.org/")).toBe("origin: must be an https: URL");
    for (const host of ["127.0.0.1", "10.0.0.5", "192.168.1.2", "169.254.169.254", "[::1]", "[fd00::1]", "localhost", "nas.local", "radicale"]) {
      expect(refusal(`https://${host}/`)).toMatch(/^origin: host .* is not a public host$/);
    }
    expect(refusal("https://director.test/dav/")).toBe("origin: must not be the director itself");
    expect(refusal("http://127.0.0.1:8787/", insecure)).toBe("origin: must not be the director itself");
  });

  it("refuses credentials, a query, a fragment, other schemes and non-URLs", () => {
    expect(refusal("https://alice:pw@dav.example.org/")).toBe("origin: must not carry credentials (use poll_auth)");
    expect(refusal("https://dav.example.org/?x=1")).toBe("origin: must not have a query");
    expect(refusal("https://dav.example.org/?")).toBe("origin: must not have a query");
    expect(refusal("https://dav.example.org/#top")).toBe("origin: must not have a fragment");
    expect(refusal("ftp://dav.example.org/")).toBe("origin: must be an https: URL");
    expect(refusal("ftp://dav.example.org/", insecure)).toBe("origin: must be an http: or https: URL");
    expect(refusal("dav.example.org")).toBe("origin: not an absolute URL");
    expect(refusal(`https://dav.example.org/${"a".repeat(3000)}`)).toBe("origin: at most 2048 characters");
  });

  it("lets http:, loopback and private hosts through only when insecure resources are allowed", () => {
    expect(checkGatewayOrigin("http://127.0.0.1:5232", insecure)).toBe("http://127.0.0.1:5232/");
    expect(checkGatewayOrigin("http://radicale/base", insecure)).toBe("http://radicale/base/");
  });
});
