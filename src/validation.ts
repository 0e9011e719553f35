/** Request validation: the zod schemas routes share and the helpers that turn a mismatch into a 400. */
import type { Context } from "hono";
import { z } from "zod";
import { ApiError, badRequest } from "./errors";
import { topicProblem } from "./topic";

/** A topic as JSON or a path segment: a string that passes the one topic rule (src/topic.ts), kept as sent. */
export const topicSchema = z.string().superRefine((value, ctx) => {
  const problem = topicProblem(value);
  if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
});

/** `{DAV:}depth` as JSON: 0, 1 or "infinity" ("0"/"1" as strings too, as in XML). */
export const depthSchema = z.union([z.literal(0), z.literal(1), z.literal("0"), z.literal("1"), z.literal("infinity")], {
  error: 'must be 0, 1 or "infinity"',
});

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "body"}: ${issue.message}`)
    .join("; ");
}

/** Checks a value against a schema; a mismatch is a 400 that names each offending field. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw badRequest("invalid_request", describe(result.error));
  return result.data;
}

/** Reads a JSON request body (size already capped by the app's body limit) and validates it. */
export async function readJson<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const type = c.req.header("Content-Type");
  if (type !== undefined && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
    throw new ApiError(415, "unsupported_media_type", `expected Content-Type: application/json, got ${JSON.stringify(type)}`);
  }
  const text = await c.req.text();
  if (text.trim() === "") throw badRequest("invalid_json", "the request body is empty; send a JSON object");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw badRequest("invalid_json", `the request body is not valid JSON: ${(error as Error).message}`);
  }
  return parseWith(schema, value);
}

/** Like readJson, but an absent body means `{}` (for POSTs whose options all have defaults). */
export async function readOptionalJson<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const hasBody = (c.req.header("Content-Length") ?? "0") !== "0" || c.req.header("Transfer-Encoding") !== undefined;
  return hasBody ? readJson(c, schema) : parseWith(schema, {});
}
