import { Hono, type Context } from "hono";
import { z } from "zod";
import { requireTenantOrGrant } from "../auth/middleware";
import { readConfig } from "../config";
import { keyringOf } from "../crypto/sealed";
import { notFound } from "../errors";
import { imfFixdate, nowSeconds } from "../expiry";
import { depthToJson } from "../depth";
import { deleteRegistration, getRegistration, listRegistrations, type Actor, type RegistrationRow } from "../store/registrations";
import type { AppEnv, Principal } from "../types";
import { parseWith, topicSchema } from "../validation";

export const actorOf = (principal: Principal): Actor => ({
  tenantId: principal.tenant.id,
  owner: principal.kind === "grant" ? principal.sub : null,
});

/** The draft's registration URL: absolute, the exact form clients hand back in Push-Dont-Notify. */
export function registrationUrl(c: Context<AppEnv>, id: string): string {
  const base = readConfig(c.env).publicBaseUrl ?? new URL(c.req.url).origin;
  return `${base}/v1/registrations/${id}`;
}

export function registrationJson(c: Context<AppEnv>, row: RegistrationRow) {
  return {
    id: row.id,
    url: registrationUrl(c, row.id),
    topic: row.topic,
    transport: row.transport,
    ...(row.transport === "web_push" ? { push_resource: row.identifier } : { registration_token: row.identifier }),
    client_id: row.client_id,
    owner: row.owner,
    trigger: {
      content_update: row.content_update_depth === null ? null : { depth: depthToJson(row.content_update_depth) },
      property_update:
        row.property_update_depth === null
          ? null
          : {
              depth: depthToJson(row.property_update_depth),
              props: row.property_update_props === null ? null : (JSON.parse(row.property_update_props) as string[]),
            },
    },
    expires: imfFixdate(row.expires_at),
    expires_at: row.expires_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

const ID = /^[A-Za-z0-9_-]{22}$/;

const listQuery = z.object({
  topic: topicSchema.optional(),
  cursor: z.string().regex(ID, "must be a registration id from next_cursor").optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

export const registrations = new Hono<AppEnv>();

registrations.use(requireTenantOrGrant);

/** A user's own live registrations, or with the tenant token all of the tenant's. */
registrations.get("/", async (c) => {
  const query = parseWith(listQuery, c.req.query());
  const rows = await listRegistrations(c.env.DB, () => keyringOf(c.env), actorOf(c.get("principal")), {
    topic: query.topic ?? null,
    after: query.cursor ?? "",
    limit: query.limit,
    now: nowSeconds(),
  });
  return c.json({
    registrations: rows.map((row) => registrationJson(c, row)),
    next_cursor: rows.length === query.limit ? rows[rows.length - 1].id : null,
  });
});

// Another user's registration answers 404 like an unknown one: its existence is not theirs to learn.
registrations.get("/:id", async (c) => {
  const id = c.req.param("id");
  const row = ID.test(id) ? await getRegistration(c.env.DB, () => keyringOf(c.env), actorOf(c.get("principal")), id, nowSeconds()) : null;
  if (row === null) throw notFound("registration");
  return c.json(registrationJson(c, row), 200, { Expires: imfFixdate(row.expires_at) });
});

registrations.delete("/:id", async (c) => {
  const id = c.req.param("id");
  const deleted = ID.test(id) && (await deleteRegistration(c.env.DB, actorOf(c.get("principal")), id, nowSeconds()));
  if (!deleted) throw notFound("registration");
  return c.body(null, 204);
});
