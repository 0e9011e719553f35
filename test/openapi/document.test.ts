import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { app } from "../../src/app";
import { requireAdmin, requireTenantOrGrant } from "../../src/auth/middleware";
import { openApiDocument, UndocumentedRoute } from "../../src/openapi/document";
import { operations } from "../../src/openapi/operation";

const operation = operations("Test");

describe("openApiDocument", () => {
  it("turns each routed method into an operation, with path parameters, query and body from the handler's schemas", () => {
    const body = z.object({ name: z.string().min(1).max(10), n: z.number().int().optional() });
    const query = z.object({ limit: z.coerce.number().int().min(1).max(5).default(2), order: z.enum(["a", "b"]).optional() });
    const sub = new Hono();
    sub.use(requireAdmin);
    sub.post("/things/:id", operation({ summary: "make", body: { json: body }, query, responses: { 201: { description: "made", json: true, headers: { Location: "where" } } } }), (c) => c.body(null));
    const root = new Hono();
    root.route("/v9", sub);
    const doc = openApiDocument(root.routes, "https://example.test", "1.2.3");

    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers).toEqual([{ url: "https://example.test" }]);
    const op = doc.paths["/v9/things/{id}"].post;
    expect(op.security).toEqual([{ adminToken: [] }]);
    expect(op.parameters).toEqual([
      { name: "id", in: "path", required: true, schema: { type: "string" } },
      { name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 5, default: 2 } },
      { name: "order", in: "query", required: false, schema: { type: "string", enum: ["a", "b"] } },
    ]);
    expect(op.requestBody).toEqual({
      required: true,
      content: {
        "application/json": {
          schema: {
            type: "object",
            properties: { name: { type: "string", minLength: 1, maxLength: 10 }, n: { type: "integer", minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER } },
            required: ["name"],
          },
        },
      },
    });
    // the generic errors an admin route with a body and a query can answer, each the Error schema
    expect(Object.keys(op.responses)).toEqual(["201", "400", "401", "413", "415", "429"]);
    expect(op.responses["201"].headers).toEqual({ Location: { description: "where", schema: { type: "string" } } });
    expect(op.responses["415"].content).toEqual({ "application/json": { schema: { $ref: "#/components/schemas/Error" } } });
  });

  it("takes a tenant route's credentials from its middleware, and declared ones from a handler that checks itself", () => {
    const root = new Hono();
    root.get("/a", operation({ summary: "a", responses: { 200: { description: "ok" } } }), requireTenantOrGrant, (c) => c.body(null));
    root.delete("/b", operation({ summary: "b", security: [[], ["clientGrant"]], responses: { 204: { description: "gone" } } }), (c) => c.body(null));
    const doc = openApiDocument(root.routes, "https://example.test", "1");
    expect(doc.paths["/a"].get.security).toEqual([{ notifyToken: [] }, { clientGrant: [] }]);
    expect(Object.keys(doc.paths["/a"].get.responses)).toEqual(["200", "401", "403", "429"]);
    // optional credentials: no 401 promised
    expect(doc.paths["/b"].delete.security).toEqual([{}, { clientGrant: [] }]);
    expect(Object.keys(doc.paths["/b"].delete.responses)).toEqual(["204", "403"]);
  });

  it("describes a described route for any method as each method a Path Item holds, its wildcard as {path}", () => {
    const root = new Hono();
    root.use(requireAdmin);
    root.all("/proxy/:id/*", operation({ summary: "any", security: [], responses: { 200: { description: "ok" } } }), (c) => c.body(null));
    root.get("/ui/*", (_c, next) => next());
    const doc = openApiDocument(root.routes, "https://example.test", "1");
    expect(Object.keys(doc.paths)).toEqual(["/proxy/{id}/{path}"]);
    expect(Object.keys(doc.paths["/proxy/{id}/{path}"])).toEqual(["get", "put", "post", "delete", "options", "head", "patch"]);
    expect(doc.paths["/proxy/{id}/{path}"].propfind).toBeUndefined();
    expect(doc.paths["/proxy/{id}/{path}"].get.parameters!.map((p) => p.name)).toEqual(["id", "path"]);
  });

  it("refuses a route that carries no description, naming it", () => {
    const root = new Hono();
    root.get("/described", operation({ summary: "x", responses: { 200: { description: "ok" } } }), (c) => c.body(null));
    root.put("/forgotten/:id", (c) => c.body(null));
    expect(() => openApiDocument(root.routes, "https://example.test", "1")).toThrow(new UndocumentedRoute("PUT /forgotten/:id has no operation({…}) description"));
  });
});

