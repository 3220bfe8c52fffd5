-- Coffer schema version 17: people. One organisation per server: every user belongs to it with an
-- org role (owner, admin, member) and a status (active, disabled). A user signs in with a local
-- password (an Argon2id string from libsodium's crypto_pwhash_str; NULL for a user who has none)
-- or through single sign-on (sso_issuer + sso_subject, NULL for local users; the pair is unique,
-- and both databases treat NULLs as distinct). Emails are stored lower-cased and are unique.
-- A user's project memberships, browser sessions and personal access tokens are deleted with the
-- user (ON DELETE CASCADE); a disabled user keeps them, but every request checks the user's status,
-- so they stop working at once. Sessions and tokens are stored as keyed hashes only. Times are Unix
-- milliseconds; 0 means never.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    org_role TEXT NOT NULL CHECK (org_role IN ('owner', 'admin', 'member')),
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash TEXT,
    sso_issuer TEXT,
    sso_subject TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_login_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (sso_issuer, sso_subject)
);

-- As identity_memberships (0002), for users: read on every authorization check of a member.
CREATE TABLE user_memberships (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    rules BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, project_id)
) WITHOUT ROWID;
CREATE INDEX user_memberships_project ON user_memberships (project_id);

-- A browser session: the cookie holds "<id>.<secret>", hash is the keyed hash of the secret and
-- csrf_hash that of the CSRF token given with it. It ends at expires_at (the absolute timeout) or
-- once last_seen_at is older than the idle timeout.
CREATE TABLE user_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    csrf_hash BLOB NOT NULL CHECK (length(csrf_hash) = 32),
    source_ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX user_sessions_user ON user_sessions (user_id);

-- A personal access token "coffer_pat_<id>_<secret>": hash is the keyed hash of the whole token.
CREATE TABLE personal_access_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX personal_access_tokens_user ON personal_access_tokens (user_id, created_at);
