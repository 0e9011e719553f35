/**
 * `/dav/<tenant id>/…`: the push gateway (issue 14), the tenant's own WebDAV server behind the
 * director. No director credentials: the origin authenticates its clients, whose `Authorization`
 * goes through unchanged (Basic and Bearer work; Digest cannot, it signs the URI we rewrite).
 */
import { Hono, type Context } from "hono";
import { TENANT_ID } from "../auth/tenant-token";
import { readConfig } from "../config";
import { ApiError, notFound } from "../errors";
import { nowSeconds } from "../expiry";
import { gatewayOwner, isPushRegister } from "../gateway/register";
import { limitsOf } from "../limits/limits";
import { register, unregister } from "../registering";
import { cachedTenant } from "../store/tenant-cache";
import type { Requested } from "../triggers";
import { parseXml } from "../xml/parse";
import { readPushRegister } from "../xml/push-register";
import { pushRegisterAnswer, pushRegisterPrecondition, subscriptionOrRefusal } from "./register";
import { checkGatewayOrigin } from "../gateway/origin";
import { askWhoAndWhat, factsOf, isXml, MAX_XML_REQUEST_BYTES, proxy, textUpTo, type ProxyTarget } from "../gateway/proxy";
import { operations } from "../openapi/operation";
import { keyringOf } from "../crypto/sealed";
import { decodeBase64url } from "../crypto/base64url";
import { collectionPath, gatewayTopic, importTopicKey } from "../gateway/advertise";
import { getGatewayForProxy, openTopicKey, watchCollection, type GatewayRow } from "../store/gateways";
import { proppatchNames, WRITE_METHODS } from "../gateway/changes";
import { notifyAfterWrite } from "../gateway/notify";
import { gatewayPoller } from "../gateway/poller";
import { rewriteDestination } from "../gateway/rewrite";
import { errorFields, log } from "../log";
import { getSupportedTriggers } from "../store/tenant-triggers";
import { currentVapidPublicKey } from "../store/vapid-keys";
import { supportedTriggersXml, transportsXml } from "../xml/properties";
import { escapeXml } from "../xml/escape";
import type { AppEnv } from "../types";

const operation = operations("Gateway");

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
      "Any method (PROPFIND, REPORT, PUT, DELETE, MKCOL, MOVE, COPY, PROPPATCH, OPTIONS, …) is passed to the gateway's origin with its headers, credentials and body; hrefs, Location and Destination are moved between the two path prefixes. The gateway's own: a POST of the draft's push-register to a collection (204 with Location, or 403 with a precondition, after the origin has vouched for the client), and DELETE of its registration URLs below .webdav-push/registrations/.",
    security: [],
    responses: {
      200: { description: "the origin's answer, as it gave it (any status, 207 Multi-Status among them)" },
      204: { description: "push-register or a registration's DELETE done", headers: { Location: "push-register: the registration URL", Expires: "push-register: when it expires" } },
      308: { description: "`/dav/{tenant}` to `/dav/{tenant}/`", headers: { Location: "the gateway's root" } },
      403: { description: "push-register: the draft's {DAV:}error precondition (push-not-available, invalid-subscription, no-supported-trigger)", content: "application/xml" },
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
    const target = {
      prefixes: { gatewayOrigin: new URL(base).origin, gatewayPath, originOrigin: origin.origin, originPath: origin.pathname },
      url: `${origin.origin}${origin.pathname}${rest}${url.search}`,
      timeoutMs: config.gatewayOriginTimeoutMs,
      pushProperties: gateway.tenant_disabled ? undefined : pushPropertiesOf(c.env, gateway),
    };
    // the gateway's own resources: never the origin's
    if (rest === OWN || rest.startsWith(`${OWN}/`)) {
      const registration = new RegExp(`^${OWN}/registrations/([^/]+)$`).exec(rest)?.[1];
      if (c.req.method !== "DELETE" || registration === undefined) throw new ApiError(404, "not_found", `no ${c.req.method} here: the gateway's registration URLs take DELETE`);
      return unregisterThroughGateway(c, gateway, target, registration);
    }
    const method = c.req.method.toUpperCase();
    let request = c.req.raw;
    let proppatch: string[] | null | undefined;
    if ((method === "POST" || method === "PROPPATCH") && c.req.raw.body !== null && isXml(c.req.header("Content-Type") ?? null)) {
      const text = await textUpTo(c.req.raw.body, c.req.header("Content-Length") ?? null, MAX_XML_REQUEST_BYTES);
      if (text === null) throw new ApiError(413, "body_too_large", `WebDAV request bodies (XML) through the gateway are limited to ${MAX_XML_REQUEST_BYTES} bytes`);
      if (method === "POST" && isPushRegister(text)) return registerThroughGateway(c, gateway, target, text, `${new URL(base).origin}${gatewayPath}${OWN}/registrations/`);
      if (method === "PROPPATCH") proppatch = proppatchNames(text);
      const headers = new Headers(c.req.raw.headers);
      headers.delete("Content-Length");
      request = new Request(c.req.url, { method, headers, body: text });
    }
    const response = await proxy(request, target);
    if (WRITE_METHODS.has(method) && response.status >= 200 && response.status < 300 && !gateway.tenant_disabled) {
      // told after the answer: the client does not wait for the origin's new tokens or the hubs
      const written = [new URL(target.url).pathname];
      const destination = c.req.header("Destination");
      if ((method === "MOVE" || method === "COPY") && destination !== undefined) {
        try {
          const moved = new URL(rewriteDestination(destination, target.prefixes), target.url);
          if (moved.origin === target.prefixes.originOrigin) written.push(moved.pathname);
        } catch {
          // not a URL: the origin answered it; nothing more to tell
        }
        if (method === "COPY") written.shift();
      }
      afterAnswer(c, notifyAfterWrite(c.env, gateway, target, written, { proppatch, authorization: c.req.header("Authorization") ?? null, dontNotify: c.req.header("Push-Dont-Notify") ?? null }));
    }
    return response;
  },
);

