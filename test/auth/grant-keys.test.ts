/** Registered grant keys (src/auth/grant-keys.ts): which JWKs a tenant may register, and what is kept of them. */
import { beforeAll, describe, expect, it } from "vitest";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { grantKeysJson, MAX_GRANT_KEYS, parseGrantKeys } from "../../src/auth/grant-keys";
import { ApiError } from "../../src/errors";

let ecPublic: JWK;
let ecPrivate: JWK;
let edPublic: JWK;
let edPrivate: JWK;

beforeAll(async () => {
  const ec = await generateKeyPair("ES256", { extractable: true });
  const ed = await generateKeyPair("EdDSA", { extractable: true });
  [ecPublic, ecPrivate, edPublic, edPrivate] = await Promise.all([
    exportJWK(ec.publicKey),
    exportJWK(ec.privateKey),
    exportJWK(ed.publicKey),
    exportJWK(ed.privateKey),
  ]);
});

const ec = (over: Record<string, unknown> = {}) => ({ ...ecPublic, kid: "ec-1", ...over });
const ed = (over: Record<string, unknown> = {}) => ({ ...edPublic, kid: "ed-1", ...over });

/** The 400 a body is refused with. */
async function refusal(body: unknown): Promise<ApiError> {
  try {
    await parseGrantKeys(body);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(400);
    expect((error as ApiError).code).toBe("invalid_grant_key");
    return error as ApiError;
  }
  throw new Error(`accepted ${JSON.stringify(body)}`);
}

