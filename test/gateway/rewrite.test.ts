/** The gateway's URL rewriting (src/gateway/rewrite.ts): values, headers, and {DAV:}href in XML, streamed. */
import { concatBytes } from "../../src/bytes";
import { describe, expect, it } from "vitest";
import {
  rewriteDestination,
  rewriteHrefs,
  rewriteHrefsStream,
  rewriteIf,
  rewriteLocation,
  toGateway,
  toOrigin,
  type Direction,
  type Prefixes,
} from "../../src/gateway/rewrite";

const ID = "0123456789abcdef01234567";
const p: Prefixes = {
  gatewayOrigin: "https://director.example",
  gatewayPath: `/dav/${ID}/`,
  originOrigin: "https://dav.example.org",
  originPath: "/base/",
};
/** An origin with a port, serving from its root. */
const root: Prefixes = { ...p, originOrigin: "https://dav.example.org:8443", originPath: "/" };

const encoder = new TextEncoder();
const decode = (bytes: Uint8Array) => new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(bytes);

/** The chunks through rewriteHrefsStream, as one byte array. */
async function streamed(chunks: Uint8Array[], direction: Direction, prefixes: Prefixes = p): Promise<Uint8Array> {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
  const reader = body.pipeThrough(rewriteHrefsStream(direction, prefixes)).getReader();
  const parts: Uint8Array[] = [];
  for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
  return concatBytes(parts);
}

describe("toOrigin", () => {
  const cases: [string, string, string][] = [
    ["an absolute URL", `https://director.example/dav/${ID}/alice/cal/`, "https://dav.example.org/base/alice/cal/"],
    ["a path", `/dav/${ID}/alice/cal/a.ics`, "/base/alice/cal/a.ics"],
    ["the prefix itself", `/dav/${ID}/`, "/base/"],
    ["the prefix without its slash", `/dav/${ID}`, "/base"],
    ["an absolute URL of the prefix without its slash", `https://director.example/dav/${ID}`, "https://dav.example.org/base"],
    ["query and fragment", `/dav/${ID}/a.ics?export=1&x=%2F#frag`, "/base/a.ics?export=1&x=%2F#frag"],
    ["query right after the prefix without slash", `https://director.example/dav/${ID}?x=1`, "https://dav.example.org/base?x=1"],
    [
      "percent-encoding as written, upper and lower case",
      `/dav/${ID}/alice%40example.com/a%2Fb/%c3%a9t%C3%A9.ics`,
      "/base/alice%40example.com/a%2Fb/%c3%a9t%C3%A9.ics",
    ],
    ["scheme and host in another case", `HTTPS://Director.EXAMPLE/dav/${ID}/x`, "https://dav.example.org/base/x"],
    ["indented, as in XML", `\n      /dav/${ID}/a.ics\n    `, "\n      /base/a.ics\n    "],
    ["spaces and tabs", ` \thttps://director.example/dav/${ID}/a.ics `, " \thttps://dav.example.org/base/a.ics "],
  ];
  for (const [name, input, expected] of cases) it(name, () => expect(toOrigin(input, p)).toBe(expected));

  const untouched: [string, string][] = [
    ["another host", `https://other.example/dav/${ID}/x`],
    ["a host that only starts like ours", `https://director.example.evil/dav/${ID}/x`],
    ["our host on another port", `https://director.example:8443/dav/${ID}/x`],
    ["another scheme", `http://director.example/dav/${ID}/x`],
    ["outside the prefix", "/dav/ffffffffffffffffffffffff/x"],
    ["a longer segment", `/dav/${ID}x/y`],
    ["the prefix in another case (paths are case-sensitive)", `/DAV/${ID}/x`],
    ["the prefix percent-encoded", `/dav%2F${ID}/x`],
    ["a relative reference", "a.ics"],
    ["a relative reference with dots", "../x/a.ics"],
    ["a network-path reference", `//director.example/dav/${ID}/x`],
    ["a mailto: principal", "mailto:alice@example.org"],
    ["a urn", "urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2"],
    ["empty", ""],
    ["only white space", "  \n "],
    ["our origin without a path", "https://director.example"],
    ["a dot-dot segment that would leave the prefix", `/dav/${ID}/../other/x`],
    ["an encoded dot-dot segment", `https://director.example/dav/${ID}/a/%2E%2e/x`],
    ["an origin-side path", "/base/a.ics"],
  ];
  for (const [name, input] of untouched) it(`leaves ${name} untouched`, () => expect(toOrigin(input, p)).toBe(input));
});

