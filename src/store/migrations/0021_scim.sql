-- Coffer schema version 21: SCIM 2.0 provisioning. scim_tokens are the bearer tokens of SCIM
-- clients (Entra ID's provisioning service), made by an owner and kept as keyed hashes; such a token
-- can do nothing but SCIM. scim_users marks the users a SCIM client provisioned, with the userName
-- and externalId it gave them (each unique, lower-cased userName); such a user signs in through
-- single sign-on, linked at its first sign-in by e-mail address.
CREATE TABLE scim_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    revoked INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE scim_users (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    user_name TEXT NOT NULL UNIQUE,
    external_id TEXT UNIQUE,
    created_at INTEGER NOT NULL
);
