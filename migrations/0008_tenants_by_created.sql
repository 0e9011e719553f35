-- Lists tenants newest first (GET /v1/admin/tenants?order=newest) by index, with no sort.
CREATE INDEX IF NOT EXISTS tenants_by_created ON tenants (created_at, id);