describe("toGateway", () => {
  const cases: [string, string, string][] = [
    ["an absolute URL", "https://dav.example.org/base/alice/", `https://director.example/dav/${ID}/alice/`],
    ["a path", "/base/alice/cal/", `/dav/${ID}/alice/cal/`],
    ["the prefix without its slash", "/base", `/dav/${ID}`],
    ["query and fragment", "/base/a.ics?a=1#b", `/dav/${ID}/a.ics?a=1#b`],
    ["percent-encoding as written", "/base/caf%c3%a9/%40%2f.ics", `/dav/${ID}/caf%c3%a9/%40%2f.ics`],
    ["indented", "\n  /base/x/\n", `\n  /dav/${ID}/x/\n`],
  ];
  for (const [name, input, expected] of cases) it(name, () => expect(toGateway(input, p)).toBe(expected));

  for (const input of ["/basement/x", "/other/base/x", "https://dav.example.org.evil/base/x", "https://director.example/base/x", "mailto:bob@example.org", "x/y"]) {
    it(`leaves ${JSON.stringify(input)} untouched`, () => expect(toGateway(input, p)).toBe(input));
  }
});

describe("an origin with a port, serving from its root", () => {
  const cases: [Direction, string, string][] = [
    ["toOrigin", `https://director.example/dav/${ID}/alice/`, "https://dav.example.org:8443/alice/"],
    ["toOrigin", `/dav/${ID}/alice/`, "/alice/"],
    ["toOrigin", `/dav/${ID}/`, "/"],
    ["toOrigin", `/dav/${ID}`, "/"],
    ["toOrigin", `https://director.example/dav/${ID}`, "https://dav.example.org:8443"],
    ["toGateway", "https://dav.example.org:8443/alice/", `https://director.example/dav/${ID}/alice/`],
    ["toGateway", "https://DAV.example.org:8443/", `https://director.example/dav/${ID}/`],
    ["toGateway", "https://dav.example.org:8443", `https://director.example/dav/${ID}`],
    ["toGateway", "https://dav.example.org:8443?x", `https://director.example/dav/${ID}?x`],
    ["toGateway", "/", `/dav/${ID}/`],
    ["toGateway", "/.well-known/caldav", `/dav/${ID}/.well-known/caldav`],
    ["toGateway", "https://dav.example.org/alice/", "https://dav.example.org/alice/"],
    ["toGateway", "https://dav.example.org:84430/alice/", "https://dav.example.org:84430/alice/"],
    ["toGateway", "/a/../../x", "/a/../../x"],
  ];
  for (const [direction, input, expected] of cases) {
    it(`${direction} ${input}`, () => expect((direction === "toOrigin" ? toOrigin : toGateway)(input, root)).toBe(expected));
  }
});

