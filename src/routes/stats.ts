/** `GET /v1/stats`: the calling tenant's delivery counts (notify token only; a grant is 403). */
import { Hono } from "hono";
import { requireTenant } from "../auth/middleware";
import { nowSeconds } from "../expiry";
import { statsQuery, tenantStats } from "../store/stats";
import type { AppEnv } from "../types";
import { parseWith } from "../validation";
import { operations } from "../openapi/operation";

export const stats = new Hono<AppEnv>();

const operation = operations("Tenant");

stats.get(
  "/",
  operation({ summary: "The calling tenant's delivery counts", query: statsQuery, responses: { 200: { description: "delivery counts per outcome and transport", json: true } } }),
  requireTenant,
  async (c) => {
  const { hours } = parseWith(statsQuery, c.req.query());
  return c.json(await tenantStats(c.env.DB, c.get("principal").tenant.id, hours, nowSeconds()));
});
