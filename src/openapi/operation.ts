/**
 * What a route tells the API document about itself (OpenAPI 3.1, §4.8.10 Operation Object): a
 * middleware that does nothing at request time and carries its description, so the document is
 * read off the app's own routes (`app.routes`) and a route without one is noticed, never skipped.
 * Request schemas are the zod schemas the handler validates with, passed here by reference.
 */
import type { MiddlewareHandler } from "hono";
import type { z } from "zod";

/** The three bearer credentials (README: API); one entry of `security` is one way to be let in. */
export type Credential = "adminToken" | "notifyToken" | "clientGrant";

export interface ResponseSpec {
  description: string;
  /** JSON body: a schema when there is one to share, `true` for "a JSON object"; 4xx default to Error. */
  json?: z.ZodType | true;
  /** another media type, e.g. `application/xml` */
  content?: string;
  headers?: Record<string, string>;
}

export interface OperationSpec {
  summary: string;
  description?: string;
  /**
   * Who may call, for handlers that authenticate themselves; routes behind requireAdmin,
   * requireTenant or requireTenantOrGrant get theirs from that middleware. `[]` inside = optional.
   */
  security?: Credential[][];
  /** path parameters' schemas (default: a string) */
  params?: Record<string, z.ZodType>;
  query?: z.ZodType;
  body?: { json: z.ZodType; optional?: boolean; description?: string } | { content: string; description: string };
  /** success answers and the errors particular to this route; the builder adds the generic ones */
  responses: Record<number, ResponseSpec>;
}

export interface DocumentedOperation extends OperationSpec {
  tag: string;
}

const OPERATION = Symbol("openapi operation");

type Documented = MiddlewareHandler & { [OPERATION]: DocumentedOperation };

/** `const operation = operations("Operator")`, then `admin.get("/x", operation({…}), handler)`. */
export function operations(tag: string) {
  return (spec: OperationSpec): MiddlewareHandler => {
    const middleware = ((_c, next) => next()) as Documented;
    middleware[OPERATION] = { ...spec, tag };
    return middleware;
  };
}

/** The description a route handler carries, if it is one of ours. */
export function operationOf(handler: unknown): DocumentedOperation | undefined {
  return typeof handler === "function" ? (handler as Partial<Documented>)[OPERATION] : undefined;
}
