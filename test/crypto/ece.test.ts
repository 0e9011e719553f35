import { describe, expect, it } from "vitest";
import { decodeBase64url, encodeBase64url } from "../../src/crypto/base64url";
import { encryptWebPush, MAX_PLAINTEXT } from "../../src/crypto/ece";

// RFC 8291 Appendix A (the decoded body is 144 bytes; the RFC's Content-Length 145 is wrong).
const RFC8291 = {
  plaintext: "When I grow up, I want to be a watermelon",
  asPublic: "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
  asPrivate: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
  uaPublic: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
  uaPrivate: "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
  authSecret: "BTBZMqHH6r4Tts7J_aSIgg",
  salt: "DGv6ra1nlYgDCS1FRnbzlw",
  body:
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml" +
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT" +
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
};

function jwk(publicKey: string, d?: string): JsonWebKey {
  const point = decodeBase64url(publicKey)!;
  return { kty: "EC", crv: "P-256", x: encodeBase64url(point.subarray(1, 33)), y: encodeBase64url(point.subarray(33)), ...(d ? { d } : {}) };
}

async function keyPair(publicKey: string, privateKey: string): Promise<CryptoKeyPair> {
  const algorithm = { name: "ECDH", namedCurve: "P-256" };
  return {
    publicKey: await crypto.subtle.importKey("jwk", jwk(publicKey), algorithm, true, []),
    privateKey: await crypto.subtle.importKey("jwk", jwk(publicKey, privateKey), algorithm, false, ["deriveBits"]),
  };
}

/** The user agent's side of RFC 8291, for round trips inside workerd (the Node tests use http_ece). */
async function decrypt(body: Uint8Array, uaKeys: CryptoKeyPair, uaPublic: Uint8Array, auth: Uint8Array): Promise<Uint8Array> {
  const salt = body.subarray(0, 16);
  const asPublic = body.subarray(21, 21 + body[20]);
  const asKey = await crypto.subtle.importKey("raw", asPublic, { name: "ECDH", namedCurve: "P-256" }, false, []);
  const secret = await crypto.subtle.deriveBits({ name: "ECDH", public: asKey } as unknown as SubtleCryptoDeriveKeyAlgorithm, uaKeys.privateKey, 256);
  const hkdf = async (s: Uint8Array, ikm: ArrayBuffer | Uint8Array, info: Uint8Array, n: number) =>
    new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: s, info }, await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]), n * 8));
  const te = new TextEncoder();
  const ikm = await hkdf(auth, secret, new Uint8Array([...te.encode("WebPush: info\0"), ...uaPublic, ...asPublic]), 32);
  const cek = await hkdf(salt, ikm, te.encode("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, te.encode("Content-Encoding: nonce\0"), 12);
  const key = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["decrypt"]);
  const record = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, key, body.subarray(21 + body[20])));
  expect(record[record.length - 1]).toBe(2);
  return record.subarray(0, -1);
}

describe("encryptWebPush (RFC 8291)", () => {
  it("reproduces RFC 8291 Appendix A byte for byte", async () => {
    const body = await encryptWebPush(new TextEncoder().encode(RFC8291.plaintext), { p256dh: RFC8291.uaPublic, auth: RFC8291.authSecret }, {
      salt: decodeBase64url(RFC8291.salt)!,
      serverKeys: await keyPair(RFC8291.asPublic, RFC8291.asPrivate),
    });
    expect(body.byteLength).toBe(144);
    expect(encodeBase64url(body)).toBe(RFC8291.body);
  });

  it("uses a fresh key pair and salt for every message, which the user agent decrypts", async () => {
    const ua = await keyPair(RFC8291.uaPublic, RFC8291.uaPrivate);
    const plaintext = new TextEncoder().encode("<push-message/>");
    const keys = { p256dh: RFC8291.uaPublic, auth: RFC8291.authSecret };
    const [a, b] = [await encryptWebPush(plaintext, keys), await encryptWebPush(plaintext, keys)];
    expect(encodeBase64url(a.subarray(0, 16))).not.toBe(encodeBase64url(b.subarray(0, 16)));
    expect(encodeBase64url(a.subarray(21, 86))).not.toBe(encodeBase64url(b.subarray(21, 86)));
    expect(new DataView(a.buffer, a.byteOffset).getUint32(16)).toBe(4096);
    for (const body of [a, b]) {
      const clear = await decrypt(body, ua, decodeBase64url(RFC8291.uaPublic)!, decodeBase64url(RFC8291.authSecret)!);
      expect(new TextDecoder().decode(clear)).toBe("<push-message/>");
    }
  });

  it("fills at most one 4096-byte record and refuses more", async () => {
    const keys = { p256dh: RFC8291.uaPublic, auth: RFC8291.authSecret };
    expect((await encryptWebPush(new Uint8Array(MAX_PLAINTEXT), keys)).byteLength).toBe(4096);
    await expect(encryptWebPush(new Uint8Array(MAX_PLAINTEXT + 1), keys)).rejects.toThrow(RangeError);
  });
});
