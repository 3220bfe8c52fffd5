-- Coffer schema version 4: Kubernetes auth attached to machine identities. At most one per
-- identity (the primary key), deleted with it. token_reviewer_jwt is the credential the server
-- presents to the TokenReview API ("" = use the login token itself); it is stored as given and never
-- returned by the API. Lists are comma-separated ("" = any). Times are Unix milliseconds, durations
-- seconds; a limit of 0 means none.
CREATE TABLE identity_kubernetes_auths (
    identity_id TEXT PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
    kubernetes_host TEXT NOT NULL,
    ca_cert TEXT NOT NULL,
    token_reviewer_jwt TEXT NOT NULL,
    allowed_namespaces TEXT NOT NULL,
    allowed_names TEXT NOT NULL,
    allowed_audience TEXT NOT NULL,
    access_token_ttl INTEGER NOT NULL CHECK (access_token_ttl >= 0),
    access_token_max_ttl INTEGER NOT NULL CHECK (access_token_max_ttl >= 0),
    access_token_num_uses_limit INTEGER NOT NULL CHECK (access_token_num_uses_limit >= 0),
    access_token_trusted_ips TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
