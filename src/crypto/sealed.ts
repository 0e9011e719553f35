/**
 * Secrets at rest: AES-256-GCM envelopes for values D1 must keep but never hold in clear (grant
 * secrets, Web Push `auth`, FCM tokens, rotated VAPID private keys).
 *
 * A sealed value is `v1.<key id>.<iv>.<ciphertext>` (base64url parts): a fresh 12-byte IV per
 * value (NIST SP 800-38D §8.2.2, random IVs), and the column and row key as associated data, so a
 * value copied into another row or column no longer opens. `SECRETS_KEY` seals and opens;
 * `SECRETS_KEY_PREVIOUS` only opens, while rotation re-seals what it sealed.
 */
import { decodeBase64url, encodeBase64url } from "./base64url";

const VERSION = "v1";

/** No SECRETS_KEY (or an unreadable one): nothing secret can be read or written. */
export class SecretsKeyMissing extends Error {}

/** A stored value that no configured key opens (wrong key, tampered, or still in clear). */
export class SecretUndecryptable extends Error {}

interface SecretsKey {
  /** 8 base64url characters of SHA-256 of the key: names the key without revealing it. */
  id: string;
  key: CryptoKey;
}

export interface Keyring {
  current: SecretsKey;
  previous: SecretsKey | null;
}

const imported = new Map<string, Promise<SecretsKey>>();

function importSecretsKey(text: string, name: string): Promise<SecretsKey> {
  let key = imported.get(text);
  if (key === undefined) {
    key = (async () => {
      const raw = decodeBase64url(text.trim());
      if (raw === null || raw.byteLength !== 32) throw new SecretsKeyMissing(`${name} must be 32 random bytes, base64url`);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
      return {
        id: encodeBase64url(digest).slice(0, 8),
        key: await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]),
      };
    })();
    imported.set(text, key);
    key.catch(() => imported.delete(text));
  }
  return key;
}

/** The keys from the environment; throws SecretsKeyMissing when SECRETS_KEY is absent or malformed. */
export async function keyringOf(env: { SECRETS_KEY?: string; SECRETS_KEY_PREVIOUS?: string }): Promise<Keyring> {
  if (!env.SECRETS_KEY) throw new SecretsKeyMissing("SECRETS_KEY is not set");
  const current = await importSecretsKey(env.SECRETS_KEY, "SECRETS_KEY");
  const previous = env.SECRETS_KEY_PREVIOUS ? await importSecretsKey(env.SECRETS_KEY_PREVIOUS, "SECRETS_KEY_PREVIOUS") : null;
  return { current, previous: previous?.id === current.id ? null : previous };
}

/** `keyringOf(env)`, derived on the first call and only then: for work that may open no secret at all. */
export function lazyKeyringOf(env: { SECRETS_KEY?: string; SECRETS_KEY_PREVIOUS?: string }): () => Promise<Keyring> {
  let keyring: Promise<Keyring> | undefined;
  return () => (keyring ??= keyringOf(env));
}

/** The associated data: where the value lives, e.g. `tenants.grant_secret` and the tenant id. */
const aadOf = (column: string, rowKey: string) => new TextEncoder().encode(`${column}\n${rowKey}`);

export async function seal(keyring: Keyring, column: string, rowKey: string, plaintext: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: aadOf(column, rowKey) },
    keyring.current.key,
    new TextEncoder().encode(plaintext),
  );
  return `${VERSION}.${keyring.current.id}.${encodeBase64url(iv)}.${encodeBase64url(new Uint8Array(sealed))}`;
}

/** The key id a stored value was sealed with, or null when it is not a sealed value (plain text). */
export function sealedKeyId(stored: string): string | null {
  const parts = stored.split(".");
  return parts.length === 4 && parts[0] === VERSION ? parts[1] : null;
}

/** Opens a sealed value; never falls back to treating it as plain text. */
export async function open(keyring: Keyring, column: string, rowKey: string, stored: string): Promise<string> {
  const [version, keyId, ivText, dataText, ...rest] = stored.split(".");
  if (version !== VERSION || rest.length > 0 || dataText === undefined) {
    throw new SecretUndecryptable(`${column} of ${rowKey} is not sealed (stored in clear?)`);
  }
  const key = [keyring.current, keyring.previous].find((k) => k?.id === keyId);
  if (key === undefined || key === null) throw new SecretUndecryptable(`${column} of ${rowKey} is sealed with key ${keyId}, which is not configured`);
  const iv = decodeBase64url(ivText);
  const data = decodeBase64url(dataText);
  if (iv === null || iv.byteLength !== 12 || data === null) throw new SecretUndecryptable(`${column} of ${rowKey} is not a well-formed sealed value`);
  try {
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: aadOf(column, rowKey) }, key.key, data);
    return new TextDecoder().decode(plain);
  } catch {
    throw new SecretUndecryptable(`${column} of ${rowKey} does not open with key ${keyId}`);
  }
}

/** A fresh SECRETS_KEY: 32 random bytes, base64url. */
export const newSecretsKey = () => encodeBase64url(crypto.getRandomValues(new Uint8Array(32)));
