/**
 * Checks on a Web Push subscription as a client hands it in: the push resource URL (and whether its
 * host is public) and the user agent's keys.
 */
import { badRequest } from "../errors";
import { decodeBase64url } from "../crypto/base64url";
import type { WebPushKeys } from "../store/subscriptions";

export const MAX_PUSH_RESOURCE_LENGTH = 2048;

/** Dotted-quad IPv4 (four decimal octets, RFC 791 §3.2) as a 32-bit number, or null. */
function parseIPv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (part.length < 1 || part.length > 3 || ![...part].every((c) => c >= "0" && c <= "9")) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value;
}

const HEX_DIGITS = "0123456789abcdefABCDEF";

/**
 * An IPv6 address in RFC 4291 §2.2 text form (hex groups, one `::` for a run of zero groups, an
 * optional dotted IPv4 tail) as a 128-bit number, or null when the text is not one.
 */
export function parseIPv6(text: string): bigint | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  // the dotted IPv4 tail (form 3) may only end the address
  const groupsOf = (part: string, last: boolean): number[] | null => {
    if (part === "") return [];
    const fields = part.split(":");
    const groups: number[] = [];
    for (const [i, field] of fields.entries()) {
      if (last && i === fields.length - 1 && field.includes(".")) {
        const v4 = parseIPv4(field);
        if (v4 === null) return null;
        groups.push(Math.floor(v4 / 0x10000), v4 % 0x10000);
      } else if (field.length >= 1 && field.length <= 4 && [...field].every((c) => HEX_DIGITS.includes(c))) {
        groups.push(parseInt(field, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  let groups: number[];
  if (halves.length === 2) {
    const head = groupsOf(halves[0], false);
    const tail = groupsOf(halves[1], true);
    // `::` stands for at least one zero group
    if (head === null || tail === null || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = groupsOf(text, true);
    if (all === null || all.length !== 8) return null;
    groups = all;
  }
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

interface Prefix<N> {
  base: N;
  length: number;
}

const ipv4Prefix = (cidr: string): Prefix<number> => {
  const [address, length] = cidr.split("/");
  return { base: parseIPv4(address)!, length: Number(length) };
};
const ipv6Prefix = (cidr: string): Prefix<bigint> => {
  const [address, length] = cidr.split("/");
  return { base: parseIPv6(address)!, length: Number(length) };
};
const inIPv4Prefix = (address: number, { base, length }: Prefix<number>) =>
  Math.floor(address / 2 ** (32 - length)) === Math.floor(base / 2 ** (32 - length));
const inIPv6Prefix = (address: bigint, { base, length }: Prefix<bigint>) => address >> BigInt(128 - length) === base >> BigInt(128 - length);

/**
 * IPv4 blocks no push service is reached at (IANA IPv4 Special-Purpose Address Registry, RFC 6890):
 * this network, private (RFC 1918), shared CGN (RFC 6598), loopback, link-local, IETF protocol
 * assignments, documentation (RFC 5737), benchmarking (RFC 2544), and multicast and reserved
 * (224.0.0.0 and up, broadcast included).
 */
const NON_PUBLIC_IPV4 = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/3",
].map(ipv4Prefix);

/**
 * An IPv6 host is public only inside global unicast 2000::/3 (RFC 4291 §2.4), which leaves out
 * loopback, unspecified, IPv4-mapped and -compatible, NAT64 (64:ff9b::/96, RFC 6052), unique local,
 * link- and site-local and multicast addresses; and then not in these blocks of the IANA IPv6
 * Special-Purpose Address Registry: IETF protocol assignments (RFC 2928) with Teredo (RFC 4380),
 * documentation (RFC 3849, RFC 9637), and 6to4 (RFC 3056). Teredo and 6to4 addresses embed an IPv4
 * address, which could be any of the private ones refused above.
 */
const GLOBAL_UNICAST = ipv6Prefix("2000::/3");
const NON_PUBLIC_GLOBAL_IPV6 = ["2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20"].map(ipv6Prefix);

function isPublicIPv6(text: string): boolean {
  const address = parseIPv6(text);
  return address !== null && inIPv6Prefix(address, GLOBAL_UNICAST) && !NON_PUBLIC_GLOBAL_IPV6.some((p) => inIPv6Prefix(address, p));
}

/** `hostname` as URL() gives it: IPv6 in brackets, IPv4 already in dotted-quad form. */
export function isNonPublicHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[") && host.endsWith("]")) return !isPublicIPv6(host.slice(1, -1));
  const ipv4 = parseIPv4(host);
  if (ipv4 !== null) return NON_PUBLIC_IPV4.some((p) => inIPv4Prefix(ipv4, p));
  return !host.includes(".") || /\.(localhost|local|internal|home\.arpa|lan)$/.test(host) || host === "localhost";
}

/**
 * A push resource (RFC 8030 §5) must be an absolute https: URL of a public host (RFC 8030 §8:
 * HTTP over TLS MUST be used); `insecure` lets http: and loopback through for local testing.
 */
export function checkPushResource(endpoint: string, insecure: boolean): string {
  if (endpoint.length > MAX_PUSH_RESOURCE_LENGTH) {
    throw badRequest("invalid_push_resource", `push resource must be at most ${MAX_PUSH_RESOURCE_LENGTH} characters`);
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw badRequest("invalid_push_resource", "push resource is not an absolute URL");
  }
  if (url.username !== "" || url.password !== "") {
    throw badRequest("invalid_push_resource", "push resource must not carry credentials");
  }
  if (insecure) {
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw badRequest("invalid_push_resource", "push resource must be an http: or https: URL");
    }
    return url.href;
  }
  if (url.protocol !== "https:") {
    throw badRequest("invalid_push_resource", "push resource must be an https: URL (RFC 8030 §8)");
  }
  if (isNonPublicHost(url.hostname)) {
    throw badRequest("invalid_push_resource", `push resource host ${url.hostname} is not a public host`);
  }
  return url.href;
}

/**
 * RFC 8291 §3: the user agent's P-256 public key (uncompressed point, 65 bytes) and its 16-byte
 * authentication secret. The key is imported to be sure it is a point on the curve.
 */
export async function checkWebPushKeys(p256dh: string, auth: string): Promise<WebPushKeys> {
  const point = decodeBase64url(p256dh);
  if (point === null || point.byteLength !== 65 || point[0] !== 0x04) {
    throw badRequest("invalid_subscription_key", "p256dh must be a base64url uncompressed P-256 point (65 bytes)");
  }
  try {
    await crypto.subtle.importKey("raw", point, { name: "ECDH", namedCurve: "P-256" }, false, []);
  } catch {
    throw badRequest("invalid_subscription_key", "p256dh is not a point on the P-256 curve");
  }
  const secret = decodeBase64url(auth);
  if (secret === null || secret.byteLength !== 16) {
    throw badRequest("invalid_subscription_key", "auth must be a base64url 16-byte authentication secret");
  }
  return { p256dh, auth, content_encoding: "aes128gcm" };
}
