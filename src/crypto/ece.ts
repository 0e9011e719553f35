/**
 * RFC 8291 message encryption for Web Push, with the RFC 8188 `aes128gcm` content coding:
 * one record, no padding, on WebCrypto.
 */
import { concatBytes } from "../bytes";
import { decodeBase64url } from "./base64url";

/** RFC 8188 §2: the record size we announce; one record must fit in it. */
const RECORD_SIZE = 4096;
const HEADER_SIZE = 16 + 4 + 1 + 65; // salt, rs, idlen, keyid = the server's public key (RFC 8291 §4)
const TAG_SIZE = 16;
/** Largest plaintext one 4096-byte record can carry (RFC 8291 §4: the body is at most 4096 bytes). */
export const MAX_PLAINTEXT = RECORD_SIZE - HEADER_SIZE - TAG_SIZE - 1;

/** Bytes backed by a plain ArrayBuffer, as WebCrypto takes them. */
type Bytes = Uint8Array<ArrayBuffer>;

const encoder = new TextEncoder();
const KEY_INFO = encoder.encode("WebPush: info\0") as Bytes;
const CEK_INFO = encoder.encode("Content-Encoding: aes128gcm\0") as Bytes;
const NONCE_INFO = encoder.encode("Content-Encoding: nonce\0") as Bytes;

export interface UserAgentKeys {
  /** base64url uncompressed P-256 point (RFC 8291 §3.1) */
  p256dh: string;
  /** base64url 16-byte authentication secret (RFC 8291 §3.2) */
  auth: string;
}

/** Fixed inputs that tests use to reproduce RFC 8291 Appendix A; never set in production. */
export interface EncryptionOverrides {
  salt?: Bytes;
  serverKeys?: { publicKey: CryptoKey; privateKey: CryptoKey };
}

/** HKDF-SHA-256 (RFC 5869) keyed with `ikm`, ready to derive several outputs from one import. */
async function hkdfKey(ikm: Bytes): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
}

async function hkdf(key: CryptoKey, salt: Bytes, info: Bytes, bytes: number): Promise<Bytes> {
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, bytes * 8));
}

function decodeKey(text: string, bytes: number, what: string): Bytes {
  const decoded = decodeBase64url(text);
  if (decoded === null || decoded.byteLength !== bytes) throw new Error(`${what} must be ${bytes} bytes of base64url`);
  return decoded;
}

/** Encrypts `plaintext` for one user agent: a fresh ECDH key pair and salt per message (RFC 8291 §3.4). */
export async function encryptWebPush(plaintext: Uint8Array, ua: UserAgentKeys, overrides: EncryptionOverrides = {}): Promise<Bytes> {
  if (plaintext.byteLength > MAX_PLAINTEXT) {
    throw new RangeError(`push message of ${plaintext.byteLength} bytes exceeds the ${MAX_PLAINTEXT} bytes one record holds`);
  }
  const uaPublic = decodeKey(ua.p256dh, 65, "p256dh");
  const authSecret = decodeKey(ua.auth, 16, "auth");
  const salt = overrides.salt ?? crypto.getRandomValues(new Uint8Array(16));
  const serverKeys =
    overrides.serverKeys ??
    ((await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as {
      publicKey: CryptoKey;
      privateKey: CryptoKey;
    });

  const [asPublic, uaKey] = await Promise.all([
    crypto.subtle.exportKey("raw", serverKeys.publicKey) as Promise<ArrayBuffer>,
    crypto.subtle.importKey("raw", uaPublic, { name: "ECDH", namedCurve: "P-256" }, false, []),
  ]);
  const asPublicBytes = new Uint8Array(asPublic);
  // workers-types spells the standard `public` member `$public`; the runtime wants `public`.
  const ecdh = { name: "ECDH", public: uaKey } as unknown as Parameters<typeof crypto.subtle.deriveBits>[0];
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits(ecdh, serverKeys.privateKey, 256));

  // RFC 8291 §3.4: IKM binds the shared secret to the auth secret and both public keys.
  const ikm = await hkdf(await hkdfKey(ecdhSecret), authSecret, concatBytes([KEY_INFO, uaPublic, asPublicBytes]), 32);
  // RFC 8188 §2.2 and §2.3: content-encryption key and nonce (one record, so sequence number 0).
  const prk = await hkdfKey(ikm);
  const [cek, nonce] = await Promise.all([hkdf(prk, salt, CEK_INFO, 16), hkdf(prk, salt, NONCE_INFO, 12)]);

  const aesKey = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
  // RFC 8188 §2: the last (here only) record ends with the padding delimiter 0x02 and no padding.
  const record = concatBytes([plaintext, new Uint8Array([2])]);
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, tagLength: 128 }, aesKey, record));

  const header = new Uint8Array(HEADER_SIZE);
  header.set(salt, 0);
  new DataView(header.buffer).setUint32(16, RECORD_SIZE);
  header[20] = 65;
  header.set(asPublicBytes, 21);
  return concatBytes([header, ciphertext]);
}
