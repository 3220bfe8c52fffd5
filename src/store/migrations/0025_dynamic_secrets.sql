-- Coffer schema version 25: dynamic secrets and their leases (docs/dynamic-secrets.md). A dynamic
-- secret lives at a place (project, environment, folder) like other secrets and names a provider
-- (provider/dynamic.h) and the app connection it authenticates with; the connection's credentials
-- stay sealed in app_connections, so nothing here is secret: params holds the provider's settings
-- (statements, the granted role), checked by the provider. A lease is one credential issued from a
-- dynamic secret: the credential itself is handed to the caller once and never stored; the row
-- keeps what revocation needs (the provider-side id, a user or role name) and the state of the
-- revocation, which a node claims (claim_owner, claim_until) so that it runs exactly once across
-- nodes and is retried with backoff when the target cannot be reached.
CREATE TABLE dynamic_secrets (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    folder_path TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,                 -- the provider: 'postgres', ...
    connection_id TEXT NOT NULL,        -- the app connection (sealed there)
    params TEXT NOT NULL,               -- JSON object, checked by the provider; no secret
    default_ttl_ms INTEGER NOT NULL,
    max_ttl_ms INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, env_id, folder_path, name)
);

CREATE TABLE dynamic_leases (
    id TEXT PRIMARY KEY,
    dynamic_secret_id TEXT NOT NULL REFERENCES dynamic_secrets (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    actor_kind TEXT NOT NULL,           -- 'identity', 'user', 'admin'
    actor_id TEXT NOT NULL DEFAULT '',
    actor_name TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL,                -- 'active', 'revoked', 'failed' (revocation gave up)
    provider_id TEXT NOT NULL,          -- the credential's name at the provider (not secret)
    revoke_attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '', -- no credential: names, statuses, codes
    notified INTEGER NOT NULL DEFAULT 0, -- the channels were told the revocation keeps failing
    revoked_at INTEGER NOT NULL DEFAULT 0,
    claim_owner TEXT NOT NULL DEFAULT '',
    claim_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX dynamic_leases_by_secret ON dynamic_leases (dynamic_secret_id, state);
CREATE INDEX dynamic_leases_due ON dynamic_leases (state, expires_at);
