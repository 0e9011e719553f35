import { Hono } from "hono";
import type { AppEnv } from "../types";
import { operations } from "../openapi/operation";

/**
 * `GET /demo`: a page that connects to `/v1/ws` with a grant and shows pushes as they arrive, so
 * a person can watch the WebSocket transport work. Topic and grant may come in the URL fragment
 * (`#topic=…&grant=…`), which browsers never send to the server.
 */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Push Director · live pushes</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; }
  form { display: grid; grid-template-columns: 6rem 1fr; gap: .5rem; align-items: center; }
  input { font: inherit; padding: .35rem .5rem; border: 1px solid #bbb; border-radius: 4px; }
  button { font: inherit; padding: .4rem 1rem; grid-column: 2; justify-self: start; cursor: pointer; }
  #status { margin: 1rem 0; font-weight: 600; }
  #status.open { color: #17732e; } #status.closed { color: #a12020; }
  ol { list-style: none; padding: 0; }
  li { border: 1px solid #ddd; border-radius: 6px; padding: .6rem .8rem; margin: .5rem 0; background: #fafafa; }
  li b { margin-right: .5rem; } li code { display: block; white-space: pre-wrap; word-break: break-all; font-size: 12px; color: #555; margin-top: .3rem; }
</style>
</head>
<body>
<h1>Push Director · live pushes</h1>
<p>Connects to <code>/v1/ws</code> with a client grant (or the tenant's notify token) and shows every message
the topic's TopicHub sends. Post to <code>/v1/notify</code> for the topic and watch it arrive.</p>
<form id="form">
  <label for="topic">Topic</label><input id="topic" required placeholder="calendar-1">
  <label for="grant">Grant</label><input id="grant" required placeholder="eyJhbGciOiJIUzI1NiJ9…">
  <button id="connect">Connect</button>
</form>
<div id="status" class="closed">Not connected</div>
<ol id="log"></ol>
<script type="module">
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.hash.slice(1));
  $("topic").value = params.get("topic") ?? "";
  $("grant").value = params.get("grant") ?? "";
  let socket = null, lastSeq = null;

  function status(text, open) {
    $("status").textContent = text;
    $("status").className = open ? "open" : "closed";
  }

  function show(frame) {
    const item = document.createElement("li");
    const title = document.createElement("b");
    title.textContent = frame.type + (frame.seq !== undefined ? " #" + frame.seq : "");
    item.append(title, document.createTextNode(new Date().toLocaleTimeString()));
    const detail = document.createElement("code");
    detail.textContent = frame.type === "push" ? frame.xml : JSON.stringify(frame);
    item.append(detail);
    $("log").prepend(item);
  }

  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    socket?.close();
    const url = new URL("/v1/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("topic", $("topic").value);
    if (lastSeq !== null) url.searchParams.set("since", lastSeq);
    socket = new WebSocket(url, ["webdav-push", "bearer." + $("grant").value.trim()]);
    status("Connecting…", false);
    socket.addEventListener("message", (event) => {
      if (event.data === "pong") return;
      const frame = JSON.parse(event.data);
      if (frame.seq !== undefined) lastSeq = frame.seq;
      if (frame.type === "hello") status("Connected to " + frame.topic + " as " + frame.connection_id, true);
      show(frame);
    });
    socket.addEventListener("close", (event) => status("Closed (" + event.code + (event.reason ? ": " + event.reason : "") + ")", false));
  });
  setInterval(() => socket?.readyState === WebSocket.OPEN && socket.send("ping"), 30000);
  if ($("topic").value && $("grant").value) $("connect").click();
</script>
</body>
</html>
`;

export const demo = new Hono<AppEnv>();

const operation = operations("Public");

demo.get(
  "/",
  operation({ summary: "A page that shows a topic's pushes over WebSocket", responses: { 200: { description: "the page", content: "text/html" } } }),
  (c) =>
  c.html(PAGE, 200, {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
    "Referrer-Policy": "no-referrer",
  }),
);
