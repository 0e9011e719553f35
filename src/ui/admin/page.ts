/**
 * The operator console's page, served as `/admin`. Nothing inline (the CSP forbids it): the script
 * and style come from `/admin/app.js` and `/admin/app.css`; the script fills in everything else.
 */
export const ADMIN_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Push Director · operator console</title>
<link rel="stylesheet" href="/admin/app.css">
<script src="/admin/app.js" defer></script>
</head>
<body>
<header>
  <h1>Push Director · operator console</h1>
  <button type="button" id="sign-out" hidden>Sign out</button>
</header>
<main>
  <p id="notice" class="message" role="status"></p>

  <section id="signed-out" class="sign-in" aria-labelledby="sign-in-title" hidden>
    <h2 id="sign-in-title">Sign in</h2>
    <form id="sign-in-form" method="post" novalidate>
      <label for="admin-token">Admin token</label>
      <input id="admin-token" name="admin-token" type="password" autocomplete="current-password" spellcheck="false" required>
      <button type="submit" class="primary">Sign in</button>
      <p id="sign-in-error" class="message error" role="alert"></p>
    </form>
    <p class="note">The token is kept in this tab's session storage only, and sent only as <code>Authorization: Bearer</code>.</p>
  </section>

  <div id="signed-in" hidden>
    <section aria-labelledby="tenants-title">
      <h2 id="tenants-title">Tenants</h2>
      <form id="create-form" class="inline" method="post" novalidate>
        <label for="tenant-name">Tenant name</label>
        <input id="tenant-name" name="tenant-name" type="text" autocomplete="off" spellcheck="false">
        <button type="submit" class="primary">Create tenant</button>
      </form>
      <p id="tenants-error" class="message error" role="alert"></p>
      <div class="table-wrap">
        <table>
          <caption class="note">Newest first</caption>
          <thead>
            <tr><th scope="col">Name</th><th scope="col">ID</th><th scope="col">Status</th><th scope="col">Created</th><th scope="col">Actions</th></tr>
          </thead>
          <tbody id="tenant-rows"></tbody>
        </table>
      </div>
      <p id="tenants-empty" class="note" hidden>No tenants yet.</p>
      <button type="button" id="load-more" hidden>Load more</button>
      <div id="details" class="panel" role="region" aria-labelledby="details-title" hidden>
        <h3 id="details-title">Tenant details</h3>
        <dl id="details-list"></dl>
        <button type="button" id="details-close">Close details</button>
      </div>
    </section>

    <section aria-labelledby="dead-title">
      <h2 id="dead-title">Dead letters</h2>
      <p class="note">Deliveries that ran out of time, newest first.</p>
      <button type="button" id="dead-refresh">Refresh dead letters</button>
      <p id="dead-error" class="message error" role="alert"></p>
      <div class="table-wrap">
        <table>
          <thead>
            <tr><th scope="col">ID</th><th scope="col">Tenant</th><th scope="col">Queue</th><th scope="col">Reason</th><th scope="col">Created</th><th scope="col">Job</th></tr>
          </thead>
          <tbody id="dead-rows"></tbody>
        </table>
      </div>
      <p id="dead-empty" class="note" hidden>No dead letters.</p>
      <button type="button" id="dead-more" hidden>Older dead letters</button>
    </section>

    <section aria-labelledby="vapid-title">
      <h2 id="vapid-title">VAPID keys</h2>
      <dl>
        <dt>Current public key</dt><dd><code id="vapid-current"></code></dd>
        <dt>Pending public key</dt><dd><code id="vapid-pending"></code></dd>
        <dt>Retired keys</dt><dd><ul id="vapid-retired" class="plain"></ul></dd>
      </dl>
      <button type="button" id="vapid-rotate">Rotate VAPID key</button>
      <button type="button" id="vapid-refresh">Refresh VAPID keys</button>
      <p id="vapid-error" class="message error" role="alert"></p>
    </section>
  </div>
</main>

<dialog id="secrets-dialog" aria-labelledby="secrets-title">
  <h2 id="secrets-title">New secrets</h2>
  <p class="note">Shown only this once: copy them now. Done or Escape removes them from the page.</p>
  <div id="secrets-body"></div>
  <p id="copy-status" class="message" role="status"></p>
  <div class="buttons"><button type="button" id="secrets-done" class="primary">Done</button></div>
</dialog>
</body>
</html>
`;
