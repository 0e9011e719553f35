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
  PRIMARY KEY (tenant_id, path)
);
CREATE INDEX IF NOT EXISTS watched_collections_by_topic ON watched_collections (tenant_id, topic);