describe("the director's document", () => {
  const doc = openApiDocument(app.routes, "https://director.test", "0");
  const documented = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));

  it("has every route the app answers, per method, and nothing else", () => {
    const routed = app.routes.filter((r) => r.method !== "ALL" && !r.path.includes("*")).map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
    // the gateway answers any method below /dav/{tenant}: each a Path Item can hold
    const gateway = ["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH"].map((m) => `${m} /dav/{tenant}/{path}`);
    expect(new Set(documented)).toEqual(new Set([...routed, ...gateway]));
    // the README's API and the early draft's paths, among others
    for (const op of [
      "POST /v1/admin/tenants",
      "GET /v1/admin/tenants/{id}",
      "PUT /v1/admin/tenants/{id}/limits",
      "POST /v1/notify",
      "POST /notify",
      "POST /subscribe",
      "POST /unsubscribe",
      "GET /v1/registrations/{id}",
      "DELETE /v1/registrations/{id}",
      "POST /v1/register",
      "GET /v1/ws",
      "GET /healthz",
      "GET /.well-known/webdav-push",
      "GET /v1/openapi.json",
      "GET /docs",
    ]) {
      expect(documented).toContain(op);
    }
  });

  it("gives each operation a unique operationId, a summary and at least one success answer", () => {
    const ops = Object.values(doc.paths).flatMap((methods) => Object.values(methods));
    expect(new Set(ops.map((op) => op.operationId)).size).toBe(ops.length);
    for (const op of ops) {
      expect(op.summary).not.toBe("");
      expect(Object.keys(op.responses).some((status) => Number(status) < 400)).toBe(true);
    }
  });

  it("uses bearer schemes for the admin token, notify token and grants", () => {
    expect(doc.components.securitySchemes).toMatchObject({
      adminToken: { type: "http", scheme: "bearer" },
      notifyToken: { type: "http", scheme: "bearer" },
      clientGrant: { type: "http", scheme: "bearer" },
    });
    expect(doc.paths["/v1/admin/vapid"].get.security).toEqual([{ adminToken: [] }]);
    expect(doc.paths["/v1/notify"].post.security).toEqual([{ notifyToken: [] }]);
    expect(doc.paths["/v1/subscriptions"].post.security).toEqual([{ notifyToken: [] }, { clientGrant: [] }]);
    expect(doc.paths["/healthz"].get.security).toEqual([]);
  });

  it("answers every JSON 4xx with the Error schema", () => {
    expect(doc.components.schemas.Error).toMatchObject({
      type: "object",
      required: ["error"],
      properties: { error: { type: "object", required: ["code", "message"] } },
    });
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        for (const [status, answer] of Object.entries(op.responses)) {
          if (Number(status) < 400 || Number(status) >= 500 || answer.content?.["application/json"] === undefined) continue;
          expect(answer.content["application/json"].schema, `${method} ${path} ${status}`).toEqual({ $ref: "#/components/schemas/Error" });
        }
      }
    }
  });

  it("names Location and Expires on a registration, and XML bodies as application/xml", () => {
    expect(Object.keys(doc.paths["/v1/subscriptions"].post.responses["201"].headers!)).toEqual(["Location", "Expires"]);
    const register = doc.paths["/v1/register"].post;
    expect(Object.keys(register.responses["204"].headers!)).toEqual(["Location", "Expires"]);
    expect(Object.keys(register.requestBody!.content)).toEqual(["application/xml"]);
    expect(Object.keys(register.responses["403"].content!)).toEqual(["application/xml"]);
    expect(Object.keys(doc.paths["/v1/transports.xml"].get.responses["200"].content!)).toEqual(["application/xml"]);
  });

  it("describes a request body with the schema its handler validates with", () => {
    const create = doc.paths["/v1/admin/tenants"].post.requestBody!.content["application/json"].schema;
    expect(create).toEqual({ type: "object", properties: { name: { type: "string", minLength: 1, maxLength: 200 } }, required: ["name"] });
    const limits = doc.paths["/v1/admin/tenants/{id}/limits"].put.requestBody!.content["application/json"].schema as { additionalProperties: boolean; required: string[] };
    expect(limits.additionalProperties).toBe(false);
    expect(limits.required).toHaveLength(5);
    // push_services: an FCM token's platform, and apns / apn, taken only to be refused
    type Props = { properties: Record<string, Props & { description?: string }> };
    const subscribe = doc.paths["/v1/subscriptions"].post.requestBody!.content["application/json"].schema as Props;
    const services = subscribe.properties.push_services.properties;
    expect(services.fcm.properties.platform).toEqual({ type: "string", enum: ["android", "ios"] });
    for (const name of ["apns", "apn"]) expect(services[name].description).toMatch(/"platform": "ios"/);
  });
});
