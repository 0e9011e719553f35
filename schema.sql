-- Push Director schema (D1 / SQLite): the schema that migrations/ builds, in one file to read.
-- Databases are built and upgraded by `wrangler d1 migrations apply` (npm start and the tests do
-- it); this file applies to an empty database, and again to an applied one.
-- A database this file builds is recorded as at the newest migration, in wrangler's own table, so
-- `wrangler d1 migrations apply` (npm run deploy, npm start) adopts it and applies only later ones.
-- Recorded only when the tables are new: on an existing database this changes nothing.
CREATE TABLE IF NOT EXISTS d1_migrations(
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  name       TEXT UNIQUE,
  applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);
INSERT OR IGNORE INTO d1_migrations (name)
  SELECT value FROM json_each('["0001_initial.sql", "0002_secrets_at_rest.sql", "0003_push_services.sql", "0004_connections.sql",
    "0005_delivery_state.sql", "0006_test_pushes.sql", "0007_quotas.sql", "0008_tenants_by_created.sql", "0009_gateways.sql",
    "0010_watched_collections.sql", "0011_gateway_polls.sql", "0012_fcm_platform.sql", "0013_hms.sql",
    "0014_fcm_topics.sql"]')
  WHERE NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tenants');

-- Times are Unix seconds. Depths are 0, 1 or 2 (= "infinity"), so "the requested depth covers
-- the change's distance" is a plain `>=`.

-- One row per application server (WebDAV server) that hands changes to the director.
CREATE TABLE IF NOT EXISTS tenants (
  id                TEXT PRIMARY KEY,             -- 24 hex chars; the grant's `iss`
  name              TEXT NOT NULL,
  notify_token_hash TEXT NOT NULL,                -- SHA-256 (hex) of the notify token; the token is shown once
  grant_secret      TEXT NOT NULL,                -- HS256 key for client grants, sealed (src/crypto/sealed.ts)
  disabled_at       INTEGER,                      -- NULL while enabled
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  grant_keys        TEXT NOT NULL DEFAULT '[]'    -- public JWKs (ES256/EdDSA) for client grants: [{kid, alg, jwk}]
);

-- Where to deliver: stored once per tenant, transport and identifier (push resource URL, FCM
-- registration token or connection id), however many topics it is registered for. Keys live here,
-- not per topic. One push resource is one subscription whether it was named web_push or
-- unified_push (both are Web Push), so it is never delivered to twice.
CREATE TABLE IF NOT EXISTS subscriptions (
  id                   INTEGER PRIMARY KEY,
  tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  transport            TEXT NOT NULL CHECK (transport IN ('web_push', 'fcm', 'hms', 'websocket')),  -- how it is delivered
  service              TEXT NOT NULL CHECK (service IN ('web_push', 'unified_push', 'fcm', 'hms', 'websocket')),  -- the name the client chose, shown as "transport"
  identifier           TEXT NOT NULL,             -- web_push: the push resource URL; fcm, hms: SHA-256 (hex) of the token; websocket: the connection id
  p256dh               TEXT,                      -- web_push: user agent public key (RFC 8291 §3.1); NULL: keyless UnifiedPush, sent plain
  auth                 TEXT,                      -- web_push: authentication secret (RFC 8291 §3.2), sealed; NULL with p256dh
  content_encoding     TEXT,                      -- web_push: 'aes128gcm'
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL,
  last_success_at      INTEGER,
  last_failure_at      INTEGER,
  last_failure_reason  TEXT,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  sealed_token         TEXT,                      -- fcm, hms: the token, sealed
  vapid_public_key     TEXT,                      -- web_push: the key that signs it, for good
  last_failure_status  INTEGER,                   -- HTTP status of the last failure; NULL: no answer
  failing_since        INTEGER,                   -- first failure since the last success; NULL: not failing
  next_attempt_at      INTEGER,                   -- when a queued retry is due; NULL: none
  platform             TEXT CHECK (platform IN ('android', 'ios')),  -- fcm: the app's platform (NULL reads as android); NULL otherwise
  UNIQUE (tenant_id, transport, identifier)
);
-- Failing-subscription window (cron and on each failure).
CREATE INDEX IF NOT EXISTS subscriptions_by_failing_since ON subscriptions (failing_since) WHERE failing_since IS NOT NULL;

-- Subscription x topic: the draft's registration, addressed by its random id in the registration URL.
CREATE TABLE IF NOT EXISTS registrations (
  id                    TEXT PRIMARY KEY,         -- random, 22 base64url chars
  tenant_id             TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  topic                 TEXT NOT NULL,
  subscription_id       INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
  owner                 TEXT,                     -- the grant's `sub`; NULL when the tenant registered it
  client_id             TEXT,
  content_update_depth  INTEGER CHECK (content_update_depth IN (0, 1, 2)),   -- NULL: trigger not requested
  property_update_depth INTEGER CHECK (property_update_depth IN (0, 1, 2)),  -- NULL: trigger not requested
  property_update_props TEXT,                     -- JSON array of "{ns}name", NULL = any
  expires_at            INTEGER NOT NULL,
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL,
  fcm_topic             TEXT,                     -- the FCM topic its token was added to (fcm_topics.name); NULL: none
  UNIQUE (subscription_id, topic)                 -- also serves deletes by subscription
);

