-- Push services by name (issue 10): a subscription remembers the push service its client chose
-- (`service`: web_push, unified_push, fcm or websocket; shown as "transport"), and `transport`, how
-- it is delivered, gains 'websocket' (a connection of the early draft's connection-ID flow).
--
-- SQLite cannot alter a CHECK, so both tables are rebuilt, without cascading: D1 enforces foreign
-- keys, and dropping `subscriptions` while `registrations` refers to it would delete every
-- registration (ON DELETE CASCADE). So the new tables are built beside the old ones, the rows copied
-- with their ids, the child (`registrations`) dropped first (dropping a child deletes nothing
-- else), then the parent, which no table refers to any more; renaming `subscriptions_new` rewrites
-- the reference in `registrations_new` to it. A keyless UnifiedPush subscription keeps p256dh and
-- auth NULL; every row from before keeps the name it had (service = transport).
CREATE TABLE subscriptions_new (
  id                   INTEGER PRIMARY KEY,
  tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  transport            TEXT NOT NULL CHECK (transport IN ('web_push', 'fcm', 'websocket')),
  service              TEXT NOT NULL CHECK (service IN ('web_push', 'unified_push', 'fcm', 'websocket')),
  identifier           TEXT NOT NULL,
  p256dh               TEXT,
  auth                 TEXT,
  content_encoding     TEXT,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL,
  last_success_at      INTEGER,
  last_failure_at      INTEGER,
  last_failure_reason  TEXT,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  sealed_token         TEXT,
  UNIQUE (tenant_id, transport, identifier)
);
INSERT INTO subscriptions_new (id, tenant_id, transport, service, identifier, p256dh, auth, content_encoding, created_at, updated_at,
    last_success_at, last_failure_at, last_failure_reason, consecutive_failures, sealed_token)
  SELECT id, tenant_id, transport, transport, identifier, p256dh, auth, content_encoding, created_at, updated_at,
    last_success_at, last_failure_at, last_failure_reason, consecutive_failures, sealed_token
  FROM subscriptions;

CREATE TABLE registrations_new (
  id                    TEXT PRIMARY KEY,
  tenant_id             TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  topic                 TEXT NOT NULL,
  subscription_id       INTEGER NOT NULL REFERENCES subscriptions_new(id) ON DELETE CASCADE,
  owner                 TEXT,
  client_id             TEXT,
  content_update_depth  INTEGER CHECK (content_update_depth IN (0, 1, 2)),
  property_update_depth INTEGER CHECK (property_update_depth IN (0, 1, 2)),
  property_update_props TEXT,
  expires_at            INTEGER NOT NULL,
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL,
  UNIQUE (subscription_id, topic)
);
INSERT INTO registrations_new (id, tenant_id, topic, subscription_id, owner, client_id, content_update_depth, property_update_depth,
    property_update_props, expires_at, created_at, updated_at)
  SELECT id, tenant_id, topic, subscription_id, owner, client_id, content_update_depth, property_update_depth,
    property_update_props, expires_at, created_at, updated_at
  FROM registrations;

DROP TABLE registrations;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_new RENAME TO subscriptions;
ALTER TABLE registrations_new RENAME TO registrations;

CREATE INDEX registrations_by_topic ON registrations (tenant_id, topic, id);
CREATE INDEX registrations_by_owner ON registrations (tenant_id, owner, id);
CREATE INDEX registrations_by_tenant ON registrations (tenant_id, id);
CREATE INDEX registrations_by_expiry ON registrations (expires_at);
