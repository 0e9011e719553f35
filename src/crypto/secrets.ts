import { encodeBase64url } from "./base64url";

/** Random bytes as base64url; 32 bytes = 256 bits, well above the 128 bits a token needs. */
export function randomToken(bytes = 32): string {
  return encodeBase64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

export function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Compares a presented secret with a stored SHA-256 hex digest without leaking, through timing,
 * how much of it matched: both sides are fixed-length digests compared with timingSafeEqual.
 */
export async function matchesHash(presented: string, storedHex: string): Promise<boolean> {
  const a = new TextEncoder().encode(await sha256Hex(presented));
  const b = new TextEncoder().encode(storedHex);
  return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}

/** Constant-time equality of two secrets of any length (hashes both first). */
export async function secretsEqual(presented: string, expected: string): Promise<boolean> {
  return matchesHash(presented, await sha256Hex(expected));
}