-- Fan-out: keyset pages of one topic's registrations, in id order.
CREATE INDEX IF NOT EXISTS registrations_by_topic ON registrations (tenant_id, topic, id);
-- Listing a client's (or a tenant's) registrations, in id order.
CREATE INDEX IF NOT EXISTS registrations_by_owner ON registrations (tenant_id, owner, id);
-- A tenant's registrations in id order (listing with the tenant token).
CREATE INDEX IF NOT EXISTS registrations_by_tenant ON registrations (tenant_id, id);
-- Cron purge of expired registrations.
CREATE INDEX IF NOT EXISTS registrations_by_expiry ON registrations (expires_at);

-- What exhausted its delivery retries: kept for the operator instead of vanishing with the queue.
CREATE TABLE IF NOT EXISTS dead_letters (
  id         INTEGER PRIMARY KEY,
  tenant_id  TEXT NOT NULL,
  queue      TEXT NOT NULL,
  body       TEXT NOT NULL,                       -- the job as JSON
  created_at INTEGER NOT NULL,
  reason     TEXT                                 -- why it ran out of time
);
CREATE INDEX IF NOT EXISTS dead_letters_by_tenant ON dead_letters (tenant_id, id);

-- Topics whose TopicHub has held WebSocket clients, so disabling a tenant can close its sockets.
CREATE TABLE IF NOT EXISTS websocket_topics (
  tenant_id  TEXT NOT NULL,
  topic      TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, topic)
);

-- The early draft's connection-ID flow: connections a tenant holds, open or within their
-- reconnect grace, so rotating credentials and disabling the tenant reach their ConnectionHub
-- objects. A row goes when the connection's grace ends (or the tenant is disabled).
CREATE TABLE IF NOT EXISTS websocket_connections (
  tenant_id     TEXT NOT NULL,
  connection_id TEXT NOT NULL,                    -- random UUID, the hello frame's connection_id
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, connection_id)
);

-- What a tenant's collections support (the draft's supported-triggers); no row = the defaults,
-- content-update depth 1 and property-update depth 0. NULL depth: that trigger is not supported.
CREATE TABLE IF NOT EXISTS tenant_triggers (
  tenant_id             TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
  content_update_depth  INTEGER CHECK (content_update_depth IN (0, 1, 2)),
  property_update_depth INTEGER CHECK (property_update_depth IN (0, 1, 2)),
  updated_at            INTEGER NOT NULL
);

-- VAPID key pairs made by rotation (RFC 8292; the draft's Key Rotation). No active row: the
-- VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY secrets sign. A pending key becomes active once every
-- Web Push subscription has been sent the key-rotation message, signed with the old key.
CREATE TABLE IF NOT EXISTS vapid_keys (
  id           INTEGER PRIMARY KEY,
  public_key   TEXT NOT NULL UNIQUE,
  private_key  TEXT NOT NULL,                   -- sealed (src/crypto/sealed.ts)
  state        TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired')),
  created_at   INTEGER NOT NULL,
  activated_at INTEGER
);

-- Counts per tenant, hour and transport: one upsert per delivery job, kept 31 days.
CREATE TABLE IF NOT EXISTS delivery_stats (
  tenant_id     TEXT NOT NULL,
  hour          INTEGER NOT NULL,                 -- Unix seconds of the hour's start
  transport     TEXT NOT NULL,                    -- web_push | fcm
  messages      INTEGER NOT NULL DEFAULT 0,
  delivered     INTEGER NOT NULL DEFAULT 0,
  retried       INTEGER NOT NULL DEFAULT 0,
  refused       INTEGER NOT NULL DEFAULT 0,
  gone          INTEGER NOT NULL DEFAULT 0,
  dead_lettered INTEGER NOT NULL DEFAULT 0,
  tests         INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, hour, transport)
);
CREATE INDEX IF NOT EXISTS delivery_stats_by_hour ON delivery_stats (hour);

-- Test pushes: when each registration was last sent one (one per 10 s); stale rows are deleted by the next test push.
CREATE TABLE IF NOT EXISTS test_pushes (
  registration_id TEXT PRIMARY KEY,
  at              INTEGER NOT NULL                -- Unix seconds of the last test push
);
CREATE INDEX IF NOT EXISTS test_pushes_by_at ON test_pushes (at);

