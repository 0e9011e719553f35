-- Secrets at rest and asymmetric client grants (issue 9).
-- FCM registration tokens are looked up by their SHA-256 digest (subscriptions.identifier) and
-- kept sealed in sealed_token; a tenant's ES256/EdDSA grant keys are public JWKs in grant_keys.
-- Existing values stay as they are until `POST /v1/admin/secrets/rotate` seals them: columns are
-- added, no table is rebuilt, so no row is lost and no foreign key cascades.
ALTER TABLE subscriptions ADD COLUMN sealed_token TEXT;
ALTER TABLE tenants ADD COLUMN grant_keys TEXT NOT NULL DEFAULT '[]';