describe("headers", () => {
  it("Destination: an absolute URI, or a path", () => {
    expect(rewriteDestination(`https://director.example/dav/${ID}/cal/b%20c.ics`, p)).toBe("https://dav.example.org/base/cal/b%20c.ics");
    expect(rewriteDestination(`/dav/${ID}/cal/b.ics`, p)).toBe("/base/cal/b.ics");
    expect(rewriteDestination("https://elsewhere.example/cal/b.ics", p)).toBe("https://elsewhere.example/cal/b.ics");
  });

  it("Location and Content-Location", () => {
    expect(rewriteLocation("https://dav.example.org/base/cal/new.ics", p)).toBe(`https://director.example/dav/${ID}/cal/new.ics`);
    expect(rewriteLocation("/base/cal/new.ics", p)).toBe(`/dav/${ID}/cal/new.ics`);
    expect(rewriteLocation("https://login.example/", p)).toBe("https://login.example/");
  });

  it("If: the resource tags of tagged lists, not state tokens nor entity tags", () => {
    const input =
      `<https://director.example/dav/${ID}/cal/a.ics> (<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2> ["I am an ETag"]) (["I am another ETag"]) ` +
      `</dav/${ID}/cal/b.ics> (Not <DAV:no-lock> [W/"x)<y>"] <https://director.example/dav/${ID}/locks/1>)` +
      `<https://other.example/dav/${ID}/c.ics>(<opaquelocktoken:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>)`;
    expect(rewriteIf(input, p)).toBe(
      `<https://dav.example.org/base/cal/a.ics> (<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2> ["I am an ETag"]) (["I am another ETag"]) ` +
        `</base/cal/b.ics> (Not <DAV:no-lock> [W/"x)<y>"] <https://director.example/dav/${ID}/locks/1>)` +
        `<https://other.example/dav/${ID}/c.ics>(<opaquelocktoken:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>)`,
    );
  });

  it("If: an untagged list is left alone", () => {
    const input = `(<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2>) (Not <DAV:no-lock> ["etag"]) (<https://director.example/dav/${ID}/x>)`;
    expect(rewriteIf(input, p)).toBe(input);
  });

  it("If: malformed values are kept", () => {
    expect(rewriteIf(`</dav/${ID}/a.ics`, p)).toBe(`</dav/${ID}/a.ics`);
    expect(rewriteIf(`(["unclosed) </dav/${ID}/a.ics>`, p)).toBe(`(["unclosed) </dav/${ID}/a.ics>`);
    expect(rewriteIf(`</dav/${ID}/a.ics> ((<x>)))) </dav/${ID}/b.ics>`, p)).toBe(`</base/a.ics> ((<x>)))) </base/b.ics>`);
  });
});

/** A PROPFIND answer as Radicale writes it: DAV: is the default namespace. */
const RADICALE = `<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/">
  <response>
    <href>/base/alice/</href>
    <propstat>
      <prop>
        <current-user-principal>
          <href>/base/alice/</href>
        </current-user-principal>
        <C:calendar-home-set>
          <href>/base/alice/</href>
        </C:calendar-home-set>
        <C:calendar-user-address-set>
          <href>mailto:alice@example.org</href>
        </C:calendar-user-address-set>
      </prop>
      <status>HTTP/1.1 200 OK</status>
    </propstat>
  </response>
  <response>
    <href>/base/alice/caf%C3%A9%20cal/</href>
    <propstat>
      <prop>
        <CS:getctag>"e3b0c442"</CS:getctag>
        <sync-token>https://dav.example.org/base/sync/42</sync-token>
        <C:calendar-description>Caf&#233; &amp; /base/ &lt;href&gt;</C:calendar-description>
      </prop>
      <status>HTTP/1.1 200 OK</status>
    </propstat>
  </response>
</multistatus>
`;

const RADICALE_GATEWAY = `<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/">
  <response>
    <href>/dav/0123456789abcdef01234567/alice/</href>
    <propstat>
      <prop>
        <current-user-principal>
          <href>/dav/0123456789abcdef01234567/alice/</href>
        </current-user-principal>
        <C:calendar-home-set>
          <href>/dav/0123456789abcdef01234567/alice/</href>
        </C:calendar-home-set>
        <C:calendar-user-address-set>
          <href>mailto:alice@example.org</href>
        </C:calendar-user-address-set>
      </prop>
      <status>HTTP/1.1 200 OK</status>
    </propstat>
  </response>
  <response>
    <href>/dav/0123456789abcdef01234567/alice/caf%C3%A9%20cal/</href>
    <propstat>
      <prop>
        <CS:getctag>"e3b0c442"</CS:getctag>
        <sync-token>https://dav.example.org/base/sync/42</sync-token>
        <C:calendar-description>Caf&#233; &amp; /base/ &lt;href&gt;</C:calendar-description>
      </prop>
      <status>HTTP/1.1 200 OK</status>
    </propstat>
  </response>
</multistatus>
`;