-- Quotas (README: Quotas and rate limits). A tenant's own limits (NULL: the default from [vars]), read with the tenant
-- by the authenticating query (a LEFT JOIN).
CREATE TABLE IF NOT EXISTS tenant_limits (
  tenant_id              TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
  registrations          INTEGER,
  registrations_per_user INTEGER,
  notify_per_minute      INTEGER,
  sockets                INTEGER,
  sockets_per_user       INTEGER,
  updated_at             INTEGER NOT NULL
);

-- Registrations per tenant (owner '') and per grant `sub` (a topic-like text, never empty), kept
-- by the triggers below on every insert, delete (DELETE, gone push resources, purges, the tenant
-- cascade) and change of owner, so the quota check reads a counter instead of scanning. Expired
-- rows the purge has not reached yet are subtracted through the two indexes after it.
CREATE TABLE IF NOT EXISTS registration_counts (
  tenant_id     TEXT NOT NULL,
  owner         TEXT NOT NULL,
  registrations INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, owner)
);
CREATE INDEX IF NOT EXISTS registrations_by_tenant_expiry ON registrations (tenant_id, expires_at);
CREATE INDEX IF NOT EXISTS registrations_by_owner_expiry ON registrations (tenant_id, owner, expires_at);

CREATE TRIGGER IF NOT EXISTS registrations_count_insert AFTER INSERT ON registrations BEGIN
  INSERT INTO registration_counts (tenant_id, owner, registrations) VALUES (NEW.tenant_id, '', 1)
    ON CONFLICT (tenant_id, owner) DO UPDATE SET registrations = registrations + 1;
  INSERT INTO registration_counts (tenant_id, owner, registrations) SELECT NEW.tenant_id, NEW.owner, 1 WHERE NEW.owner IS NOT NULL
    ON CONFLICT (tenant_id, owner) DO UPDATE SET registrations = registrations + 1;
END;

CREATE TRIGGER IF NOT EXISTS registrations_count_delete AFTER DELETE ON registrations BEGIN
  UPDATE registration_counts SET registrations = registrations - 1 WHERE tenant_id = OLD.tenant_id AND owner IN ('', OLD.owner);
  DELETE FROM registration_counts WHERE tenant_id = OLD.tenant_id AND owner = OLD.owner AND registrations <= 0;
END;

-- An expired registration taken over by another user (src/store/registrations.ts) changes owner.
CREATE TRIGGER IF NOT EXISTS registrations_count_owner AFTER UPDATE OF owner ON registrations WHEN OLD.owner IS NOT NEW.owner BEGIN
  UPDATE registration_counts SET registrations = registrations - 1 WHERE tenant_id = OLD.tenant_id AND owner = OLD.owner;
  DELETE FROM registration_counts WHERE tenant_id = OLD.tenant_id AND owner = OLD.owner AND registrations <= 0;
  INSERT INTO registration_counts (tenant_id, owner, registrations) SELECT NEW.tenant_id, NEW.owner, 1 WHERE NEW.owner IS NOT NULL
    ON CONFLICT (tenant_id, owner) DO UPDATE SET registrations = registrations + 1;
END;

-- The registrations already there (a filled database); none is counted twice when this applies again.
INSERT OR IGNORE INTO registration_counts (tenant_id, owner, registrations)
  SELECT tenant_id, '', COUNT(*) FROM registrations GROUP BY tenant_id;
INSERT OR IGNORE INTO registration_counts (tenant_id, owner, registrations)
  SELECT tenant_id, owner, COUNT(*) FROM registrations WHERE owner IS NOT NULL GROUP BY tenant_id, owner;

-- Lists tenants newest first (GET /v1/admin/tenants?order=newest) by index, with no sort.
CREATE INDEX IF NOT EXISTS tenants_by_created ON tenants (created_at, id);

-- Push gateways (issue 14): a tenant's unmodified WebDAV server, proxied at /dav/<tenant id>/.
-- poll_password and topic_key are sealed under SECRETS_KEY (src/crypto/sealed.ts), row key the tenant id.
CREATE TABLE IF NOT EXISTS gateways (
  tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
  origin TEXT NOT NULL,
  poll_seconds INTEGER NOT NULL CHECK (poll_seconds BETWEEN 0 AND 3600),
  poll_username TEXT,
  poll_password TEXT,
  topic_key TEXT NOT NULL,
  last_poll_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  CHECK ((poll_username IS NULL) = (poll_password IS NULL))
);

