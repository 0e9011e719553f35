-- Delivery that loses nothing, and "why no push?" (issue 11): per-subscription delivery state and
-- VAPID key, a reason on dead letters, hourly delivery counts. Columns are added, a table created;
-- nothing is rebuilt, so no row is lost and no foreign key cascades.
ALTER TABLE subscriptions ADD COLUMN vapid_public_key TEXT;         -- web_push: the key that signs it, for good
ALTER TABLE subscriptions ADD COLUMN last_failure_status INTEGER;   -- HTTP status of the last failure; NULL: no answer
ALTER TABLE subscriptions ADD COLUMN failing_since INTEGER;         -- first failure since the last success; NULL: not failing
ALTER TABLE subscriptions ADD COLUMN next_attempt_at INTEGER;       -- when a queued retry is due; NULL: none
ALTER TABLE dead_letters ADD COLUMN reason TEXT;

-- Failing-subscription window (cron and on each failure).
CREATE INDEX IF NOT EXISTS subscriptions_by_failing_since ON subscriptions (failing_since) WHERE failing_since IS NOT NULL;

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
