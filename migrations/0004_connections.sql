-- The early draft's connection-ID flow (issue 10): connections a tenant holds, open or within
-- their reconnect grace, so rotating credentials and disabling the tenant reach their
-- ConnectionHub objects. A row goes when the connection's grace ends (or the tenant is disabled).
CREATE TABLE IF NOT EXISTS websocket_connections (
  tenant_id     TEXT NOT NULL,
  connection_id TEXT NOT NULL,                    -- random UUID, the hello frame's connection_id
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, connection_id)
);