-- The collections a push gateway watches (issue 14): each one a client registered for through
-- push-register, with the tokens last seen, so a change (through the gateway, or found by the
-- poller) is told once. Dropped with its gateway.
CREATE TABLE IF NOT EXISTS watched_collections (
  tenant_id TEXT NOT NULL REFERENCES gateways(tenant_id) ON DELETE CASCADE,
  -- the path at the origin, percent-decoded, one trailing slash: what its topic is made of
  path TEXT NOT NULL,
  -- the same path as the origin writes it (percent-encoded), to ask it again
  href TEXT NOT NULL,
  topic TEXT NOT NULL,
  sync_token TEXT,
  ctag TEXT,
  etag TEXT,
  created_at INTEGER NOT NULL,
  -- when the poller last asked the origin for its tokens (0 = never): a round takes the oldest first
  polled_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, path)
);
CREATE INDEX IF NOT EXISTS watched_collections_by_topic ON watched_collections (tenant_id, topic);
CREATE INDEX IF NOT EXISTS watched_collections_by_poll ON watched_collections (tenant_id, polled_at);

-- FCM topic messaging (issue 16 item 4): a topic's live FCM registrations with identical triggers
-- form a group; one larger than FCM_TOPIC_THRESHOLD gets one FCM topic message.
-- A group's members past their expiry, removed before its next topic message.
CREATE INDEX IF NOT EXISTS registrations_by_fcm_topic ON registrations (fcm_topic, expires_at) WHERE fcm_topic IS NOT NULL;

-- A group's FCM topic: `pd-` + 22 random base64url characters, never derived from tenant or topic
-- (any instance of the app may subscribe itself to a topic it can name).
CREATE TABLE IF NOT EXISTS fcm_topics (
  name       TEXT PRIMARY KEY,
  tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  topic      TEXT NOT NULL,
  triggers   TEXT NOT NULL,  -- the group's triggers as one key (src/store/fcm-topics.ts triggersKey)
  created_at INTEGER NOT NULL,
  UNIQUE (tenant_id, topic, triggers)
);

-- Members that left (registration deleted or its triggers changed, subscription deleted), still
-- to be removed from the FCM topic (batchRemove): written by the triggers below in the statement
-- that made them leave, whichever code path it was, so none is missed. The token is copied
-- sealed, as the subscription held it, since the subscription may be gone when it is removed. No
-- foreign keys: a row must outlive its tenant's deletion until the removal is sent.
CREATE TABLE IF NOT EXISTS fcm_topic_leaving (
  name            TEXT NOT NULL,
  subscription_id INTEGER NOT NULL,
  tenant_id       TEXT NOT NULL,
  token_digest    TEXT NOT NULL,
  sealed_token    TEXT NOT NULL,
  at              INTEGER NOT NULL,
  PRIMARY KEY (name, subscription_id)
);

CREATE TRIGGER IF NOT EXISTS fcm_topic_leave_on_registration_delete AFTER DELETE ON registrations WHEN OLD.fcm_topic IS NOT NULL BEGIN
  INSERT OR IGNORE INTO fcm_topic_leaving (name, subscription_id, tenant_id, token_digest, sealed_token, at)
    SELECT OLD.fcm_topic, s.id, s.tenant_id, s.identifier, s.sealed_token, unixepoch() FROM subscriptions s
    WHERE s.id = OLD.subscription_id AND s.sealed_token IS NOT NULL;
END;

-- A subscription deleted first (its registrations then cascade): its memberships, read while it is still there.
CREATE TRIGGER IF NOT EXISTS fcm_topic_leave_on_subscription_delete BEFORE DELETE ON subscriptions WHEN OLD.transport = 'fcm' AND OLD.sealed_token IS NOT NULL BEGIN
  INSERT OR IGNORE INTO fcm_topic_leaving (name, subscription_id, tenant_id, token_digest, sealed_token, at)
    SELECT r.fcm_topic, OLD.id, OLD.tenant_id, OLD.identifier, OLD.sealed_token, unixepoch() FROM registrations r
    WHERE r.subscription_id = OLD.id AND r.fcm_topic IS NOT NULL;
END;

-- Triggers changed: the registration belongs to another group now, and leaves this one's topic.
CREATE TRIGGER IF NOT EXISTS fcm_topic_leave_on_trigger_change AFTER UPDATE ON registrations
  WHEN OLD.fcm_topic IS NOT NULL AND NEW.fcm_topic IS OLD.fcm_topic
   AND (NEW.content_update_depth IS NOT OLD.content_update_depth OR NEW.property_update_depth IS NOT OLD.property_update_depth
        OR NEW.property_update_props IS NOT OLD.property_update_props) BEGIN
  INSERT OR IGNORE INTO fcm_topic_leaving (name, subscription_id, tenant_id, token_digest, sealed_token, at)
    SELECT OLD.fcm_topic, s.id, s.tenant_id, s.identifier, s.sealed_token, unixepoch() FROM subscriptions s
    WHERE s.id = OLD.subscription_id AND s.sealed_token IS NOT NULL;
  UPDATE registrations SET fcm_topic = NULL WHERE id = NEW.id;
END;
