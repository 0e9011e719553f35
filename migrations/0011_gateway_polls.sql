-- The push gateway's poller (issue 14, item 7): when each watched collection was last asked, so a
-- round takes the longest-unasked first and a gateway with more than a round's worth is covered
-- in turn. 0 = never.
ALTER TABLE watched_collections ADD COLUMN polled_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS watched_collections_by_poll ON watched_collections (tenant_id, polled_at);
