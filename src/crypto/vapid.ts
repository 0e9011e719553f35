/**
 * RFC 8292 VAPID: an ES256 JWT per push service origin, signed with the director's key and
 * reused until an hour before it expires (signing is a fifth of a message's preparation cost).
 */
import { SignJWT } from "jose";
import { decodeBase64url, encodeBase64url } from "./base64url";

/** RFC 8292 §2: `exp` must not be more than 24 hours ahead; 12 h leaves room for skew. */
export const VAPID_LIFETIME_SECONDS = 12 * 3600;
const RENEW_BEFORE_SECONDS = 3600;

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
  subject: string;
}

interface CachedHeader {
  value: string;
  expiresAt: number;
}

/** `VAPID_PRIVATE_KEY` as base64url `d`, or a JWK (JSON) with `d`. */
function privateJwk(keys: VapidKeys): JsonWebKey {
  const point = decodeBase64url(keys.publicKey);
  if (point === null || point.byteLength !== 65 || point[0] !== 4) {
    throw new Error("VAPID_PUBLIC_KEY must be a base64url uncompressed P-256 point");
  }
  const text = keys.privateKey.trim();
  const d = text.startsWith("{") ? (JSON.parse(text) as JsonWebKey).d : text;
  if (typeof d !== "string" || decodeBase64url(d)?.byteLength !== 32) {
    throw new Error("VAPID_PRIVATE_KEY must be a base64url P-256 private key (d) or a JWK holding one");
  }
  return {
    kty: "EC",
    crv: "P-256",
    x: encodeBase64url(point.subarray(1, 33)),
    y: encodeBase64url(point.subarray(33, 65)),
    d,
  };
}

/** Signs and caches VAPID headers for one key pair; one instance lives per isolate and key. */
export class VapidSigner {
  private key: Promise<CryptoKey> | null = null;
  private readonly headers = new Map<string, CachedHeader>();

  constructor(
    readonly keys: VapidKeys,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  private signingKey(): Promise<CryptoKey> {
    this.key ??= crypto.subtle.importKey("jwk", privateJwk(this.keys), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    return this.key;
  }

  /** The `Authorization` header value for a push resource (RFC 8292 §3: `vapid t=…, k=…`). */
  async authorization(pushResource: string): Promise<string> {
    const audience = new URL(pushResource).origin;
    const now = this.now();
    const cached = this.headers.get(audience);
    if (cached !== undefined && cached.expiresAt - RENEW_BEFORE_SECONDS > now) return cached.value;
    const expiresAt = now + VAPID_LIFETIME_SECONDS;
    const jwt = await new SignJWT({})
      .setProtectedHeader({ typ: "JWT", alg: "ES256" })
      .setAudience(audience)
      .setExpirationTime(expiresAt)
      .setSubject(this.keys.subject)
      .sign(await this.signingKey());
    const value = `vapid t=${jwt}, k=${this.keys.publicKey}`;
    this.headers.set(audience, { value, expiresAt });
    return value;
  }
}

/** A fresh P-256 key pair in the forms VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY take. */
export async function generateVapidKeys(): Promise<{ publicKey: string; privateKey: string }> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  return { publicKey: encodeBase64url(raw), privateKey: jwk.d! };
}

/** Throws with a readable message unless the pair is a usable P-256 key (it signs a test JWT). */
export async function checkVapidKeys(keys: { publicKey: string; privateKey: string }): Promise<void> {
  await new VapidSigner({ ...keys, subject: "mailto:check@example.org" }).authorization("https://check.example/");
}

const signers = new Map<string, VapidSigner>();

/** The isolate's signer for these keys (a new one after key rotation). */
export function vapidSigner(keys: VapidKeys): VapidSigner {
  const id = `${keys.publicKey}\n${keys.subject}`;
  let signer = signers.get(id);
  if (signer === undefined || signer.keys.privateKey !== keys.privateKey) {
    signer = new VapidSigner(keys);
    signers.set(id, signer);
  }
  return signer;
}