/** A prefixed multistatus (as sabre/dav writes it), with hrefs that must not change. */
const PREFIXED = `<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE d:multistatus [ <!ENTITY e "<d:href>/base/entity</d:href>"> ]>
<d:multistatus xmlns:d="DAV:" xmlns:x="urn:example:other" xmlns:s="http://sabredav.org/ns">
<d:response><d:href>https://dav.example.org/base/cal/a&amp;b.ics</d:href>
<d:propstat><d:prop a="x>y" b='<d:href>/base/attr</d:href>'>
<x:href>/base/foreign</x:href>
<!-- <d:href>/base/comment</d:href> -->
<!--><d:href>/base/comment-opening-with-gt</d:href>-->
<s:data><![CDATA[<d:href>/base/cdata</d:href>]]></s:data>
<?pi <d:href>/base/pi</d:href> ?>
<x:outer><x:inner xmlns:x="DAV:"><x:href>/base/rebound</x:href></x:inner><x:href>/base/foreign-again</x:href></x:outer>
<d:group xmlns:d="urn:not-dav"><d:href>/base/not-dav</d:href></d:group>
<d:owner><d:href
  >/base/principals/%61lice/</d:href   ></d:owner>
<d:empty><d:href/><d:href></d:href></d:empty>
<name>/base/no-namespace</name><href>/base/no-namespace</href>
<D:href xmlns:D="DAV:">/base/日本/é.ics</D:href>
</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
</d:multistatus>`;

const PREFIXED_GATEWAY = `<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE d:multistatus [ <!ENTITY e "<d:href>/base/entity</d:href>"> ]>
<d:multistatus xmlns:d="DAV:" xmlns:x="urn:example:other" xmlns:s="http://sabredav.org/ns">
<d:response><d:href>https://director.example/dav/0123456789abcdef01234567/cal/a&amp;b.ics</d:href>
<d:propstat><d:prop a="x>y" b='<d:href>/base/attr</d:href>'>
<x:href>/base/foreign</x:href>
<!-- <d:href>/base/comment</d:href> -->
<!--><d:href>/base/comment-opening-with-gt</d:href>-->
<s:data><![CDATA[<d:href>/base/cdata</d:href>]]></s:data>
<?pi <d:href>/base/pi</d:href> ?>
<x:outer><x:inner xmlns:x="DAV:"><x:href>/dav/0123456789abcdef01234567/rebound</x:href></x:inner><x:href>/base/foreign-again</x:href></x:outer>
<d:group xmlns:d="urn:not-dav"><d:href>/base/not-dav</d:href></d:group>
<d:owner><d:href
  >/dav/0123456789abcdef01234567/principals/%61lice/</d:href   ></d:owner>
<d:empty><d:href/><d:href></d:href></d:empty>
<name>/base/no-namespace</name><href>/base/no-namespace</href>
<D:href xmlns:D="DAV:">/dav/0123456789abcdef01234567/日本/é.ics</D:href>
</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
</d:multistatus>`;

const MULTIGET = `<?xml version="1.0" encoding="utf-8" ?>
<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop>
    <D:getetag/>
    <C:calendar-data/>
  </D:prop>
  <D:href>/dav/0123456789abcdef01234567/alice/cal/abcd1.ics</D:href>
  <D:href>https://director.example/dav/0123456789abcdef01234567/alice/cal/abcd%202.ics</D:href>
  <D:href>/elsewhere/x.ics</D:href>
</C:calendar-multiget>`;