/** Work that goes on after the answer (the runtime's waitUntil). */
function afterAnswer(c: Context<AppEnv>, work: Promise<void>): void {
  const logged = work.catch((error) => log(c.env, "error", "gateway_notify_failed", errorFields(error)));
  let waitUntil: ((promise: Promise<unknown>) => void) | undefined;
  try {
    waitUntil = c.executionCtx.waitUntil.bind(c.executionCtx);
  } catch {
    // no execution context (a direct app.fetch): the promise runs on by itself
  }
  waitUntil?.(logged);
}


/** The gateway's own path below `/dav/<id>/` (registration URLs); a leading dot keeps it off the origin's names. */
const OWN = ".webdav-push";

/** PROPFIND Depth 0 of `url` at the origin with the client's credentials: who it is, and is it a collection. */
async function whoAndWhat(c: Context<AppEnv>, url: string, timeoutMs: number) {
  const answer = await askWhoAndWhat(url, c.req.header("Authorization") ?? null, timeoutMs);
  if (answer.status !== 207) {
    // refused (401 with its WWW-Authenticate, 403, 404): the client hears the origin
    const out = new Headers();
    for (const name of ["WWW-Authenticate", "Content-Type"]) {
      const value = answer.headers.get(name);
      if (value !== null) out.set(name, value);
    }
    return { refused: new Response(answer.body, { status: answer.status, headers: out }) };
  }
  const facts = await factsOf(answer);
  if (facts === null) throw new ApiError(502, "origin_answer_unreadable", "the origin's PROPFIND answer is not a multistatus the gateway can read");
  return { facts };
}

/**
 * push-register for the collection this URL names: the origin is asked first (with the client's
 * credentials), then it registers as `POST /v1/register` does, for the collection's topic.
 */
async function registerThroughGateway(c: Context<AppEnv>, gateway: GatewayRow & { tenant_disabled: number }, target: ProxyTarget, text: string, registrations: string) {
  const body = readPushRegister(parseXml(text));
  const asked = await whoAndWhat(c, target.url.split("?")[0], target.timeoutMs);
  if ("refused" in asked) return asked.refused;
  if (!asked.facts.isCollection) return pushRegisterPrecondition(c, "push-not-available", "push is available for collections only: this resource is not one");
  const tenant = await cachedTenant(c.env, gateway.tenant_id);
  if (tenant === null || tenant.disabled_at !== null || target.pushProperties === undefined) {
    return pushRegisterPrecondition(c, "push-not-available", "push is not available: this tenant is disabled");
  }
  const subscription = await subscriptionOrRefusal(c, body.subscription);
  if (subscription instanceof Response) return subscription;
  const key = await importTopicKey(decodeBase64url(await openTopicKey(await keyringOf(c.env), gateway))!);
  const topic = await gatewayTopic(key, new URL(target.url).pathname);
  const owner = gatewayOwner(asked.facts, c.req.header("Authorization") ?? null, target.prefixes.originOrigin);
  const requested: Requested = body.trigger ?? { contentUpdate: { depth: 1 }, propertyUpdate: null };
  const now = nowSeconds();
  const result = await register(c.env, { tenantId: tenant.id, owner }, limitsOf(c.env, tenant), { topic, subscription, requested, clientId: null, expires: body.expires }, now);
  if (result.kind === "registered") {
    // watched from its first registration on: its tokens now are what a later change is told against
    const originPath = new URL(target.url).pathname;
    await watchCollection(c.env.DB, tenant.id, { path: collectionPath(originPath), href: originPath, topic, ...asked.facts.tokens }, now);
    // and polled, for changes made at the origin directly
    await gatewayPoller(c.env, tenant.id).arm(tenant.id, gateway.poll_seconds);
  }
  return pushRegisterAnswer(c, result, (id) => `${registrations}${id}`);
}

/** DELETE of a gateway registration URL: the registration's owner only, as the origin knows the caller. */
async function unregisterThroughGateway(c: Context<AppEnv>, gateway: GatewayRow, target: ProxyTarget, id: string) {
  const asked = await whoAndWhat(c, `${target.prefixes.originOrigin}${target.prefixes.originPath}`, target.timeoutMs);
  if ("refused" in asked) return asked.refused;
  const owner = gatewayOwner(asked.facts, c.req.header("Authorization") ?? null, target.prefixes.originOrigin);
  if (!(await unregister(c.env, { tenantId: gateway.tenant_id, owner }, id, nowSeconds()))) throw notFound("registration");
  return c.body(null, 204);
}
