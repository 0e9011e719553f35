/**
 * The API document (`GET /v1/openapi.json`, OpenAPI 3.1), read off the app's routes: every
 * (method, path) the router answers is an operation, described by the `operation({…})` middleware
 * in its handler chain, with request schemas converted from the very zod schemas the handler
 * validates with (zod's JSON Schema output is draft 2020-12, the dialect OpenAPI 3.1 uses, §4.8.24).
 * Pure: routes and server URL in, document out.
 */
import { z } from "zod";
import { requireAdmin, requireTenant, requireTenantOrGrant } from "../auth/middleware";
import { operationOf, type Credential, type DocumentedOperation, type ResponseSpec } from "./operation";

/** What Hono's `app.routes` holds per handler (method, full path, handler). */
export interface RouteEntry {
  method: string;
  path: string;
  handler: unknown;
}

/** `{"error": {"code", "message"}}`: every JSON 4xx (src/app.ts errorJson); quota refusals add fields. */
const errorSchema = z.object({
  error: z.looseObject({
    code: z.string().describe("machine-readable, e.g. invalid_request, quota_exceeded"),
    message: z.string().describe("what is wrong, for a person"),
  }),
});

const SECURITY_SCHEMES: Record<Credential, { type: string; scheme: string; description: string; bearerFormat?: string }> = {
  adminToken: { type: "http", scheme: "bearer", description: "the operator's ADMIN_TOKEN" },
  notifyToken: { type: "http", scheme: "bearer", description: "a tenant's notify token, `pdn_<tenant id>_<secret>`" },
  clientGrant: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "a client grant a tenant minted for one of its users (iss = tenant id, sub = user, topics)" },
};

/** The authentication middlewares and whom each lets in. */
const GUARDS = new Map<unknown, Credential[][]>([
  [requireAdmin, [["adminToken"]]],
  [requireTenant, [["notifyToken"]]],
  [requireTenantOrGrant, [["notifyToken"], ["clientGrant"]]],
]);

const GENERIC_ERRORS: Record<number, string> = {
  400: "the request is malformed or invalid; the message names each offending field",
  401: "credentials missing or refused",
  403: "the caller may not do this (e.g. a disabled tenant)",
  413: "the body is larger than the limit",
  415: "the body is not of the expected media type",
  429: "past a quota or rate (quota_exceeded, rate_limited), or too many failed authentications from this address; see Retry-After",
};

export interface ApiDocument {
  openapi: "3.1.0";
  info: { title: string; version: string; description?: string; license: { name: string; identifier: string } };
  servers: { url: string }[];
  paths: Record<string, Record<string, OperationObject>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string; scheme: string; description?: string }> };
}

export interface OperationObject {
  operationId: string;
  tags: string[];
  summary: string;
  description?: string;
  security: Record<string, string[]>[];
  parameters?: { name: string; in: string; required: boolean; schema: Record<string, unknown> }[];
  requestBody?: { required: boolean; description?: string; content: Record<string, { schema?: unknown }> };
  responses: Record<string, { description: string; content?: Record<string, { schema?: unknown }>; headers?: Record<string, { description: string }> }>;
}

export class UndocumentedRoute extends Error {}

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
}

/**
 * `/v1/registrations/:id` → `/v1/registrations/{id}` and its parameter names; a trailing `*` of a
 * route that takes any path below (the gateway's) is the parameter `path`.
 */
function openApiPath(path: string): { path: string; names: string[] } {
  const names: string[] = [];
  const converted = path
    .replace(/:(\w+)(\{[^}]*\})?/g, (_m, name: string) => {
      names.push(name);
      return `{${name}}`;
    })
    .replace(/\/\*$/, () => {
      names.push("path");
      return "/{path}";
    });
  return { path: converted, names };
}

/** The methods a Path Item can hold (OpenAPI 3.1 §4.8.9); a route for any method is each of them. */
const PATH_ITEM_METHODS = ["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH"];

/** Does a middleware's pattern (`/v1/admin/*`, `/*`) cover this route's path? */
function covers(pattern: string, path: string): boolean {
  if (pattern === path) return true;
  if (!pattern.endsWith("/*")) return false;
  const prefix = pattern.slice(0, -2);
  return path === prefix || path.startsWith(`${prefix}/`);
}

type ResponseObject = OperationObject["responses"][string];

