// Other WebDAV-Push servers' push-register bodies (../shared/interop/servers, read as stored) sent
// to POST /v1/register: each answered as the draft says, with the director's leniency on top.
import { DOMParser, type Element } from "@xmldom/xmldom";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { bearer, call, createTenant, userAgentKeys, type TestTenant } from "../helpers";

const BODIES = env.TEST_INTEROP_BODIES;
const PUSH = "https://bitfire.at/webdav-push";
const TOPIC = "O7M1nQ7cKkKTKsoS_j6Z3w";
/** MAX_REGISTRATION_SECONDS of wrangler.toml: what a registration gets when it asks for nothing usable. */
const MAX_SECONDS = 7 * 86_400;

type Trigger = { content_update: { depth: number | "infinity" } | null; property_update: { depth: number | "infinity"; props: string[] | null } | null };
type Expected =
  | { status: 204; trigger: Trigger }
  | { status: 403; precondition: "invalid-subscription" | "no-supported-trigger" | "push-not-available" }
  | { status: 400; code: "invalid_xml" | "invalid_request" };

const contentOnly: Trigger = { content_update: { depth: 1 }, property_update: null };
const invalidSubscription = { status: 403, precondition: "invalid-subscription" } as const;

/**
 * Every body as stored. xandikos builds its bodies with p256dh `\x04` + 64×`\x01`, not a point on
 * P-256, so every one of them is an invalid subscription here (the interop README says so too);
 * the same bodies with a real key are the next table. Past `expires` (2023, and July 2026 by now)
 * means no wish: the maximum.
 */
const AS_STORED: Record<string, Expected> = {
  // push-resource https://x/y (a single-label host), p256dh "K", auth "A"
  "angaradav-content-only.xml": invalidSubscription,
  // DAVx⁵'s shape: n0: prefixes, no content-encoding (aes128gcm), no trigger (content updates, depth 1)
  "angaradav-davx5-style.xml": { status: 204, trigger: contentOnly },
  "angaradav-doctype.xml": { status: 400, code: "invalid_xml" },
  // the draft's sample with its p256dh cut to "BCVxsr7N"
  "angaradav-full.xml": invalidSubscription,
  // the draft's sample, indented, with whitespace before <?xml (issue 10 item 10: stripped);
  // infinity downgraded to 1, the property trigger kept at depth 0 with its props
  "rustical-draft-sample.xml": {
    status: 204,
    trigger: { content_update: { depth: 1 }, property_update: { depth: 0, props: ["{DAV:}displayname", "{DAV:}owner"] } },
  },
  "xandikos-aesgcm.xml": invalidSubscription,
  "xandikos-expires-2023.xml": invalidSubscription,
  "xandikos-invalid-root.xml": { status: 400, code: "invalid_request" },
  "xandikos-minimal.xml": invalidSubscription,
  // "the request doesn't contain a valid subscription" (draft: Response), checked before triggers
  "xandikos-missing-subscription.xml": invalidSubscription,
  "xandikos-no-trigger.xml": invalidSubscription,
  // a push-register root holding only <nonsense/>: no subscription (xandikos answers 403 as well)
  "xandikos-nonsense.xml": invalidSubscription,
  "xandikos-property-update.xml": invalidSubscription,
  "xandikos-unknown-trigger.xml": invalidSubscription,
};

/** xandikos' bodies with its placeholder p256dh replaced by a real user agent key: what is left to judge. */
const WITH_A_CURVE_POINT: Record<string, Expected> = {
  "xandikos-minimal.xml": { status: 204, trigger: contentOnly },
  "xandikos-expires-2023.xml": { status: 204, trigger: contentOnly },
  // the draft's text would answer no-supported-trigger; the director reads a body without any
  // trigger element as older DAVx⁵ sends it: content updates, depth 1 (README, Leniency)
  "xandikos-no-trigger.xml": { status: 204, trigger: contentOnly },
  "xandikos-property-update.xml": { status: 204, trigger: { content_update: null, property_update: { depth: 0, props: ["{DAV:}displayname"] } } },
  // an unknown trigger is ignored (draft: relaxed processing), which leaves none
  "xandikos-unknown-trigger.xml": { status: 403, precondition: "no-supported-trigger" },
  // RFC 8291 (aes128gcm) is the only content-encoding the draft allows
  "xandikos-aesgcm.xml": invalidSubscription,
};
const XANDIKOS_P256DH = "BAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";

