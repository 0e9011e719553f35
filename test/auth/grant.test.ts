/** Client grants (src/auth/grant.ts): what verifies, and every way a grant is refused with a 401. */
import { beforeAll, describe, expect, it } from "vitest";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { grantIssuer, verifyGrant, type GrantTenant } from "../../src/auth/grant";
import { parseGrantKeys } from "../../src/auth/grant-keys";
import { encodeBase64url } from "../../src/crypto/base64url";
import { ApiError } from "../../src/errors";
import { grant } from "../helpers";

const NOW = Math.floor(Date.now() / 1000);
const DAY = 86_400;
const YEAR = 365 * DAY;
const OPTIONS = { nowSeconds: NOW, maxGrantSeconds: DAY };
const TENANT_ID = "0123456789abcdef01234567";
const SECRET = "the-tenant-grant-secret-0123456789abcdefghi";

const utf8 = (text: string) => new TextEncoder().encode(text);
const part = (value: unknown) => encodeBase64url(utf8(typeof value === "string" ? value : JSON.stringify(value)));

/** The claims of a good grant; an `undefined` in `over` removes a claim. */
const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  iss: TENANT_ID,
  sub: "alice",
  topics: ["topic-1"],
  iat: NOW,
  exp: NOW + 3600,
  ...over,
});

/**
 * An HS256 JWS signed by hand, so header and payload can be anything (a raw string is used as the
 * JSON text as is): jose refuses to sign some of what a verifier must refuse.
 */
async function hs256(header: unknown, payload: unknown, secret = SECRET): Promise<string> {
  const input = `${part(header)}.${part(payload)}`;
  const key = await crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return `${input}.${encodeBase64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8(input))))}`;
}

const signed = (payload: Record<string, unknown>, header: Record<string, unknown>, key: CryptoKey) =>
  new SignJWT(payload as JWTPayload).setProtectedHeader(header as { alg: string }).sign(key);

let tenant: GrantTenant;
let es: CryptoKeyPair & { jwk: JWK };
let ed: CryptoKeyPair & { jwk: JWK };
let foreignEs: CryptoKeyPair;

beforeAll(async () => {
  const pair = async (alg: "ES256" | "EdDSA") => {
    const keys = (await generateKeyPair(alg, { extractable: true })) as CryptoKeyPair;
    return { ...keys, jwk: await exportJWK(keys.publicKey) };
  };
  [es, ed, foreignEs] = await Promise.all([pair("ES256"), pair("EdDSA"), pair("ES256")]);
  const grantKeys = await parseGrantKeys({ keys: [{ ...es.jwk, kid: "es-1" }, { ...ed.jwk, kid: "ed-1", alg: "EdDSA" }] });
  tenant = { id: TENANT_ID, grantSecret: SECRET, grantKeys };
});

