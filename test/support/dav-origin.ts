// A WebDAV origin for the gateway's tests, served under /base/: it answers what it received, so a
// test inside workerd can see what the gateway sent on (method, path, headers, body), and it plays
// the answers a proxy must pass through: a 207 with hrefs as paths and URLs, 401 with
// WWW-Authenticate, a redirect, an OPTIONS with DAV, and an answer slower than the timeout.
import type { IncomingMessage, ServerResponse } from "node:http";
import { StandIn } from "./stand-in";

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export class DavOrigin extends StandIn {
  protected async handle(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const path = req.url ?? "/";
    const received = { method: req.method, url: path, headers: req.headers, body: body.toString("utf8") };
    if (path === "/base/slow") {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      res.writeHead(200, { "Content-Type": "text/plain" }).end("late");
      return;
    }
    if (path === "/base/redirect") {
      res.writeHead(302, { Location: `${this.url}/base/elsewhere/?q=1` }).end();
      return;
    }
    // alice and bob, both with the password "pw"; their principals are /base/principals/<user>/, and
    // without credentials the principal is RFC 5397's unauthenticated
    const user = ["alice", "bob"].find((name) => req.headers.authorization === `Basic ${Buffer.from(`${name}:pw`).toString("base64")}`) ?? null;
    if (path.startsWith("/base/secret")) {
      if (user === null) {
        res.writeHead(401, { "WWW-Authenticate": 'Basic realm="Test origin"', "Content-Type": "text/plain" }).end("who are you?");
        return;
      }
    }
    if (req.method === "OPTIONS") {
      res.writeHead(200, { DAV: "1, 2, 3, calendar-access, extended-mkcol", Allow: "OPTIONS, GET, PUT, DELETE, PROPFIND, REPORT, MKCOL, MOVE" }).end();
      return;
    }
    if (req.method === "PROPFIND" || req.method === "REPORT") {
      // one response for the path asked, and one per href the request body named
      const own = path.split("?")[0];
      // Depth 1 on a collection: a member too (PROPFIND only)
      const members = req.method === "PROPFIND" && req.headers.depth === "1" && own.endsWith("/") ? [`${own}member.ics`] : [];
      const hrefs = [own, ...members, ...[...received.body.matchAll(/<(?:\w+:)?href>([^<]*)<\/(?:\w+:)?href>/g)].map((m) => m[1])];
      // as Radicale answers: resourcetype when asked, and a 404 propstat for properties it does not know
      const resourcetype = (href: string) =>
        /resourcetype/.test(received.body) ? (href.endsWith("/") ? "<resourcetype><collection/><C:calendar/></resourcetype>" : "<resourcetype/>") : "";
      const unknown = /https:\/\/bitfire\.at\/webdav-push/.test(received.body)
        ? `<propstat><prop><ns0:transports xmlns:ns0="https://bitfire.at/webdav-push"/><ns0:topic xmlns:ns0="https://bitfire.at/webdav-push"/></prop><status>HTTP/1.1 404 Not Found</status></propstat>`
        : "";
      const xml =
        `<?xml version="1.0" encoding="utf-8"?>\n<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:x="urn:test">` +
        hrefs
          .map(
            (href) =>
              `<response><href>${href}</href><propstat><prop><current-user-principal>${user === null ? "<unauthenticated/>" : `<href>/base/principals/${user}/</href>`}</current-user-principal>` +
              `<C:calendar-home-set><href>${this.url}/base/calendars/alice/</href></C:calendar-home-set><sync-token>${this.url}/base/sync/1</sync-token>${resourcetype(href)}</prop>` +
              `<status>HTTP/1.1 200 OK</status></propstat>${unknown}</response>`,
          )
          .join("") +
        `<x:received>${escape(JSON.stringify(received))}</x:received></multistatus>`;
      res.writeHead(207, { "Content-Type": 'application/xml; charset="utf-8"', "Content-Location": `${this.url}${path}` }).end(xml);
      return;
    }
    if (path === "/base/file.xml") {
      res.writeHead(200, { "Content-Type": "application/xml" }).end(`<multistatus xmlns="DAV:"><href>/base/kept/</href></multistatus>`);
      return;
    }
    res.writeHead(req.method === "MOVE" || req.method === "PUT" ? 201 : 200, {
      "Content-Type": "application/json",
      ...(req.method === "PUT" ? { Location: `/base${path.slice("/base".length)}` } : {}),
    });
    res.end(JSON.stringify(received));
  }
}