function post(tenant: TestTenant, body: string | Uint8Array) {
  return call("/v1/register", {
    method: "POST",
    headers: { ...bearer(tenant.notify_token), "Content-Type": 'application/xml; charset="utf-8"', "Push-Topic": TOPIC },
    body,
  });
}

/** The precondition a 403 names: the element inside {DAV:}error. */
async function preconditionOf(response: Response): Promise<string> {
  expect(response.headers.get("Content-Type")).toMatch(/^application\/xml/);
  const root = new DOMParser().parseFromString(await response.text(), "application/xml").documentElement!;
  expect([root.namespaceURI, root.localName]).toEqual(["DAV:", "error"]);
  const condition = Array.from(root.childNodes).find((n) => n.nodeType === 1 && (n as Element).namespaceURI === PUSH) as Element | undefined;
  return condition?.localName ?? "(none)";
}

const label = (expected: Expected) =>
  expected.status === 403 ? `403 ${expected.precondition}` : expected.status === 400 ? `400 ${expected.code}` : "204";

const registrationsOf = async (tenant: TestTenant) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>())!.n;

/** Sends `body` and checks the answer against `expected`: status, and what the client reads from it. */
async function expectAnswer(body: string | Uint8Array, expected: Expected) {
  const tenant = await createTenant();
  const before = Math.floor(Date.now() / 1000);
  const response = await post(tenant, body);
  const after = Math.floor(Date.now() / 1000);
  const text = await response.clone().text();
  expect(response.status, text).toBe(expected.status);
  if (expected.status === 403) {
    expect(await preconditionOf(response)).toBe(expected.precondition);
  } else if (expected.status === 400) {
    expect((JSON.parse(text) as { error: { code: string } }).error.code).toBe(expected.code);
  } else {
    const location = response.headers.get("Location")!;
    expect(location).toMatch(/^https:\/\/director\.test\/v1\/registrations\/[A-Za-z0-9_-]{22}$/);
    const expires = response.headers.get("Expires")!;
    expect(expires).toMatch(/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
    const seconds = Date.parse(expires) / 1000;
    expect(seconds).toBeGreaterThanOrEqual(before + MAX_SECONDS);
    expect(seconds).toBeLessThanOrEqual(after + MAX_SECONDS);
    const registration = await (await call(new URL(location).pathname, { headers: bearer(tenant.notify_token) })).json<Record<string, unknown>>();
    expect(registration).toMatchObject({ topic: TOPIC, transport: "web_push", trigger: expected.trigger });
    return;
  }
  // a refusal writes nothing
  expect(await registrationsOf(tenant)).toBe(0);
}

describe("other servers' push-register bodies (../shared/interop/servers)", () => {
  it("has an expected answer for every body there, and a body for every answer", () => {
    expect(Object.keys(BODIES).sort()).toEqual(Object.keys(AS_STORED).sort());
  });

  for (const [file, expected] of Object.entries(AS_STORED)) {
    it(`${file} as stored → ${label(expected)}`, async () => {
      await expectAnswer(BODIES[file], expected);
    });
  }

  for (const [file, expected] of Object.entries(WITH_A_CURVE_POINT)) {
    it(`${file} with a real P-256 key → ${label(expected)}`, async () => {
      expect(BODIES[file]).toContain(XANDIKOS_P256DH);
      await expectAnswer(BODIES[file].replace(XANDIKOS_P256DH, (await userAgentKeys()).p256dh), expected);
    });
  }
});

describe("bytes before <?xml (issue 10 item 10)", () => {
  const bom = new Uint8Array([0xef, 0xbb, 0xbf]);
  const withBom = (text: string) => new Uint8Array([...bom, ...new TextEncoder().encode(text)]);
  const davx5 = () => BODIES["angaradav-davx5-style.xml"];

  it("a UTF-8 BOM is stripped: 204", async () => {
    expect(davx5().startsWith("<?xml")).toBe(true);
    await expectAnswer(withBom(davx5()), { status: 204, trigger: contentOnly });
  });

  it("a BOM and then whitespace is stripped too: 204", async () => {
    await expectAnswer(withBom(`\r\n\t ${davx5()}`), { status: 204, trigger: contentOnly });
  });

  it("nothing else loosens: a DTD or another root after a BOM stays 400", async () => {
    await expectAnswer(withBom(`\n${BODIES["angaradav-doctype.xml"]}`), { status: 400, code: "invalid_xml" });
    await expectAnswer(withBom(BODIES["xandikos-invalid-root.xml"]), { status: 400, code: "invalid_request" });
  });
});
