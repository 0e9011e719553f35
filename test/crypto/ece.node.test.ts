// Our RFC 8291 encryption (src/crypto/ece.ts, WebCrypto only) decrypted by http_ece, an
// independent implementation on node:crypto, as a user agent would.
import { createECDH, randomBytes } from "node:crypto";
import * as ece from "http_ece";
import { describe, expect, it } from "vitest";
import { encryptWebPush, MAX_PLAINTEXT } from "../../src/crypto/ece";

function userAgent() {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  return { ecdh, p256dh: ecdh.getPublicKey().toString("base64url"), auth: randomBytes(16).toString("base64url") };
}

describe("encryptWebPush against http_ece", () => {
  it("decrypts to the original for messages of every size up to one record", async () => {
    for (const size of [0, 1, 41, 300, 1000, MAX_PLAINTEXT]) {
      const ua = userAgent();
      const plaintext = randomBytes(size);
      const body = await encryptWebPush(plaintext, ua);
      expect(body.byteLength).toBe(86 + size + 1 + 16);
      const clear = ece.decrypt(Buffer.from(body), { version: "aes128gcm", privateKey: ua.ecdh, authSecret: ua.auth });
      expect(Buffer.compare(clear, plaintext)).toBe(0);
    }
  });

  it("fails to decrypt with another user agent's secret", async () => {
    const ua = userAgent();
    const body = await encryptWebPush(Buffer.from("<push-message/>"), ua);
    expect(() => ece.decrypt(Buffer.from(body), { version: "aes128gcm", privateKey: ua.ecdh, authSecret: randomBytes(16) })).toThrow();
  });
});
