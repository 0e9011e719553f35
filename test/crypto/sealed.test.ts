// Secrets at rest (src/crypto/sealed.ts): AES-256-GCM envelopes bound to their column and row.
import { describe, expect, it } from "vitest";
import { keyringOf, newSecretsKey, open, seal, sealedKeyId, SecretsKeyMissing, SecretUndecryptable } from "../../src/crypto/sealed";

describe("sealed secrets", () => {
  it("seals with a fresh IV each time and opens only in the same column and row", async () => {
    const keyring = await keyringOf({ SECRETS_KEY: newSecretsKey() });
    const a = await seal(keyring, "tenants.grant_secret", "t1", "s3cret");
    const b = await seal(keyring, "tenants.grant_secret", "t1", "s3cret");
    expect(a).toMatch(/^v1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain("s3cret");
    expect(sealedKeyId(a)).toBe(keyring.current.id);
    expect(await open(keyring, "tenants.grant_secret", "t1", a)).toBe("s3cret");
    // moved to another row or column, the envelope no longer opens
    await expect(open(keyring, "tenants.grant_secret", "t2", a)).rejects.toThrow(SecretUndecryptable);
    await expect(open(keyring, "subscriptions.auth", "t1", a)).rejects.toThrow(SecretUndecryptable);
  });

  it("opens with SECRETS_KEY_PREVIOUS, seals only with SECRETS_KEY", async () => {
    const old = newSecretsKey();
    const sealedOld = await seal(await keyringOf({ SECRETS_KEY: old }), "c", "r", "value");
    const rotated = await keyringOf({ SECRETS_KEY: newSecretsKey(), SECRETS_KEY_PREVIOUS: old });
    expect(await open(rotated, "c", "r", sealedOld)).toBe("value");
    expect(sealedKeyId(await seal(rotated, "c", "r", "value"))).toBe(rotated.current.id);
    // without the previous key it is undecryptable, never read some other way
    await expect(open(await keyringOf({ SECRETS_KEY: newSecretsKey() }), "c", "r", sealedOld)).rejects.toThrow(SecretUndecryptable);
  });

  it("never takes a value in clear, a tampered one, or a missing key", async () => {
    const keyring = await keyringOf({ SECRETS_KEY: newSecretsKey() });
    await expect(open(keyring, "c", "r", "plain-value")).rejects.toThrow(SecretUndecryptable);
    const sealed = await seal(keyring, "c", "r", "value");
    const tampered = sealed.slice(0, -2) + (sealed.endsWith("AA") ? "BB" : "AA");
    await expect(open(keyring, "c", "r", tampered)).rejects.toThrow(SecretUndecryptable);
    await expect(keyringOf({})).rejects.toThrow(SecretsKeyMissing);
    await expect(keyringOf({ SECRETS_KEY: "too-short" })).rejects.toThrow(SecretsKeyMissing);
  });
});