function response(status: number, spec: ResponseSpec | undefined): ResponseObject {
  const description = spec?.description ?? GENERIC_ERRORS[status] ?? "error";
  const out: ResponseObject = { description };
  if (spec?.content !== undefined) out.content = { [spec.content]: {} };
  else if (spec?.json !== undefined) {
    out.content = { "application/json": { schema: spec.json === true ? { type: "object" } : jsonSchema(spec.json) } };
  } else if (status >= 400 && status < 500) out.content = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };
  if (spec?.headers !== undefined) {
    out.headers = Object.fromEntries(Object.entries(spec.headers).map(([name, text]) => [name, { description: text, schema: { type: "string" } }]));
  }
  return out;
}

function operationObject(method: string, path: string, names: string[], op: DocumentedOperation, guarded: Credential[][] | undefined): OperationObject {
  const security = op.security ?? guarded ?? [];
  const parameters: NonNullable<OperationObject["parameters"]> = names.map((name) => ({
    name,
    in: "path",
    required: true,
    schema: op.params?.[name] === undefined ? { type: "string" } : jsonSchema(op.params[name]),
  }));
  if (op.query !== undefined) {
    const query = jsonSchema(op.query) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
    for (const [name, schema] of Object.entries(query.properties ?? {})) {
      parameters.push({ name, in: "query", required: query.required?.includes(name) ?? false, schema });
    }
  }
  const generic = new Set<number>();
  if (security.length > 0 && security.every((way) => way.length > 0)) [401, 429].forEach((s) => generic.add(s));
  if (security.some((way) => way.includes("notifyToken") || way.includes("clientGrant"))) generic.add(403);
  if (op.query !== undefined || op.params !== undefined) generic.add(400);
  if (op.body !== undefined) [400, 413, 415].forEach((s) => generic.add(s));
  const statuses = [...new Set([...Object.keys(op.responses).map(Number), ...generic])].sort((a, b) => a - b);

  const operation: OperationObject = {
    operationId: `${method.toLowerCase()}${path.replace(/\{(\w+)\}/g, "By_$1").replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase())}`,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description === undefined ? {} : { description: op.description }),
    security: security.map((way) => Object.fromEntries(way.map((credential) => [credential, []]))),
    ...(parameters.length === 0 ? {} : { parameters }),
    responses: Object.fromEntries(statuses.map((status) => [String(status), response(status, op.responses[status])])),
  };
  if (op.body !== undefined) {
    operation.requestBody =
      "json" in op.body
        ? { required: op.body.optional !== true, ...(op.body.description ? { description: op.body.description } : {}), content: { "application/json": { schema: jsonSchema(op.body.json) } } }
        : { required: true, description: op.body.description, content: { [op.body.content]: {} } };
  }
  return operation;
}

/** The document; throws UndocumentedRoute naming any route without an `operation({…})`. */
export function openApiDocument(routes: readonly RouteEntry[], serverUrl: string, version: string): ApiDocument {
  // `use()` registers ALL, and a wildcard path runs before others: middleware, unless described
  // (the gateway takes any method on any path below it)
  const isMiddleware = (route: RouteEntry) => (route.method === "ALL" || route.path.includes("*")) && operationOf(route.handler) === undefined;
  const middleware = routes.filter(isMiddleware);
  const byOperation = new Map<string, RouteEntry[]>();
  for (const route of routes) {
    if (isMiddleware(route)) continue;
    for (const method of route.method === "ALL" ? PATH_ITEM_METHODS : [route.method]) {
      const key = `${method} ${route.path}`;
      byOperation.set(key, [...(byOperation.get(key) ?? []), { ...route, method }]);
    }
  }
  const paths: Record<string, Record<string, OperationObject>> = {};
  for (const [key, entries] of byOperation) {
    const { method, path } = entries[0];
    const op = entries.map((entry) => operationOf(entry.handler)).find((found) => found !== undefined);
    if (op === undefined) throw new UndocumentedRoute(`${key} has no operation({…}) description`);
    const guards = [...middleware.filter((m) => covers(m.path, path)), ...entries].map((entry) => GUARDS.get(entry.handler)).find((g) => g !== undefined);
    const { path: documentedPath, names } = openApiPath(path);
    paths[documentedPath] ??= {};
    paths[documentedPath][method.toLowerCase()] = operationObject(method, documentedPath, names, op, guards);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Push Director",
      version,
      description: "A WebDAV-Push director: WebDAV servers notify it of changes, clients register for push, and it delivers over Web Push, FCM and WebSockets.",
      license: { name: "MIT", identifier: "MIT" },
    },
    servers: [{ url: serverUrl }],
    paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))),
    components: { schemas: { Error: jsonSchema(errorSchema) }, securitySchemes: SECURITY_SCHEMES },
  };
}
