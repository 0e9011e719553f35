/**
 * The operator console's script, served as `/admin/app.js`: plain browser JavaScript that talks
 * only to `/v1/admin` with `Authorization: Bearer <ADMIN_TOKEN>`. The token lives in this tab's
 * sessionStorage, never in a URL, cookie or localStorage. Everything the director returns (names,
 * ids, jobs) is untrusted and goes into the page as text only (textContent, never innerHTML).
 *
 * Kept free of template literals and `${`, so the TypeScript string below is the script as written.
 */
export const ADMIN_JS = String.raw`"use strict";
(function () {
  var KEY = "push-director.admin-token";
  var PAGE_SIZE = 20;
  var token = null;
  var nextCursor = null;
  var deadBefore = null;
  var tenantRows = new Map();

  function $(id) { return document.getElementById(id); }

  /** An element with text (never HTML) and fixed attributes from this script. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs.text;
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { node.append(child); });
    return node;
  }

  function say(id, text) { $(id).textContent = text || ""; }

  function when(seconds) {
    if (typeof seconds !== "number") return "";
    return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function timeCell(seconds) {
    var time = el("time", { datetime: typeof seconds === "number" ? new Date(seconds * 1000).toISOString() : "", text: when(seconds) });
    return el("td", {}, [time]);
  }

  function ApiFailure(status, message) { this.status = status; this.message = message; }
  function SignedOut() { this.message = "signed out"; }

  /** One request with the given token; never throws for an HTTP status. */
  async function call(withToken, method, path, body) {
    var headers = { Authorization: "Bearer " + withToken };
    var init = { method: method, headers: headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiFailure(0, "Network error: the director did not answer (" + error.message + ").");
    }
    var text = await response.text();
    var data = null;
    try { data = text === "" ? null : JSON.parse(text); } catch (error) { data = null; }
    var reason = data && data.error && typeof data.error.message === "string" ? data.error.message : null;
    var message = reason !== null
      ? reason + " (" + response.status + " " + data.error.code + ")"
      : "The director answered " + response.status + " " + response.statusText + ".";
    return { status: response.status, ok: response.ok, data: data, reason: reason || message, message: message };
  }

  /** A request as the signed-in operator: a 401 signs out, any other failure throws its message. */
  async function api(method, path, body) {
    if (token === null) throw new SignedOut();
    var answer = await call(token, method, path, body);
    if (answer.status === 401) {
      signOut("Signed out: the director refused the admin token (" + answer.reason + "). Sign in again.");
      throw new SignedOut();
    }
    if (!answer.ok) throw new ApiFailure(answer.status, answer.message);
    return answer;
  }

  function reportTo(id) {
    return function (error) {
      if (error instanceof SignedOut) return;
      say(id, error instanceof ApiFailure ? error.message : "Error: " + (error && error.message));
    };
  }

  /** Runs work with the button disabled, so a double click sends one request. */
  async function busy(button, work) {
    button.disabled = true;
    try { await work(); } finally { button.disabled = false; }
  }

  // ---- signing in and out ----

  function showSignedOut() {
    $("signed-in").hidden = true;
    $("sign-out").hidden = true;
    $("signed-out").hidden = false;
    $("admin-token").focus();
  }

  function showSignedIn() {
    $("signed-out").hidden = true;
    $("signed-in").hidden = false;
    $("sign-out").hidden = false;
  }

  function signOut(message) {
    token = null;
    sessionStorage.removeItem(KEY);
    if ($("secrets-dialog").open) $("secrets-dialog").close();
    clearSecrets();
    $("tenant-rows").replaceChildren();
    tenantRows.clear();
    nextCursor = null;
    $("dead-rows").replaceChildren();
    deadBefore = null;
    $("details").hidden = true;
    $("details-list").replaceChildren();
    ["tenants-error", "dead-error", "vapid-error", "vapid-current", "vapid-pending", "sign-in-error"].forEach(function (id) { say(id, ""); });
    $("vapid-retired").replaceChildren();
    $("tenant-name").value = "";
    say("notice", message);
    showSignedOut();
  }

  $("sign-in-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var value = $("admin-token").value;
    var button = event.submitter || $("sign-in-form").querySelector("button");
    say("sign-in-error", "");
    if (value === "") { say("sign-in-error", "Enter the admin token."); return; }
    busy(button, async function () {
      var answer;
      try {
        answer = await call(value, "GET", "/v1/admin/vapid");
      } catch (error) {
        reportTo("sign-in-error")(error);
        return;
      }
      if (answer.status === 401) { say("sign-in-error", "token refused: " + answer.reason); return; }
      if (!answer.ok) { say("sign-in-error", answer.message); return; }
      token = value;
      sessionStorage.setItem(KEY, value);
      $("admin-token").value = "";
      say("notice", "");
      showSignedIn();
      loadAll(answer.data);
    });
  });

  $("sign-out").addEventListener("click", function () { signOut("Signed out."); });

  function loadAll(vapid) {
    loadTenants(true).catch(reportTo("tenants-error"));
    loadDeadLetters(true).catch(reportTo("dead-error"));
    if (vapid) showVapid(vapid);
    else loadVapid().catch(reportTo("vapid-error"));
    $("tenant-name").focus();
  }

  // ---- tenants ----

  function updateTenantsEmpty() { $("tenants-empty").hidden = tenantRows.size > 0; }

  function tenantRow(tenant) {
    var status = tenant.disabled ? "disabled" : "enabled";
    var toggle = el("button", { type: "button", text: tenant.disabled ? "Enable" : "Disable" });
    var rotate = el("button", { type: "button", text: "Rotate secrets" });
    var details = el("button", { type: "button", text: "Details" });
    var row = el("tr", {}, [
      el("td", { text: tenant.name }),
      el("td", {}, [el("code", { text: tenant.id })]),
      el("td", { class: "status-" + status, text: status }),
      timeCell(tenant.created_at),
      el("td", { class: "actions" }, [toggle, rotate, details]),
    ]);
    toggle.addEventListener("click", function () {
      busy(toggle, async function () {
        var answer = await api("POST", "/v1/admin/tenants/" + encodeURIComponent(tenant.id) + (tenant.disabled ? "/enable" : "/disable"));
        say("tenants-error", "");
        putTenantRow(answer.data, row);
      }).catch(reportTo("tenants-error"));
    });
    rotate.addEventListener("click", function () {
      if (!confirm("Rotate the notify token and grant secret of \u201c" + tenant.name + "\u201d? The old ones stop working at once, and sockets opened with them are closed.")) return;
      busy(rotate, async function () {
        var answer = await api("POST", "/v1/admin/tenants/" + encodeURIComponent(tenant.id) + "/rotate");
        say("tenants-error", "");
        showSecrets("New secrets for \u201c" + tenant.name + "\u201d", answer.data);
      }).catch(reportTo("tenants-error"));
    });
    details.addEventListener("click", function () {
      busy(details, async function () {
        var answer = await api("GET", "/v1/admin/tenants/" + encodeURIComponent(tenant.id));
        say("tenants-error", "");
        showDetails(answer.data);
      }).catch(reportTo("tenants-error"));
    });
    return row;
  }

  /** Draws a tenant row: in place of the old one, or at the top (new) or bottom (loaded) of the list. */
  function putTenantRow(tenant, old, atTop) {
    var row = tenantRow(tenant);
    var existing = old || tenantRows.get(tenant.id);
    if (existing && existing.isConnected) existing.replaceWith(row);
    else if (atTop) $("tenant-rows").prepend(row);
    else $("tenant-rows").append(row);
    tenantRows.set(tenant.id, row);
    updateTenantsEmpty();
  }

  async function loadTenants(reset) {
    var path = "/v1/admin/tenants?order=newest&limit=" + PAGE_SIZE;
    if (reset) {
      $("tenant-rows").replaceChildren();
      tenantRows.clear();
      nextCursor = null;
    } else if (nextCursor !== null) {
      path += "&cursor=" + encodeURIComponent(nextCursor);
    }
    var answer = await api("GET", path);
    answer.data.tenants.forEach(function (tenant) {
      if (!tenantRows.has(tenant.id)) putTenantRow(tenant);
    });
    nextCursor = answer.data.next_cursor;
    $("load-more").hidden = nextCursor === null;
    updateTenantsEmpty();
    say("tenants-error", "");
  }

  $("load-more").addEventListener("click", function (event) {
    busy(event.currentTarget, function () { return loadTenants(false); }).catch(reportTo("tenants-error"));
  });

  $("create-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var button = event.submitter || $("create-form").querySelector("button");
    say("tenants-error", "");
    busy(button, async function () {
      var answer = await api("POST", "/v1/admin/tenants", { name: $("tenant-name").value });
      $("tenant-name").value = "";
      putTenantRow({ id: answer.data.id, name: answer.data.name, disabled: false, created_at: answer.data.created_at }, null, true);
      showSecrets("Tenant \u201c" + answer.data.name + "\u201d created", answer.data);
    }).catch(reportTo("tenants-error"));
  });

  function describeTrigger(trigger) {
    return trigger === null || trigger === undefined ? "not supported" : "depth " + trigger.depth;
  }

  function showDetails(tenant) {
    var list = $("details-list");
    var counts = tenant.counts || {};
    var triggers = tenant.supported_triggers || {};
    var keys = (tenant.grant_keys || []).map(function (key) { return key.kid + " (" + key.alg + ")"; });
    var entries = [
      ["Name", tenant.name],
      ["ID", tenant.id],
      ["Status", tenant.disabled ? "disabled since " + when(tenant.disabled_at) : "enabled"],
      ["Created", when(tenant.created_at)],
      ["Updated", when(tenant.updated_at)],
      ["Subscriptions", String(counts.subscriptions)],
      ["Live registrations", String(counts.registrations)],
      ["Content updates", describeTrigger(triggers.content_update)],
      ["Property updates", describeTrigger(triggers.property_update)],
      ["Grant keys", keys.length === 0 ? "none" : keys.join(", ")],
    ];
    list.replaceChildren();
    entries.forEach(function (entry) { list.append(el("dt", { text: entry[0] }), el("dd", { text: entry[1] })); });
    say("details-title", "Details of \u201c" + tenant.name + "\u201d");
    $("details").hidden = false;
    $("details").scrollIntoView({ block: "nearest" });
  }

  $("details-close").addEventListener("click", function () {
    $("details").hidden = true;
    $("details-list").replaceChildren();
  });

  // ---- the secrets dialog (creation and rotation) ----

  function clearSecrets() {
    $("secrets-body").replaceChildren();
    say("copy-status", "");
  }

  function secretField(label, slug, value) {
    var labelId = slug + "-label";
    var code = el("code", { id: slug, "aria-labelledby": labelId, text: value });
    var copy = el("button", { type: "button", "aria-label": "Copy " + label.toLowerCase(), text: "Copy" });
    copy.addEventListener("click", function () {
      navigator.clipboard.writeText(value).then(
        function () { say("copy-status", label + " copied."); },
        function () { say("copy-status", "Copying failed: select the text and copy it."); });
    });
    return el("div", {}, [el("h3", { id: labelId, text: label }), el("div", { class: "secret" }, [code, copy])]);
  }

  function showSecrets(title, answer) {
    var body = $("secrets-body");
    clearSecrets();
    say("secrets-title", title);
    body.append(el("p", {}, ["Tenant ID: ", el("code", { text: answer.id })]));
    if (answer.notify_token) body.append(secretField("Notify token", "notify-token", answer.notify_token));
    if (answer.grant_secret) body.append(secretField("Grant secret", "grant-secret", answer.grant_secret));
    if (typeof answer.closed_sockets === "number") {
      body.append(el("p", { class: "note", text: answer.closed_sockets + " socket(s) opened with the old secrets were closed." }));
    }
    var dialog = $("secrets-dialog");
    if (!dialog.open) dialog.showModal();
    $("secrets-done").focus();
  }

  $("secrets-done").addEventListener("click", function () { $("secrets-dialog").close(); });
  $("secrets-dialog").addEventListener("cancel", clearSecrets);
  $("secrets-dialog").addEventListener("close", clearSecrets);

  // ---- dead letters ----

  function deadLetterRow(letter) {
    var job = el("details", {}, [el("summary", { text: "Job" }), el("pre", { text: JSON.stringify(letter.job, null, 2) })]);
    return el("tr", {}, [
      el("td", { text: String(letter.id) }),
      el("td", {}, [el("code", { text: letter.tenant_id })]),
      el("td", { text: letter.queue }),
      el("td", { text: letter.reason }),
      timeCell(letter.created_at),
      el("td", {}, [job]),
    ]);
  }

  async function loadDeadLetters(reset) {
    var path = "/v1/admin/dead-letters?limit=" + PAGE_SIZE;
    if (!reset && deadBefore !== null) path += "&before=" + encodeURIComponent(deadBefore);
    var answer = await api("GET", path);
    if (reset) $("dead-rows").replaceChildren();
    answer.data.dead_letters.forEach(function (letter) { $("dead-rows").append(deadLetterRow(letter)); });
    deadBefore = answer.data.next_before;
    $("dead-more").hidden = deadBefore === null;
    $("dead-empty").hidden = $("dead-rows").childElementCount > 0;
    say("dead-error", "");
  }

  $("dead-refresh").addEventListener("click", function (event) {
    busy(event.currentTarget, function () { return loadDeadLetters(true); }).catch(reportTo("dead-error"));
  });
  $("dead-more").addEventListener("click", function (event) {
    busy(event.currentTarget, function () { return loadDeadLetters(false); }).catch(reportTo("dead-error"));
  });

  // ---- VAPID ----

  function showVapid(vapid) {
    say("vapid-current", vapid.public_key || "none");
    say("vapid-pending", vapid.pending_public_key || "none");
    var retired = (vapid.retired || []).map(function (key) {
      return el("li", {}, [el("code", { text: key.public_key }), " \u2014 " + key.subscriptions + " subscription(s)"]);
    });
    $("vapid-retired").replaceChildren.apply($("vapid-retired"), retired.length > 0 ? retired : [el("li", { text: "none" })]);
  }

  async function loadVapid() {
    var answer = await api("GET", "/v1/admin/vapid");
    showVapid(answer.data);
    say("vapid-error", "");
  }

  $("vapid-refresh").addEventListener("click", function (event) {
    busy(event.currentTarget, loadVapid).catch(reportTo("vapid-error"));
  });

  $("vapid-rotate").addEventListener("click", function (event) {
    if (!confirm("Rotate the VAPID key? Every Web Push subscription is sent the key-rotation message; then the new key signs.")) return;
    var button = event.currentTarget;
    busy(button, async function () {
      await api("POST", "/v1/admin/vapid/rotate");
      say("vapid-error", "");
      await loadVapid();
      say("notice", "VAPID key rotation started.");
    }).catch(reportTo("vapid-error"));
  });

  // ---- start ----

  token = sessionStorage.getItem(KEY);
  if (token === null) {
    showSignedOut();
  } else {
    showSignedIn();
    loadAll(null);
  }
})();
`;