/** The ApiError a refused grant throws (anything else, or an acceptance, fails the test). */
async function refusal(token: string, options = OPTIONS, who: GrantTenant = tenant): Promise<ApiError> {
  let claims: unknown;
  try {
    claims = await verifyGrant(token, who, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(401);
    return error as ApiError;
  }
  throw new Error(`the grant was accepted: ${JSON.stringify(claims)}`);
}

const refused = async (token: string | Promise<string>, message: RegExp, code = "invalid_grant") => {
  const error = await refusal(await token);
  expect(error.code).toBe(code);
  expect(error.message).toMatch(message);
};

describe("verifyGrant accepts", () => {
  it("an HS256 grant signed with the tenant's grant secret", async () => {
    expect(await verifyGrant(await hs256({ alg: "HS256", typ: "JWT" }, claims()), tenant, OPTIONS)).toEqual({
      iss: TENANT_ID,
      sub: "alice",
      topics: ["topic-1"],
      exp: NOW + 3600,
      kid: null,
      alg: "HS256",
    });
    // as tenants mint it with jose (test/helpers.ts)
    const minted = await grant({ id: TENANT_ID, grant_secret: SECRET }, { topics: ["a", "b"] });
    expect(await verifyGrant(minted, tenant, OPTIONS)).toMatchObject({ sub: "alice", topics: ["a", "b"], alg: "HS256" });
  });

  it("ES256 and EdDSA grants signed with a registered key, named by kid", async () => {
    const byEs = await signed(claims(), { alg: "ES256", kid: "es-1" }, es.privateKey);
    expect(await verifyGrant(byEs, tenant, OPTIONS)).toMatchObject({ sub: "alice", topics: ["topic-1"], kid: "es-1", alg: "ES256" });
    const byEd = await signed(claims(), { alg: "EdDSA", kid: "ed-1" }, ed.privateKey);
    expect(await verifyGrant(byEd, tenant, OPTIONS)).toMatchObject({ sub: "alice", kid: "ed-1", alg: "EdDSA" });
  });

  it.each<[string, Record<string, unknown>, Partial<{ sub: string; topics: string[] }>]>([
    ["`topic` alone", { topics: undefined, topic: "only" }, { topics: ["only"] }],
    ["`topics` and `topic` together", { topics: ["a"], topic: "b" }, { topics: ["a", "b"] }],
    ["a topic of 200 emoji (code points, not UTF-16 units)", { topics: ["reg-" + "😀".repeat(200)] }, { topics: ["reg-" + "😀".repeat(200)] }],
    ["topics and sub kept byte-exact", { sub: " bob ", topics: [" d-padded ", "\u200f\u05d0"] }, { sub: " bob ", topics: [" d-padded ", "\u200f\u05d0"] }],
    ["no iat", { iat: undefined }, {}],
    ["exp at the longest lifetime plus skew (no iat)", { iat: undefined, exp: NOW + DAY + 60 }, {}],
    ["exp - iat at the longest lifetime", { iat: NOW - 60, exp: NOW + DAY - 60 }, {}],
    ["iat within the clock skew", { iat: NOW + 60 }, {}],
    ["nbf within the clock skew", { nbf: NOW + 60 }, {}],
    ["nbf in the past", { nbf: NOW - 10 }, {}],
    ["fractional NumericDates", { iat: NOW + 0.5, exp: NOW + 3600.5 }, {}],
  ])("%s", async (_, over, expected) => {
    expect(await verifyGrant(await hs256({ alg: "HS256" }, claims(over)), tenant, OPTIONS)).toMatchObject(expected);
  });
});

describe("verifyGrant refuses", () => {
  it.each([["none"], ["NONE"], ["hs256"], ["HS384"], ["HS512"], ["RS256"], ["PS256"], ["ES384"], ["Ed25519"], [""], [null], [undefined]])(
    "alg %j",
    async (alg) => {
      await refused(hs256({ alg, typ: "JWT" }, claims()), /algorithm/);
      const unsigned = `${part({ alg, typ: "JWT" })}.${part(claims())}.`;
      await refused(unsigned, /algorithm/);
    },
  );

  it.each([[["exp"]], [[]], ["b64"], [true]])("a crit header (%j)", async (crit) => {
    await refused(hs256({ alg: "HS256", crit, exp: NOW }, claims()), /crit/);
  });

  it.each([
    ["jwk", () => es.jwk],
    ["jku", () => "https://attacker.example/jwks.json"],
    ["x5u", () => "https://attacker.example/cert.pem"],
    ["x5c", () => ["MIIB"]],
  ])("a key of the token's own in `%s`", async (name, value) => {
    await refused(hs256({ alg: "HS256", [name]: value() }, claims()), new RegExp(`\`${name}\`.*never taken from the token`));
    await refused(signed(claims(), { alg: "ES256", kid: "es-1", [name]: value() }, es.privateKey), new RegExp(name));
  });

  it("a grant signed by a key of its own that it embeds", async () => {
    const attacker = await exportJWK(foreignEs.publicKey);
    await refused(signed(claims(), { alg: "ES256", kid: "es-1", jwk: attacker }, foreignEs.privateKey), /`jwk`/);
  });

  it("a bad signature", async () => {
    await refused(hs256({ alg: "HS256" }, claims(), "another-secret"), /signature does not verify with this tenant's grant secret/);
    const token = await hs256({ alg: "HS256" }, claims());
    await refused(token.slice(0, -2) + (token.endsWith("AA") ? "BA" : "AA"), /signature/);
    // a payload swapped under a valid signature
    const [header, , signature] = token.split(".");
    await refused(`${header}.${part(claims({ topics: ["someone-else"] }))}.${signature}`, /signature/);
  });

  it("a foreign key under a registered kid", async () => {
    await refused(signed(claims(), { alg: "ES256", kid: "es-1" }, foreignEs.privateKey), /signature does not verify with the tenant's key "es-1"/);
  });

  it("an unknown kid, a missing kid, or a kid registered for another algorithm", async () => {
    await refused(signed(claims(), { alg: "ES256", kid: "es-2" }, es.privateKey), /no registered grant key "es-2"/);
    await refused(signed(claims(), { alg: "ES256" }, es.privateKey), /needs a `kid`/);
    await refused(signed(claims(), { alg: "EdDSA", kid: "es-1" }, ed.privateKey), /"es-1" is for ES256, not EdDSA/);
    await refused(signed(claims(), { alg: "ES256", kid: "ed-1" }, es.privateKey), /"ed-1" is for EdDSA, not ES256/);
    // a tenant without keys verifies only HS256
    const noKeys = { ...tenant, grantKeys: [] };
    const error = await refusal(await signed(claims(), { alg: "ES256", kid: "es-1" }, es.privateKey), OPTIONS, noKeys);
    expect(error.message).toMatch(/no registered grant key/);
  });

  it("HS256 signed with a registered public key as the secret (algorithm confusion)", async () => {
    await refused(hs256({ alg: "HS256", kid: "es-1" }, claims(), JSON.stringify(es.jwk)), /signature/);
  });

  it.each<[string, unknown, RegExp, string?]>([
    ["exp absent", undefined, /`exp` is required/],
    ["exp a string", String(NOW + 3600), /`exp` must be a number/],
    ["exp null", null, /`exp` must be a number/],
    ["exp in the past", NOW - 1, /expired/, "grant_expired"],
    ["exp now", NOW, /expired/, "grant_expired"],
    ["exp 1e13", 1e13, /too far ahead/],
    ["exp 1e308", 1e308, /too far ahead/],
    ["exp 9999999999", 9_999_999_999, /too far ahead/],
    ["exp now + 100 years", NOW + 100 * YEAR, /too far ahead/],
    ["exp one second beyond the longest lifetime plus skew", NOW + DAY + 61, /too far ahead/],
  ])("%s", async (_, exp, message, code) => {
    await refused(hs256({ alg: "HS256" }, claims({ exp, iat: undefined })), message, code);
  });

  it("exp or iat that JSON reads as Infinity", async () => {
    const json = (claim: string) => `{"iss":"${TENANT_ID}","sub":"alice","topics":["t"],"exp":${NOW + 60},"${claim}":1e400}`;
    await refused(hs256({ alg: "HS256" }, json("exp")), /`exp` must be a number/);
    await refused(hs256({ alg: "HS256" }, json("iat")), /`iat` must be a number/);
    await refused(hs256({ alg: "HS256" }, json("nbf")), /`nbf` must be a number/);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ["iat 10 years ahead", { iat: NOW + 10 * YEAR, exp: NOW + 3600 }, /`iat` is in the future/],
    ["iat beyond the clock skew", { iat: NOW + 61 }, /`iat` is in the future/],
    ["exp - iat longer than the longest lifetime", { iat: NOW - DAY, exp: NOW + 3600 }, /exceeds 86400 seconds/],
    ["iat a string", { iat: String(NOW) }, /`iat` must be a number/],
    ["nbf ahead", { nbf: NOW + 3000 }, /`nbf` is in the future/],
    ["nbf beyond the clock skew", { nbf: NOW + 61 }, /`nbf` is in the future/],
    ["nbf a string", { nbf: "soon" }, /`nbf` must be a number/],
  ])("%s", async (_, over, message) => {
    await refused(hs256({ alg: "HS256" }, claims(over)), message);
  });

  it("a lifetime beyond a smaller maxGrantSeconds", async () => {
    const error = await refusal(await hs256({ alg: "HS256" }, claims({ iat: undefined, exp: NOW + 3600 })), { nowSeconds: NOW, maxGrantSeconds: 600 });
    expect(error.message).toMatch(/at most 600 seconds/);
  });

  it.each<[string, unknown, RegExp]>([
    ["another tenant", "0123456789abcdef01234568", /`iss` "0123456789abcdef01234568" is not this tenant/],
    ["no iss", undefined, /`iss` null is not this tenant/],
    ["iss a number", 7, /`iss`/],
  ])("iss of %s", async (_, iss, message) => {
    await refused(hs256({ alg: "HS256" }, claims({ iss })), message);
  });

  it.each<[string, unknown, RegExp]>([
    ["CR LF", "alice\r\nX-Admin: yes", /`sub` must not contain control character U\+000D/],
    ["NUL", "alice\u0000", /`sub` must not contain control character U\+0000/],
    ["257 characters", "a".repeat(257), /`sub` must be at most 256 Unicode code points/],
    ["a lone surrogate", "\ud800", /`sub` must be well-formed/],
    ["empty", "", /`sub` must not be empty/],
    ["absent", undefined, /`sub` must be a string/],
    ["a number", 42, /`sub` must be a string/],
  ])("sub with %s", async (_, sub, message) => {
    await refused(hs256({ alg: "HS256" }, claims({ sub })), message);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ["topics not an array", { topics: "topic-1" }, /`topics` must be an array/],
    ["topics an object", { topics: { 0: "topic-1" } }, /`topics` must be an array/],
    ["topics containing a control character", { topics: ["ok", "a\u0000b"] }, /`topics\[1\]` must not contain control character U\+0000/],
    ["topics containing a number", { topics: [1] }, /`topics\[0\]` must be a string/],
    ["topics containing an empty topic", { topics: [""] }, /`topics\[0\]` must not be empty/],
    ["a topic too long", { topics: ["a".repeat(257)] }, /at most 256/],
    ["topic a C1 control", { topics: undefined, topic: "a\u0085b" }, /`topic` must not contain control character U\+0085/],
    ["no topic at all", { topics: undefined }, /names no topic/],
    ["topics empty", { topics: [] }, /names no topic/],
  ])("%s", async (_, over, message) => {
    await refused(hs256({ alg: "HS256" }, claims(over)), message);
  });

  it.each<[string, () => Promise<string> | string, RegExp]>([
    ["2 segments", async () => (await hs256({ alg: "HS256" }, claims())).split(".").slice(0, 2).join("."), /3 dot-separated segments, this has 2/],
    ["4 segments", async () => `${await hs256({ alg: "HS256" }, claims())}.x`, /this has 4/],
    ["one word", () => "not-a-jwt", /this has 1/],
    ["a header not base64url", () => `e30*.${part(claims())}.sig`, /header is not base64url/],
    ["a padded header", () => `${part({ alg: "HS256" })}=.${part(claims())}.sig`, /header is not base64url/],
    ["a header not JSON", () => hs256("{alg: HS256}", claims()), /header is not UTF-8 JSON/],
    ["a header not UTF-8", () => `${encodeBase64url(new Uint8Array([0x7b, 0xff, 0x7d]))}.${part(claims())}.sig`, /header is not UTF-8 JSON/],
    ["a header that is a JSON array", () => hs256(["HS256"], claims()), /header is not a JSON object/],
    ["a payload that is a JSON array", () => hs256({ alg: "HS256" }, [claims()]), /payload is not a JSON object/],
    ["a payload that is a JSON string", () => hs256({ alg: "HS256" }, '"alice"'), /payload is not a JSON object/],
    ["a payload that is a JSON number", () => hs256({ alg: "HS256" }, "42"), /payload is not a JSON object/],
    ["a payload that is null", () => hs256({ alg: "HS256" }, "null"), /payload is not a JSON object/],
    ["a payload not JSON", () => hs256({ alg: "HS256" }, "{"), /payload is not UTF-8 JSON/],
    ["an empty payload", () => hs256({ alg: "HS256" }, ""), /payload is not UTF-8 JSON/],
  ])("a token with %s", async (_, token, message) => {
    await refused(token(), message);
  });

  it("with a 401, never a 500, when something unexpected breaks", async () => {
    const broken = { ...tenant, grantKeys: [{ kid: "es-1", alg: "ES256" as const, jwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" } }] };
    const error = await refusal(await signed(claims(), { alg: "ES256", kid: "es-1" }, es.privateKey), OPTIONS, broken);
    expect(error.code).toBe("invalid_grant");
    const noSecret = { ...tenant, grantSecret: "" };
    expect((await refusal(await hs256({ alg: "HS256" }, claims()), OPTIONS, noSecret)).code).toBe("invalid_grant");
  });
});

describe("grantIssuer", () => {
  it("reads iss before anything is verified", async () => {
    expect(grantIssuer(await hs256({ alg: "HS256" }, claims(), "any-secret"))).toBe(TENANT_ID);
    expect(grantIssuer(await signed(claims(), { alg: "EdDSA", kid: "ed-1" }, ed.privateKey))).toBe(TENANT_ID);
  });

  it.each<[string, () => Promise<string> | string, RegExp]>([
    ["alg none", () => `${part({ alg: "none" })}.${part(claims())}.`, /algorithm "none"/],
    ["crit", () => hs256({ alg: "HS256", crit: ["exp"] }, claims()), /crit/],
    ["jku", () => hs256({ alg: "HS256", jku: "https://attacker.example/" }, claims()), /jku/],
    ["2 segments", () => `${part({ alg: "HS256" })}.${part(claims())}`, /segments/],
    ["a payload that is a JSON array", () => hs256({ alg: "HS256" }, []), /not a JSON object/],
    ["no iss", () => hs256({ alg: "HS256" }, claims({ iss: undefined })), /no `iss`/],
    ["an empty iss", () => hs256({ alg: "HS256" }, claims({ iss: "" })), /no `iss`/],
  ])("refuses %s", async (_, token, message) => {
    const value = await token();
    expect(() => grantIssuer(value)).toThrow(ApiError);
    expect(() => grantIssuer(value)).toThrow(message);
  });
});
