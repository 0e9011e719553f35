-- Quotas (issue 12). A tenant's own limits (NULL: the default from [vars]), read with the tenant
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
