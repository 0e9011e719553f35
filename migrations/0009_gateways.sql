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
