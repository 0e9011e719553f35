/**
 * `/dav/<tenant id>/…`: the push gateway (issue 14), the tenant's own WebDAV server behind the
 * director. No director credentials: the origin authenticates its clients, whose `Authorization`
 * goes through unchanged (Basic and Bearer work; Digest cannot, it signs the URI we rewrite).
 */
import { Hono } from "hono";
import { readConfig } from "../config";
import { ApiError } from "../errors";
import { checkGatewayOrigin } from "../gateway/origin";
import { proxy } from "../gateway/proxy";
import { operations } from "../openapi/operation";
import { keyringOf } from "../crypto/sealed";
import { decodeBase64url } from "../crypto/base64url";
import { gatewayTopic, importTopicKey } from "../gateway/advertise";
import { getGatewayForProxy, openTopicKey, type GatewayRow } from "../store/gateways";
import { getSupportedTriggers } from "../store/tenant-triggers";
import { currentVapidPublicKey } from "../store/vapid-keys";
import { supportedTriggersXml, transportsXml } from "../xml/properties";
import { escapeXml } from "../xml/escape";
import type { AppEnv } from "../types";

const operation = operations("Gateway");

const TENANT_ID = /^[0-9a-f]{24}$/;

export const dav = new Hono<AppEnv>();

/** The draft's three properties for a collection, read once per request (key, VAPID key, triggers). */
function pushPropertiesOf(env: Env, gateway: GatewayRow): (originPath: string) => Promise<string> {
  let shared: Promise<{ key: CryptoKey; common: string; triggers: string }> | undefined;
  const load = async () => {
    const [raw, vapid, supported] = await Promise.all([
      keyringOf(env).then((keyring) => openTopicKey(keyring, gateway)),
      currentVapidPublicKey(env),
      getSupportedTriggers(env.DB, gateway.tenant_id),
    ]);
    return { key: await importTopicKey(decodeBase64url(raw)!), common: transportsXml(vapid, ""), triggers: supportedTriggersXml(supported) };
  };
  return async (originPath) => {
    const { key, common, triggers } = await (shared ??= load());
    return `${common}<P:topic>${escapeXml(await gatewayTopic(key, originPath))}</P:topic>${triggers}`;
  };
}

const notConfigured = () => new ApiError(404, "gateway_not_configured", "no push gateway here: the operator sets one with PUT /v1/admin/tenants/{id}/gateway");

dav.all(
  "/:tenant/*",
  operation({
    summary: "The tenant's WebDAV server, through the push gateway",
    description:
      "Any method (PROPFIND, REPORT, PUT, DELETE, MKCOL, MOVE, COPY, PROPPATCH, OPTIONS, …) is passed to the gateway's origin with its headers, credentials and body; hrefs, Location and Destination are moved between the two path prefixes. 502 origin_unreachable, 504 origin_timeout.",
    security: [],
    responses: {
      200: { description: "the origin's answer, as it gave it (any status, 207 Multi-Status among them)" },
      308: { description: "`/dav/{tenant}` to `/dav/{tenant}/`", headers: { Location: "the gateway's root" } },
      404: { description: "gateway_not_configured" },
      502: { description: "origin_unreachable; origin_not_allowed (the stored origin no longer passes the rules); answer_too_large (a PROPFIND naming push properties answered with more than 16 MiB)", json: true },
      413: { description: "a WebDAV request body (XML) over 1 MiB" },
      504: { description: "origin_timeout", json: true },
    },
  }),
  async (c) => {
    const tenantId = c.req.param("tenant");
    const url = new URL(c.req.url);
    // `/dav/<id>` without its slash (the route matches it too): the collection is `/dav/<id>/` (RFC 4918 §5.2)
    if (url.pathname === `/dav/${tenantId}`) return c.redirect(`/dav/${tenantId}/${url.search}`, 308);
    const gateway = TENANT_ID.test(tenantId) ? await getGatewayForProxy(c.env.DB, tenantId) : null;
    if (gateway === null) throw notConfigured();
    const config = readConfig(c.env);
    const base = config.publicBaseUrl ?? url.origin;
    // checked again: the operator may have turned ALLOW_INSECURE_PUSH_RESOURCES off since the PUT
    let origin: URL;
    try {
      origin = new URL(checkGatewayOrigin(gateway.origin, { insecure: config.allowInsecurePushResources, selfOrigins: [url.origin, new URL(base).origin] }));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      throw new ApiError(502, "origin_not_allowed", `the gateway's ${error.message}; the operator must PUT another`);
    }
    const gatewayPath = `/dav/${tenantId}/`;
    // the raw path (percent-encoding as sent) after the gateway prefix, onto the origin's
    const rest = url.pathname.slice(gatewayPath.length);
    return proxy(c.req.raw, {
      prefixes: { gatewayOrigin: new URL(base).origin, gatewayPath, originOrigin: origin.origin, originPath: origin.pathname },
      url: `${origin.origin}${origin.pathname}${rest}${url.search}`,
      timeoutMs: config.gatewayOriginTimeoutMs,
      pushProperties: gateway.tenant_disabled ? undefined : pushPropertiesOf(c.env, gateway),
    });
  },
);
