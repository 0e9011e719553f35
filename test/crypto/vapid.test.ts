import { decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { decodeBase64url, encodeBase64url } from "../../src/crypto/base64url";
import { VAPID_LIFETIME_SECONDS, VapidSigner } from "../../src/crypto/vapid";

async function newKeys() {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const publicKey = encodeBase64url(new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer));
  const { d } = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  return { publicKey, privateKey: d!, subject: "mailto:ops@example.org" };
}

function parse(header: string) {
  const match = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(header);
  expect(match, header).not.toBeNull();
  return { jwt: match![1], k: match![2] };
}

async function verify(jwt: string, publicKey: string, currentDate?: Date) {
  const point = decodeBase64url(publicKey)!;
  const key = await importJWK({ kty: "EC", crv: "P-256", x: encodeBase64url(point.subarray(1, 33)), y: encodeBase64url(point.subarray(33)) }, "ES256");
  return (await jwtVerify(jwt, key, { algorithms: ["ES256"], currentDate })).payload;
}

describe("VapidSigner (RFC 8292)", () => {
  it("signs an ES256 JWT for the push resource's origin, 12 h ahead, with the subject", async () => {
    const keys = await newKeys();
    const now = 1_800_000_000;
    const signer = new VapidSigner(keys, () => now);
    const { jwt, k } = parse(await signer.authorization("https://push.example.net:8443/wpush/v2/abc?x=1"));
    expect(k).toBe(keys.publicKey);
    expect(decodeProtectedHeader(jwt)).toEqual({ typ: "JWT", alg: "ES256" });
    const payload = await verify(jwt, keys.publicKey, new Date(now * 1000));
    expect(payload).toEqual({ aud: "https://push.example.net:8443", exp: now + VAPID_LIFETIME_SECONDS, sub: "mailto:ops@example.org" });
    expect(VAPID_LIFETIME_SECONDS).toBeLessThanOrEqual(24 * 3600);
  });

  it("produces JWTs that verify with the public key", async () => {
    const keys = await newKeys();
    const { jwt } = parse(await new VapidSigner(keys).authorization("https://updates.push.services.mozilla.com/wpush/v2/x"));
    const payload = await verify(jwt, keys.publicKey);
    expect(payload.aud).toBe("https://updates.push.services.mozilla.com");
    expect(payload.exp! - Date.now() / 1000).toBeGreaterThan(11 * 3600);
  });

  it("reuses the signed JWT per audience until an hour before expiry", async () => {
    let now = 1_800_000_000;
    const signer = new VapidSigner(await newKeys(), () => now);
    const first = await signer.authorization("https://a.example/1");
    expect(await signer.authorization("https://a.example/2")).toBe(first);
    expect(await signer.authorization("https://b.example/1")).not.toBe(first);
    now += VAPID_LIFETIME_SECONDS - 3601;
    expect(await signer.authorization("https://a.example/3")).toBe(first);
    now += 2;
    expect(await signer.authorization("https://a.example/3")).not.toBe(first);
  });

  it("accepts the private key as a JWK too, and refuses malformed keys", async () => {
    const keys = await newKeys();
    const asJwk = { ...keys, privateKey: JSON.stringify({ kty: "EC", crv: "P-256", d: keys.privateKey }) };
    const { jwt } = parse(await new VapidSigner(asJwk).authorization("https://a.example/"));
    await expect(verify(jwt, keys.publicKey)).resolves.toBeTruthy();
    await expect(new VapidSigner({ ...keys, privateKey: "short" }).authorization("https://a.example/")).rejects.toThrow(/VAPID_PRIVATE_KEY/);
    await expect(new VapidSigner({ ...keys, publicKey: "AAAA" }).authorization("https://a.example/")).rejects.toThrow(/VAPID_PUBLIC_KEY/);
  });
});
