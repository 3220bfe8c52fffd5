-- Coffer schema version 20: a second factor for local accounts (docs/users.md "Two-factor sign-in").
-- user_totp: a user's TOTP (RFC 6238) secret, sealed by the server's auth key (crypto/serverkey.h,
-- "sealed:v1:...", bound to the user's id: the store never holds it in clear). enabled is 0 while
-- enrolment waits for the first valid code, 1 once sign-in asks for codes. last_step is the last
-- time step (Unix seconds / 30) whose code was accepted; a code of that step or an earlier one is
-- refused, so that a code seen once cannot be used again. user_recovery_codes: the single-use
-- recovery codes, as keyed hashes only (crypto/token.h); a code is used by deleting its row.
-- mfa_tickets: the short-lived tickets a password sign-in gets when a code is still needed, as keyed
-- hashes, taken (deleted) by the sign-in that presents a good code. All go with their user.
CREATE TABLE user_totp (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 0,
    last_step INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE user_recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

CREATE TABLE mfa_tickets (
    ticket_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source_ip TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX mfa_tickets_expires ON mfa_tickets (expires_at);
CREATE INDEX mfa_tickets_user ON mfa_tickets (user_id);