const MULTIGET_ORIGIN = `<?xml version="1.0" encoding="utf-8" ?>
<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop>
    <D:getetag/>
    <C:calendar-data/>
  </D:prop>
  <D:href>/base/alice/cal/abcd1.ics</D:href>
  <D:href>https://dav.example.org/base/alice/cal/abcd%202.ics</D:href>
  <D:href>/elsewhere/x.ics</D:href>
</C:calendar-multiget>`;

describe("rewriteHrefs", () => {
  it("a Radicale PROPFIND answer: hrefs of responses and of properties, not the sync-token", () => {
    expect(rewriteHrefs(RADICALE, "toGateway", p)).toBe(RADICALE_GATEWAY);
  });

  it("a prefixed multistatus: only {DAV:}href, whatever its prefix; comments, CDATA, PIs, attributes kept", () => {
    expect(rewriteHrefs(PREFIXED, "toGateway", p)).toBe(PREFIXED_GATEWAY);
  });

  it("a calendar-multiget REPORT body, towards the origin", () => {
    expect(rewriteHrefs(MULTIGET, "toOrigin", p)).toBe(MULTIGET_ORIGIN);
  });

  it("an origin serving from its root", () => {
    const xml = `<D:multistatus xmlns:D="DAV:"><D:response><D:href>https://dav.example.org:8443/alice/</D:href></D:response><D:response><D:href>/bob/</D:href></D:response></D:multistatus>`;
    expect(rewriteHrefs(xml, "toGateway", root)).toBe(
      `<D:multistatus xmlns:D="DAV:"><D:response><D:href>https://director.example/dav/0123456789abcdef01234567/alice/</D:href></D:response><D:response><D:href>/dav/0123456789abcdef01234567/bob/</D:href></D:response></D:multistatus>`,
    );
  });

  it("keeps a byte order mark, and a document without hrefs as is", () => {
    expect(rewriteHrefs(`\uFEFF<href xmlns="DAV:">/base/a</href>`, "toGateway", p)).toBe(`\uFEFF<href xmlns="DAV:">/dav/${ID}/a</href>`);
    expect(rewriteHrefs("", "toGateway", p)).toBe("");
    expect(rewriteHrefs("just text, /base/x", "toGateway", p)).toBe("just text, /base/x");
  });

  it("an href holding markup is kept as received", () => {
    const xml = `<D:href xmlns:D="DAV:">/base/<!-- c -->a</D:href><D:href xmlns:D="DAV:"><![CDATA[/base/b]]></D:href><D:href xmlns:D="DAV:">/base/<x/>c</D:href>`;
    expect(rewriteHrefs(xml, "toGateway", p)).toBe(xml);
  });

  describe("malformed input passes through", () => {
    const cases: [string, string, string][] = [
      [
        "an unclosed tag at the end",
        `<D:multistatus xmlns:D="DAV:"><D:response><D:href>/base/a</D:href><D:propstat attr="x>`,
        `<D:multistatus xmlns:D="DAV:"><D:response><D:href>/dav/0123456789abcdef01234567/a</D:href><D:propstat attr="x>`,
      ],
      [
        "stray <",
        `<D:multistatus xmlns:D="DAV:">1 < 2 <3 <<D:href>/base/a < b</D:href> <</D:multistatus> <`,
        `<D:multistatus xmlns:D="DAV:">1 < 2 <3 <<D:href>/dav/0123456789abcdef01234567/a < b</D:href> <</D:multistatus> <`,
      ],
      [
        "unmatched end tags",
        `</D:x><D:m xmlns:D="DAV:"></D:y><D:href>/base/a</D:href></D:m></D:m></>`,
        `</D:x><D:m xmlns:D="DAV:"></D:y><D:href>/dav/0123456789abcdef01234567/a</D:href></D:m></D:m></>`,
      ],
      ["an unclosed href", `<D:href xmlns:D="DAV:">/base/a`, `<D:href xmlns:D="DAV:">/base/a`],
      ["an unclosed comment", `<a><!-- <D:href xmlns:D="DAV:">/base/a</D:href>`, `<a><!-- <D:href xmlns:D="DAV:">/base/a</D:href>`],
      ["an unfinished opener", `<a>text<!-`, `<a>text<!-`],
      ["a lone <", `<`, `<`],
      ["an unclosed quote", `<a b="c><D:href xmlns:D="DAV:">/base/a</D:href>`, `<a b="c><D:href xmlns:D="DAV:">/base/a</D:href>`],
    ];
    for (const [name, input, expected] of cases) {
      it(name, async () => {
        expect(rewriteHrefs(input, "toGateway", p)).toBe(expected);
        const bytes = encoder.encode(input);
        expect(decode(await streamed([...bytes].map((b) => Uint8Array.of(b)), "toGateway"))).toBe(expected);
      });
    }

    it("what is held is bounded: a 70 KB href goes out as is, a 70 KB unclosed tag is read as text", async () => {
      const long = `/base/${"a".repeat(70_000)}`;
      const garbage = `<a${" b".repeat(35_000)}`;
      const input = `<D:m xmlns:D="DAV:"><D:href>${long}</D:href>${garbage}<D:href>/base/x</D:href></D:m>`;
      const expected = `<D:m xmlns:D="DAV:"><D:href>${long}</D:href>${garbage}<D:href>/dav/${ID}/x</D:href></D:m>`;
      expect(rewriteHrefs(input, "toGateway", p)).toBe(expected);
      const bytes = encoder.encode(input);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < bytes.length; at += 1024) chunks.push(bytes.slice(at, at + 1024));
      expect(decode(await streamed(chunks, "toGateway"))).toBe(expected);
    });

    it("elements nested deeper than 256 are not tracked: an href there is kept", () => {
      const open = (n: number) => "<x:e>".repeat(n);
      const close = (n: number) => "</x:e>".repeat(n);
      const input = `<x:m xmlns:x="DAV:">${open(99)}<x:href>/base/a</x:href>${open(200)}<x:href>/base/b</x:href>${close(299)}<x:href>/base/c</x:href></x:m>`;
      expect(rewriteHrefs(input, "toGateway", p)).toBe(
        `<x:m xmlns:x="DAV:">${open(99)}<x:href>/dav/${ID}/a</x:href>${open(200)}<x:href>/base/b</x:href>${close(299)}<x:href>/dav/${ID}/c</x:href></x:m>`,
      );
    });

    it("bytes that are not UTF-8 are kept byte for byte; such an href is not rewritten", async () => {
      const input = concatBytes([
        encoder.encode(`<D:m xmlns:D="DAV:">`),
        Uint8Array.of(0xff, 0xc3),
        encoder.encode(`<D:href>/base/`),
        Uint8Array.of(0xc3, 0x28),
        encoder.encode(`</D:href><D:href>/base/ok</D:href></D:m>`),
      ]);
      const expected = concatBytes([
        encoder.encode(`<D:m xmlns:D="DAV:">`),
        Uint8Array.of(0xff, 0xc3),
        encoder.encode(`<D:href>/base/`),
        Uint8Array.of(0xc3, 0x28),
        encoder.encode(`</D:href><D:href>/dav/${ID}/ok</D:href></D:m>`),
      ]);
      expect(await streamed([input], "toGateway")).toEqual(expected);
      expect(await streamed([...input].map((b) => Uint8Array.of(b)), "toGateway")).toEqual(expected);
    });
  });
});

