-- Huawei Push Kit (issue 16): `transport` and `service` admit 'hms'. SQLite cannot alter a CHECK,
-- so `subscriptions` is rebuilt: a copy beside it with the new CHECKs, every row copied with its id.
--
-- D1 enforces foreign keys, and `registrations` refers to `subscriptions` ON DELETE CASCADE.
-- `defer_foreign_keys` (as D1 documents for migrations) defers the checks only: a DROP TABLE is an
-- implicit DELETE whose cascade still runs (SQLite, "Foreign Key Support" §5), and dropping the old
-- `subscriptions` alone deleted every registration (test/schema.test.ts saw it). So, as 0003 did,
-- `registrations` is rebuilt too, pointing at the copy: the child dropped first (dropping a child
-- deletes nothing else; its triggers go with it, so the quota counts are not touched), then the
-- parent, which no table refers to any more; renaming `subscriptions_new` rewrites the copy's
-- reference. The indexes and the quota triggers (0007) are made again on the renamed tables.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE subscriptions_new (
  id                   INTEGER PRIMARY KEY,
  tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  transport            TEXT NOT NULL CHECK (transport IN ('web_push', 'fcm', 'hms', 'websocket')),
  service              TEXT NOT NULL CHECK (service IN ('web_push', 'unified_push', 'fcm', 'hms', 'websocket')),
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
  vapid_public_key     TEXT,
  last_failure_status  INTEGER,
  failing_since        INTEGER,
  next_attempt_at      INTEGER,
  platform             TEXT CHECK (platform IN ('android', 'ios')),
  UNIQUE (tenant_id, transport, identifier)
);
INSERT INTO subscriptions_new (id, tenant_id, transport, service, identifier, p256dh, auth, content_encoding, created_at, updated_at,
    last_success_at, last_failure_at, last_failure_reason, consecutive_failures, sealed_token, vapid_public_key, last_failure_status,
    failing_since, next_attempt_at, platform)
  SELECT id, tenant_id, transport, service, identifier, p256dh, auth, content_encoding, created_at, updated_at,
    last_success_at, last_failure_at, last_failure_reason, consecutive_failures, sealed_token, vapid_public_key, last_failure_status,
    failing_since, next_attempt_at, platform
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
CREATE INDEX IF NOT EXISTS subscriptions_by_failing_since ON subscriptions (failing_since) WHERE failing_since IS NOT NULL;
CREATE INDEX IF NOT EXISTS registrations_by_topic ON registrations (tenant_id, topic, id);
CREATE INDEX IF NOT EXISTS registrations_by_owner ON registrations (tenant_id, owner, id);
CREATE INDEX IF NOT EXISTS registrations_by_tenant ON registrations (tenant_id, id);
CREATE INDEX IF NOT EXISTS registrations_by_expiry ON registrations (expires_at);
CREATE INDEX IF NOT EXISTS registrations_by_tenant_expiry ON registrations (tenant_id, expires_at);
CREATE INDEX IF NOT EXISTS registrations_by_owner_expiry ON registrations (tenant_id, owner, expires_at);

-- the quota counts (0007), kept as they were: the copied rows are counted already
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

PRAGMA defer_foreign_keys = OFF;
