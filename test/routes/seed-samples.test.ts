// The early draft's sample requests (../shared/seeds/002_*.txt), taken out of its text and sent as
// written (only the Bearer token is this run's): its POST /notify and POST /subscribe must work.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { bearer, createTenant } from "../helpers";

interface SampleRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: string;
}

/** Every HTTP request in a fenced block of the seed: request line, header lines, blank line, body. */
function sampleRequests(text: string): SampleRequest[] {
  const requests: SampleRequest[] = [];
  for (const [, block] of text.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)) {
    const head = /^(GET|POST|PUT|DELETE|PATCH) (\S+)\n((?:[^\n]+\n)*)\n([\s\S]*)$/.exec(block);
    if (head === null) continue;
    const headers = head[3]
      .split("\n")
      .filter((line) => line !== "")
      .map((line): [string, string] => [line.slice(0, line.indexOf(":")).trim(), line.slice(line.indexOf(":") + 1).trim()]);
    requests.push({ method: head[1], url: head[2], headers, body: head[4].trimEnd() });
  }
  return requests;
}

const SAMPLES = sampleRequests(env.TEST_SEED_002);
const sample = (pathname: string) => {
  const found = SAMPLES.filter((s) => new URL(s.url).pathname === pathname);
  expect(found, `the seed's sample POST ${pathname}`).toHaveLength(1);
  return found[0];
};

/** The sample as written, its own Bearer token (a placeholder) swapped for the tenant's notify token. */
function send(request: SampleRequest, token: string): Promise<Response> {
  const headers = new Headers(request.headers);
  expect(headers.get("Authorization")).toMatch(/^Bearer /);
  headers.set("Authorization", bearer(token).Authorization);
  return exports.default.fetch(new Request(request.url, { method: request.method, headers, body: request.body }));
}

describe("the early draft's sample requests, sent as written", () => {
  it("are in the seed: POST /notify and POST /subscribe with JSON bodies", () => {
    for (const pathname of ["/notify", "/subscribe"]) {
      const request = sample(pathname);
      expect(request.method).toBe("POST");
      expect(new Headers(request.headers).get("Content-Type")).toBe("application/json");
      expect(() => JSON.parse(request.body)).not.toThrow();
    }
  });

  it("POST /notify → 202", async () => {
    const tenant = await createTenant();
    const response = await send(sample("/notify"), tenant.notify_token);
    expect(response.status, await response.clone().text()).toBe(202);
  });

  it('POST /subscribe → 201 "transport": "unified_push", absolute Location, Expires 7 days ahead', async () => {
    const request = sample("/subscribe");
    const body = JSON.parse(request.body) as { topic: string; client_id: string; push_services: Record<string, { endpoint?: string }>; expires: number };
    // what makes the answer: two push services (fcm, and unified_push without keys, usable while
    // REQUIRE_ENCRYPTION is off), of which the preference web_push,unified_push,… picks unified_push;
    // and an expires in 2023, already past, so no wish: the maximum
    expect(Object.keys(body.push_services).sort()).toEqual(["fcm", "unified_push"]);
    expect(body.expires * 1000).toBeLessThan(Date.now());

    const tenant = await createTenant();
    const before = Math.floor(Date.now() / 1000);
    const response = await send(request, tenant.notify_token);
    const after = Math.floor(Date.now() / 1000);
    const json = await response.clone().json<Record<string, unknown>>().catch(() => null);
    expect(response.status, JSON.stringify(json)).toBe(201);
    expect(json).toMatchObject({ topic: body.topic, client_id: body.client_id, transport: "unified_push" });

    const location = response.headers.get("Location")!;
    expect(location).toMatch(/^https:\/\/push-director\.example\.com\/v1\/registrations\/[A-Za-z0-9_-]{22}$/);
    const expires = Date.parse(response.headers.get("Expires")!) / 1000;
    expect(expires).toBeGreaterThanOrEqual(before + 7 * 86_400);
    expect(expires).toBeLessThanOrEqual(after + 7 * 86_400);

    // the registration URL answers with what was registered: only the chosen service
    const registration = await exports.default.fetch(new Request(location, { headers: bearer(tenant.notify_token) }));
    expect(registration.status).toBe(200);
    expect(await registration.json()).toMatchObject({ topic: body.topic, transport: "unified_push" });
    const rows = await env.DB.prepare("SELECT COUNT(*) AS n FROM registrations WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>();
    expect(rows!.n).toBe(1);
  });
});
