// Which push resources checkPushResource takes with insecure mode off: https: URLs of public hosts
// only, IPv4 and IPv6 literals judged by the IANA special-purpose registries.
import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors";
import { checkPushResource, parseIPv6 } from "../../src/transports/push-resource";

/** The ApiError code checkPushResource throws for `endpoint`, or "accepted". */
function verdict(endpoint: string): string {
  try {
    checkPushResource(endpoint, false);
    return "accepted";
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    expect(error.status).toBe(400);
    return error.code;
  }
}

const REFUSED = "invalid_push_resource";

describe("checkPushResource: public hosts", () => {
  const cases: [host: string, expected: string][] = [
    // IPv6: only global unicast 2000::/3, less the special-purpose blocks in it
    ["[::7f00:1]", REFUSED], // IPv4-compatible 127.0.0.1
    ["[64:ff9b::7f00:1]", REFUSED], // NAT64 of 127.0.0.1
    ["[fec0::1]", REFUSED], // site-local
    ["[ff02::1]", REFUSED], // multicast
    ["[::1]", REFUSED], // loopback
    ["[::]", REFUSED], // unspecified
    ["[fc00::1]", REFUSED], // unique local
    ["[fe80::1]", REFUSED], // link-local
    ["[::ffff:8.8.8.8]", REFUSED], // IPv4-mapped, even of a public address
    ["[::ffff:127.0.0.1]", REFUSED],
    ["[2001:db8::1]", REFUSED], // documentation
    ["[2002::1]", REFUSED], // 6to4
    ["[2002:7f00:1::1]", REFUSED],
    ["[3fff::1]", REFUSED], // documentation
    ["[3fff:fff:ffff::1]", REFUSED],
    ["[2001::1]", REFUSED], // Teredo
    ["[2001:1ff::1]", REFUSED], // last of 2001::/23
    ["[2606:4700::1111]", "accepted"],
    ["[2a00:1450:4001::1]", "accepted"],
    ["[2001:200::1]", "accepted"], // first past 2001::/23
    ["[3fff:1000::1]", "accepted"], // first past 3fff::/20
    ["[2003::1]", "accepted"],
    // IPv4
    ["0.0.0.0", REFUSED],
    ["10.1.2.3", REFUSED],
    ["100.64.0.1", REFUSED],
    ["100.127.255.255", REFUSED],
    ["127.0.0.1", REFUSED],
    ["169.254.169.254", REFUSED],
    ["172.16.0.1", REFUSED],
    ["172.31.255.255", REFUSED],
    ["192.0.0.1", REFUSED],
    ["192.0.2.1", REFUSED],
    ["192.168.1.4", REFUSED],
    ["198.18.0.1", REFUSED],
    ["198.19.255.255", REFUSED],
    ["198.51.100.7", REFUSED],
    ["203.0.113.9", REFUSED],
    ["224.0.0.1", REFUSED],
    ["255.255.255.255", REFUSED],
    ["0x7f.1", REFUSED], // URL() reads it as 127.0.0.1
    ["172.32.0.1", "accepted"],
    ["100.128.0.1", "accepted"],
    ["198.20.0.1", "accepted"],
    ["192.0.1.1", "accepted"],
    ["8.8.8.8", "accepted"],
    // names
    ["localhost", REFUSED],
    ["push.localhost", REFUSED],
    ["printer.local", REFUSED],
    ["intranet", REFUSED],
    ["push.example.net", "accepted"],
  ];
  it.each(cases)("https://%s/ → %s", (host, expected) => {
    expect(verdict(`https://${host}/push/1`)).toBe(expected);
  });

  it("lets loopback and http: through in insecure mode, never other schemes", () => {
    expect(checkPushResource("http://[::1]:8080/push/1", true)).toBe("http://[::1]:8080/push/1");
    expect(checkPushResource("http://127.0.0.1:8080/push/1", true)).toBe("http://127.0.0.1:8080/push/1");
    expect(() => checkPushResource("ftp://push.example.net/1", true)).toThrow(ApiError);
    expect(verdict("http://push.example.net/1")).toBe(REFUSED);
  });
});

describe("parseIPv6 (RFC 4291 §2.2)", () => {
  const hex = (value: bigint | null) => (value === null ? null : value.toString(16).padStart(32, "0"));
  it.each([
    ["::", "0".repeat(32)],
    ["::1", `${"0".repeat(31)}1`],
    ["2001:db8::8:800:200c:417a", "20010db80000000000080800200c417a"],
    ["ff01::101", `ff01${"0".repeat(24)}0101`],
    ["1:2:3:4:5:6:7:8", "00010002000300040005000600070008"],
    ["::ffff:8.8.8.8", `${"0".repeat(20)}ffff08080808`],
    ["64:ff9b::127.0.0.1", `0064ff9b${"0".repeat(16)}7f000001`],
    ["1:2:3:4:5:6:1.2.3.4", "00010002000300040005000601020304"],
    ["FE80::A", `fe80${"0".repeat(24)}000a`],
  ])("reads %s", (text, expected) => {
    expect(hex(parseIPv6(text))).toBe(expected);
  });

  it.each(["", ":", ":::", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4::5:6:7:8", "12345::", "g::1", ":1::", "1::2:", "1.2.3.4::", "::1.2.3", "::256.0.0.1", "::1.2.3.4:5"])(
    "refuses %j",
    (text) => {
      expect(parseIPv6(text)).toBeNull();
    },
  );
});
