-- Coffer schema version 3: JWT auth attached to machine identities. At most one per
-- identity (the primary key), deleted with it. public_keys is a JSON array of PEM public keys and
-- bound_claims a JSON object {path: "v1, v2"}: both are public and opaque to the store, as are the
-- comma-separated bound audiences and trusted IP list. Times are Unix milliseconds, durations
-- seconds; a limit of 0 means none.
CREATE TABLE identity_jwt_auths (
    identity_id TEXT PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
    configuration_type TEXT NOT NULL CHECK (configuration_type IN ('static', 'jwks')),
    public_keys TEXT NOT NULL,
    jwks_url TEXT NOT NULL,
    jwks_ca_cert TEXT NOT NULL,
    bound_issuer TEXT NOT NULL,
    bound_audiences TEXT NOT NULL,
    bound_claims TEXT NOT NULL,
    bound_subject TEXT NOT NULL,
    access_token_ttl INTEGER NOT NULL CHECK (access_token_ttl >= 0),
    access_token_max_ttl INTEGER NOT NULL CHECK (access_token_max_ttl >= 0),
    access_token_num_uses_limit INTEGER NOT NULL CHECK (access_token_num_uses_limit >= 0),
    access_token_trusted_ips TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
