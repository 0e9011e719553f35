-- FCM topic messaging (issue 16 item 4). A *group* is a topic's live FCM registrations with
-- identical triggers; one larger than FCM_TOPIC_THRESHOLD is sent one FCM topic message instead of
-- a message per token. Columns and tables are added, nothing is rebuilt: no row is lost and no
-- foreign key cascades.

-- The FCM topic a registration's token was added to (batchAdd); NULL: not a member of any.
ALTER TABLE registrations ADD COLUMN fcm_topic TEXT;
-- A group's members past their expiry, removed before its next topic message.
CREATE INDEX registrations_by_fcm_topic ON registrations (fcm_topic, expires_at) WHERE fcm_topic IS NOT NULL;

-- A group's FCM topic: `pd-` + 22 random base64url characters, never derived from tenant or topic
-- (any instance of the app may subscribe itself to a topic it can name).
CREATE TABLE fcm_topics (
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
CREATE TABLE fcm_topic_leaving (
  name            TEXT NOT NULL,
  subscription_id INTEGER NOT NULL,
  tenant_id       TEXT NOT NULL,
  token_digest    TEXT NOT NULL,
  sealed_token    TEXT NOT NULL,
  at              INTEGER NOT NULL,
  PRIMARY KEY (name, subscription_id)
);

CREATE TRIGGER fcm_topic_leave_on_registration_delete AFTER DELETE ON registrations WHEN OLD.fcm_topic IS NOT NULL BEGIN
  INSERT OR IGNORE INTO fcm_topic_leaving (name, subscription_id, tenant_id, token_digest, sealed_token, at)
    SELECT OLD.fcm_topic, s.id, s.tenant_id, s.identifier, s.sealed_token, unixepoch() FROM subscriptions s
    WHERE s.id = OLD.subscription_id AND s.sealed_token IS NOT NULL;
END;

-- A subscription deleted first (its registrations then cascade): its memberships, read while it is still there.
CREATE TRIGGER fcm_topic_leave_on_subscription_delete BEFORE DELETE ON subscriptions WHEN OLD.transport = 'fcm' AND OLD.sealed_token IS NOT NULL BEGIN
  INSERT OR IGNORE INTO fcm_topic_leaving (name, subscription_id, tenant_id, token_digest, sealed_token, at)
    SELECT r.fcm_topic, OLD.id, OLD.tenant_id, OLD.identifier, OLD.sealed_token, unixepoch() FROM registrations r
    WHERE r.subscription_id = OLD.id AND r.fcm_topic IS NOT NULL;
END;

-- Triggers changed: the registration belongs to another group now, and leaves this one's topic.
CREATE TRIGGER fcm_topic_leave_on_trigger_change AFTER UPDATE ON registrations
  WHEN OLD.fcm_topic IS NOT NULL AND NEW.fcm_topic IS OLD.fcm_topic
   AND (NEW.content_update_depth IS NOT OLD.content_update_depth OR NEW.property_update_depth IS NOT OLD.property_update_depth
        OR NEW.property_update_props IS NOT OLD.property_update_props) BEGIN
  INSERT OR IGNORE INTO fcm_topic_leaving (name, subscription_id, tenant_id, token_digest, sealed_token, at)
    SELECT OLD.fcm_topic, s.id, s.tenant_id, s.identifier, s.sealed_token, unixepoch() FROM subscriptions s
    WHERE s.id = OLD.subscription_id AND s.sealed_token IS NOT NULL;
  UPDATE registrations SET fcm_topic = NULL WHERE id = NEW.id;
END;