describe("parseGrantKeys", () => {
  it("accepts EC P-256 and OKP Ed25519 public keys and keeps only their public members", async () => {
    const keys = await parseGrantKeys({
      keys: [ec({ alg: "ES256", use: "sig", key_ops: ["verify"], ext: true, x5c: ["MIIB"], note: "x" }), ed({ alg: "EdDSA" })],
    });
    expect(keys).toEqual([
      { kid: "ec-1", alg: "ES256", jwk: { kty: "EC", crv: "P-256", x: ecPublic.x, y: ecPublic.y } },
      { kid: "ed-1", alg: "EdDSA", jwk: { kty: "OKP", crv: "Ed25519", x: edPublic.x } },
    ]);
    expect(grantKeysJson(keys)).toEqual([
      { kid: "ec-1", alg: "ES256" },
      { kid: "ed-1", alg: "EdDSA" },
    ]);
  });

  it.each<[string, () => Record<string, unknown>]>([
    ["no alg, no use", () => ec()],
    ["alg Ed25519 (RFC 9864) on an Ed25519 key", () => ed({ alg: "Ed25519" })],
    ["a kid of every allowed character, 64 long", () => ec({ kid: "A-z_0.9".padEnd(64, "x") })],
    ["a one-character kid", () => ed({ kid: "k" })],
  ])("accepts %s", async (_, key) => {
    expect(await parseGrantKeys({ keys: [key()] })).toHaveLength(1);
  });

  it("accepts [] (clearing the keys) and up to the maximum", async () => {
    expect(await parseGrantKeys({ keys: [] })).toEqual([]);
    const many = Array.from({ length: MAX_GRANT_KEYS }, (_, i) => ec({ kid: `k${i}` }));
    expect(await parseGrantKeys({ keys: many })).toHaveLength(MAX_GRANT_KEYS);
  });

  it.each<[string, () => unknown, RegExp]>([
    ["a body that is not an object", () => [ec()], /^body: must be a JSON object/],
    ["a null body", () => null, /^body:/],
    ["no keys", () => ({}), /^keys: must be an array/],
    ["keys an object", () => ({ keys: { 0: ec() } }), /^keys: must be an array/],
    ["more than 10 keys", () => ({ keys: Array.from({ length: 11 }, (_, i) => ec({ kid: `k${i}` })) }), /^keys: at most 10 keys \(got 11\)/],
    ["a key that is not an object", () => ({ keys: [ec(), "ec-1"] }), /^keys\[1\]: must be a JWK object/],
    ["a key that is an array", () => ({ keys: [[ec()]] }), /^keys\[0\]: must be a JWK object/],
    ["an EC private key", () => ({ keys: [{ ...ecPrivate, kid: "ec-1" }] }), /^keys\[0\]\.d: this is a private or secret key/],
    ["an Ed25519 private key", () => ({ keys: [ec(), { ...edPrivate, kid: "ed-1" }] }), /^keys\[1\]\.d: this is a private or secret key/],
    ["an RSA key", () => ({ keys: [{ kty: "RSA", kid: "r", n: "AQAB", e: "AQAB" }] }), /^keys\[0\]\.kty: must be "EC" \(P-256\) or "OKP" \(Ed25519\)/],
    ["a symmetric key", () => ({ keys: [{ kty: "oct", kid: "s", k: "c2VjcmV0" }] }), /^keys\[0\]\.k: this is a private or secret key/],
    ["no kty", () => ({ keys: [ec({ kty: undefined })] }), /^keys\[0\]\.kty/],
    ["EC on P-384", () => ({ keys: [ec({ crv: "P-384" })] }), /^keys\[0\]\.crv: must be "P-256"/],
    ["OKP X25519", () => ({ keys: [ed({ crv: "X25519" })] }), /^keys\[0\]\.crv: must be "Ed25519"/],
    ["EC with an Ed25519 crv", () => ({ keys: [ec({ crv: "Ed25519" })] }), /^keys\[0\]\.crv/],
    ["no kid", () => ({ keys: [ec({ kid: undefined })] }), /^keys\[0\]\.kid: must be 1–64 characters/],
    ["an empty kid", () => ({ keys: [ec({ kid: "" })] }), /^keys\[0\]\.kid/],
    ["a kid of 65 characters", () => ({ keys: [ec({ kid: "k".repeat(65) })] }), /^keys\[0\]\.kid/],
    ["a kid with a space", () => ({ keys: [ec({ kid: "ec 1" })] }), /^keys\[0\]\.kid/],
    ["a kid with a slash", () => ({ keys: [ec({ kid: "../ec" })] }), /^keys\[0\]\.kid/],
    ["a numeric kid", () => ({ keys: [ec({ kid: 1 })] }), /^keys\[0\]\.kid/],
    ["a duplicate kid", () => ({ keys: [ec(), ed(), ed({ kid: "ec-1" })] }), /^keys\[2\]\.kid: "ec-1" is already the kid of keys\[0\]/],
    ["alg ES384 on a P-256 key", () => ({ keys: [ec({ alg: "ES384" })] }), /^keys\[0\]\.alg: "ES384" does not match a P-256 key/],
    ["alg EdDSA on a P-256 key", () => ({ keys: [ec({ alg: "EdDSA" })] }), /^keys\[0\]\.alg/],
    ["alg ES256 on an Ed25519 key", () => ({ keys: [ed({ alg: "ES256" })] }), /^keys\[0\]\.alg: "ES256" does not match a Ed25519 key/],
    ["alg HS256", () => ({ keys: [ed({ alg: "HS256" })] }), /^keys\[0\]\.alg/],
    ["use enc", () => ({ keys: [ec({ use: "enc" })] }), /^keys\[0\]\.use: must be "sig"/],
    ["no x", () => ({ keys: [ec({ x: undefined })] }), /^keys\[0\]\.x: must be 32 bytes/],
    ["no y on an EC key", () => ({ keys: [ec({ y: undefined })] }), /^keys\[0\]\.y: must be 32 bytes/],
    ["x a number", () => ({ keys: [ed({ x: 42 })] }), /^keys\[0\]\.x/],
    ["x too short", () => ({ keys: [ed({ x: "AAAA" })] }), /^keys\[0\]\.x: must be 32 bytes/],
    ["x not base64url", () => ({ keys: [ed({ x: "+".repeat(43) })] }), /^keys\[0\]\.x/],
    ["x padded", () => ({ keys: [ec({ x: `${ecPublic.x!.slice(0, 42)}=` })] }), /^keys\[0\]\.x/],
    ["a point not on the curve", () => ({ keys: [ec({ y: ecPublic.x })] }), /^keys\[0\]: is not a valid P-256 public key/],
  ])("refuses %s", async (_, body, message) => {
    expect((await refusal(body())).message).toMatch(message);
  });
});
