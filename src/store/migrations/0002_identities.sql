-- Coffer schema version 2: machine identities, their universal-auth configuration, client secrets,
-- access tokens and project memberships. Everything an identity owns is deleted with it (ON DELETE
-- CASCADE), so deleting an identity is one statement and its tokens stop working at once; memberships
-- also go with their project. Every foreign key column leads an index, so that cascades seek instead
-- of scanning. Credentials are never stored, only their 32-byte keyed hashes. Ids are UUID strings,
-- times Unix milliseconds, durations seconds; a limit of 0 means none.

-- Names are unique: they are how operators tell identities apart.
CREATE TABLE identities (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- At most one per identity (the primary key). client_id is unique: login finds the configuration by
-- it. The trusted IP lists are comma-separated CIDR text, opaque to the store.
CREATE TABLE identity_universal_auths (
    identity_id TEXT PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL UNIQUE,
    access_token_ttl INTEGER NOT NULL CHECK (access_token_ttl >= 0),
    access_token_max_ttl INTEGER NOT NULL CHECK (access_token_max_ttl >= 0),
    access_token_num_uses_limit INTEGER NOT NULL CHECK (access_token_num_uses_limit >= 0),
    access_token_trusted_ips TEXT NOT NULL,
    client_secret_trusted_ips TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Listed newest first per identity: the (identity_id, created_at) index gives that order, rowid
-- breaks ties between secrets created in the same millisecond.
CREATE TABLE identity_client_secrets (
    id TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    description TEXT NOT NULL DEFAULT '',
    prefix TEXT NOT NULL DEFAULT '',
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    expires_at INTEGER NOT NULL DEFAULT 0,
    num_uses INTEGER NOT NULL DEFAULT 0 CHECK (num_uses >= 0),
    num_uses_limit INTEGER NOT NULL DEFAULT 0 CHECK (num_uses_limit >= 0),
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX identity_client_secrets_identity ON identity_client_secrets (identity_id, created_at);

-- Read on every request made with an access token: clustered on id (WITHOUT ROWID), so that read is
-- one b-tree seek. client_secret_id is '' unless universal auth issued the token; it is a record of
-- origin, not a foreign key.
CREATE TABLE identity_access_tokens (
    id TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    client_secret_id TEXT NOT NULL DEFAULT '',
    auth_method TEXT NOT NULL,
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    ttl INTEGER NOT NULL DEFAULT 0,
    max_ttl INTEGER NOT NULL DEFAULT 0,
    num_uses INTEGER NOT NULL DEFAULT 0 CHECK (num_uses >= 0),
    num_uses_limit INTEGER NOT NULL DEFAULT 0 CHECK (num_uses_limit >= 0),
    revoked INTEGER NOT NULL DEFAULT 0,
    trusted_ips TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_renewed_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX identity_access_tokens_identity ON identity_access_tokens (identity_id);

-- Read on every authorization check of an identity: clustered on (identity_id, project_id), so that
-- read is one b-tree seek, rules included. rules is NULL when the role applies everywhere, else the
-- store's compact encoding of the rule list (sqlite.c, rules_encode), opaque to everything else.
CREATE TABLE identity_memberships (
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    rules BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (identity_id, project_id)
) WITHOUT ROWID;
CREATE INDEX identity_memberships_project ON identity_memberships (project_id);
