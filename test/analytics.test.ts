import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { deliveryPoint, requestPoint, writePoint } from "../src/analytics";
import { app } from "../src/app";
import { ADMIN, bearer, createTenant } from "./helpers";

/** A dataset that keeps what is written, to read back (the local binding writes nowhere). */
function recordingDataset() {
  const points: AnalyticsEngineDataPoint[] = [];
  return { points, dataset: { writeDataPoint: (point?: AnalyticsEngineDataPoint) => void points.push(point!) } as AnalyticsEngineDataset };
}

const fetchWith = (over: Record<string, unknown>, path: string, init: RequestInit = {}) =>
  app.fetch(new Request(`https://director.test${path}`, init), { ...env, ...over } as Env, { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext);

describe("Analytics Engine points", () => {
  it("writes one point per request: tenant as index, the route pattern, never the path, query or token", async () => {
    const tenant = await createTenant();
    const { points, dataset } = recordingDataset();
    const response = await fetchWith({ ANALYTICS: dataset }, "/v1/registrations/00000000000000000000000000000000?access_token=secret-grant", {
      headers: bearer(tenant.notify_token),
    });
    expect(response.status).toBe(404);
    expect(points).toHaveLength(1);
    const [point] = points;
    expect(point.indexes).toEqual([tenant.id]);
    expect(point.blobs).toEqual(["request", "GET", "/v1/registrations/:id", tenant.id]);
    expect(point.doubles![0]).toBe(404);
    expect(point.doubles![1]).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(point)).not.toMatch(/secret-grant|0000000000000000|pdn_/);
  });

  it("writes nothing and fails nothing without the binding, or when a write throws", async () => {
    expect((await fetchWith({ ANALYTICS: undefined }, "/v1/admin/vapid", { headers: ADMIN })).status).toBe(200);
    const throwing = { writeDataPoint: () => { throw new Error("dataset gone"); } } as unknown as AnalyticsEngineDataset;
    expect((await fetchWith({ ANALYTICS: throwing }, "/v1/admin/vapid", { headers: ADMIN })).status).toBe(200);
    expect(() => writePoint({ ANALYTICS: throwing }, requestPoint({ method: "GET", route: "/", status: 200, ms: 1, tenant: null }))).not.toThrow();
  });

  it("shapes a delivery attempt as blobs to group by and doubles to measure", () => {
    expect(deliveryPoint({ tenant: "t1", transport: "web_push", host: "push.example", outcome: "retrying", status: 503, count: 7, ms: 12, attempt: 2 })).toEqual({
      indexes: ["t1"],
      blobs: ["delivery", "web_push", "push.example", "retrying", "t1"],
      doubles: [503, 12, 2, 7],
    });
  });

  it("is bound in the tests as an operator binds it, and requests pass through the real binding", async () => {
    expect(typeof (env as { ANALYTICS?: AnalyticsEngineDataset }).ANALYTICS?.writeDataPoint).toBe("function");
    expect((await fetchWith({}, "/v1/admin/vapid", { headers: ADMIN })).status).toBe(200);
  });
});
