/**
 * The draft's Push Properties as XML a WebDAV server can embed in its PROPFIND answers:
 * `GET /v1/transports.xml` (anyone) and `GET /v1/topics/{topic}/properties.xml` (the tenant).
 */
import { Hono } from "hono";
import { requireTenantOrGrant } from "../auth/middleware";
import { forbidden } from "../errors";
import { currentVapidPublicKey } from "../store/vapid-keys";
import { getSupportedTriggers } from "../store/tenant-triggers";
import type { AppEnv } from "../types";
import { parseWith, topicSchema } from "../validation";
import { XML_DECLARATION } from "../xml/escape";
import { topicPropertiesXml, transportsXml } from "../xml/properties";
import { operations } from "../openapi/operation";

const XML = { "Content-Type": 'application/xml; charset="utf-8"' };

export const properties = new Hono<AppEnv>();

const operation = operations("Tenant");

properties.get(
  "/transports.xml",
  operation({ summary: "The draft's transports property, for a WebDAV server's PROPFIND answers", responses: { 200: { description: "{DAV:}transports (Push)", content: "application/xml" } } }),
  async (c) => {
  const publicKey = await currentVapidPublicKey(c.env);
  return c.body(`${XML_DECLARATION}${transportsXml(publicKey)}`, 200, { ...XML, "Cache-Control": "public, max-age=300" });
});

properties.get(
  "/topics/:topic/properties.xml",
  operation({
    summary: "A topic's Push Properties (transports, topic, supported-triggers)",
    params: { topic: topicSchema },
    responses: { 200: { description: "the properties as XML", content: "application/xml" } },
  }),
  requireTenantOrGrant,
  async (c) => {
  const topic = parseWith(topicSchema, c.req.param("topic"));
  const principal = c.get("principal");
  if (principal.kind === "grant" && !principal.topics.includes(topic)) throw forbidden("topic_not_granted", "the client grant does not cover this topic");
  const [publicKey, supported] = await Promise.all([currentVapidPublicKey(c.env), getSupportedTriggers(c.env.DB, principal.tenant.id)]);
  return c.body(topicPropertiesXml(publicKey, topic, supported), 200, XML);
});
