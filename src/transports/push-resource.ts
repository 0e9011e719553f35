import { badRequest } from "../errors";
import { decodeBase64url } from "../crypto/base64url";
import type { WebPushKeys } from "../store/subscriptions";

export const MAX_PUSH_RESOURCE_LENGTH = 2048;

function isPrivateIPv4(host: string): boolean {
  const parts = host.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return false;
  const [a, b] = parts;
  return (
    a === 0 || a === 10 || a === 127 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || a >= 224
  );
}

function isNonPublicHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[")) {
    const ip = host.slice(1, -1);
    // loopback, unspecified, unique local (fc00::/7), link-local (fe80::/10), IPv4-mapped
    return ip === "::1" || ip === "::" || /^f[cd]/.test(ip) || /^fe[89ab]/.test(ip) || ip.startsWith("::ffff:");
  }
  if (isPrivateIPv4(host)) return true;
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
