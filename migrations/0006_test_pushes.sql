-- Test pushes (issue 11): when each registration was last sent one, for the one-per-10-s limit.
-- Rows are a few seconds' worth: each test push deletes those past the window (index on `at`).
CREATE TABLE IF NOT EXISTS test_pushes (
  registration_id TEXT PRIMARY KEY,
  at              INTEGER NOT NULL                -- Unix seconds of the last test push
);
CREATE INDEX IF NOT EXISTS test_pushes_by_at ON test_pushes (at);