describe("rewriteHrefsStream", () => {
  for (const [name, doc] of [
    ["Radicale", RADICALE],
    ["prefixed", PREFIXED],
  ]) {
    it(`${name}: 1-byte chunks and every 2-way split give the whole-string result`, async () => {
      const whole = rewriteHrefs(doc, "toGateway", p);
      expect(whole).toBe(name === "Radicale" ? RADICALE_GATEWAY : PREFIXED_GATEWAY);
      const bytes = encoder.encode(doc);
      expect(decode(await streamed([...bytes].map((b) => Uint8Array.of(b)), "toGateway"))).toBe(whole);
      for (let at = 0; at <= bytes.length; at++) {
        const out = decode(await streamed([bytes.subarray(0, at), bytes.subarray(at)], "toGateway"));
        if (out !== whole) expect({ splitAt: at, out }).toEqual({ splitAt: at, out: whole });
      }
    });
  }

  it("a multi-byte character of an href split across chunks", async () => {
    const doc = `<D:href xmlns:D="DAV:">https://dav.example.org/base/日本/é.ics</D:href>`;
    const expected = encoder.encode(`<D:href xmlns:D="DAV:">https://director.example/dav/${ID}/日本/é.ics</D:href>`);
    const bytes = encoder.encode(doc);
    const first = bytes.indexOf(0xe6); // 日 is E6 97 A5
    const e = bytes.indexOf(0xc3); // é is C3 A9
    for (const at of [first + 1, first + 2, first + 4, e + 1]) {
      expect(await streamed([bytes.subarray(0, at), bytes.subarray(at)], "toGateway")).toEqual(expected);
    }
    expect(await streamed([bytes.subarray(0, first + 1), bytes.subarray(first + 1, e + 1), bytes.subarray(e + 1)], "toGateway")).toEqual(expected);
  });

  it("output reaches the reader before the input has ended: 2,000 responses in 1 KiB chunks", async () => {
    const responses = Array.from(
      { length: 2000 },
      (_, i) =>
        `<D:response><D:href>/base/alice/cal/event-${i}.ics</D:href><D:propstat><D:prop><D:getetag>"${i}"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>\n`,
    );
    const doc = `<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">\n${responses.join("")}</D:multistatus>\n`;
    const bytes = encoder.encode(doc);
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += 1024) chunks.push(bytes.slice(at, at + 1024));
    expect(chunks.length).toBeGreaterThan(300);

    const transform = rewriteHrefsStream("toGateway", p);
    const writer = transform.writable.getWriter();
    const reader = transform.readable.getReader();
    const events: string[] = [];
    const parts: Uint8Array[] = [];
    const writing = (async () => {
      for (const [i, chunk] of chunks.entries()) {
        events.push(`write ${i}`);
        await writer.write(chunk);
      }
      events.push("close");
      await writer.close();
    })();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      events.push("read");
      parts.push(r.value);
    }
    await writing;

    expect(events.indexOf("read")).toBeGreaterThanOrEqual(0);
    expect(events.indexOf("read")).toBeLessThan(events.indexOf(`write ${chunks.length - 1}`));
    expect(parts.length).toBeGreaterThan(100);
    const out = decode(concatBytes(parts));
    expect(out).toBe(rewriteHrefs(doc, "toGateway", p));
    expect(out).toContain(`<D:href>/dav/${ID}/alice/cal/event-1999.ics</D:href>`);
    expect(out).not.toContain("/base/");
  });

  it("everything up to the end of a response is out once it has arrived", async () => {
    const first = `<D:multistatus xmlns:D="DAV:"><D:response><D:href>/base/a.ics</D:href></D:response>`;
    const transform = rewriteHrefsStream("toGateway", p);
    const writer = transform.writable.getWriter();
    const reader = transform.readable.getReader();
    void writer.write(encoder.encode(first));
    const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 1000));
    const r = await Promise.race([reader.read(), timeout]);
    expect(r === "timeout" ? r : decode(r.value!)).toBe(`<D:multistatus xmlns:D="DAV:"><D:response><D:href>/dav/${ID}/a.ics</D:href></D:response>`);
    void writer.write(encoder.encode(`<D:response><D:href>/base/b`));
    void writer.close();
    const rest: Uint8Array[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest.push(r.value);
    expect(decode(concatBytes(rest))).toBe(`<D:response><D:href>/base/b`);
  });
});
