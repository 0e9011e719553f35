/**
 * A gateway's origin: the tenant's WebDAV server, which the director will call with its clients'
 * credentials. The push-resource rules apply (src/transports/push-resource.ts): an https: URL of
 * a public host, unless ALLOW_INSECURE_PUSH_RESOURCES lets http:, loopback and private hosts
 * through for local testing; never the director itself, which would proxy to itself.
 */
import { badRequest } from "../errors";
import { isNonPublicHost } from "../transports/push-resource";

const MAX_ORIGIN_LENGTH = 2048;

/** The origin as stored: the URL with its path ending in one "/" (so paths join by concatenation). */
export function checkGatewayOrigin(value: string, options: { insecure: boolean; selfOrigins: string[] }): string {
  const invalid = (why: string) => badRequest("invalid_origin", `origin: ${why}`);
  if (value.length > MAX_ORIGIN_LENGTH) throw invalid(`at most ${MAX_ORIGIN_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid("not an absolute URL");
  }
  if (url.username !== "" || url.password !== "") throw invalid("must not carry credentials (use poll_auth)");
  if (url.search !== "" || value.includes("?")) throw invalid("must not have a query");
  if (url.hash !== "" || value.includes("#")) throw invalid("must not have a fragment");
  if (options.insecure) {
    if (url.protocol !== "https:" && url.protocol !== "http:") throw invalid("must be an http: or https: URL");
  } else {
    if (url.protocol !== "https:") throw invalid("must be an https: URL");
    if (isNonPublicHost(url.hostname)) throw invalid(`host ${url.hostname} is not a public host`);
  }
  if (options.selfOrigins.includes(url.origin)) throw invalid("must not be the director itself");
  if (!url.pathname.endsWith("/")) url.pathname = `${url.pathname}/`;
  return url.href;
}
