-- Coffer schema version 18: pending single sign-on logins (docs/users.md "Single sign-on"). A row
-- is made when a browser is sent to the identity provider and taken (read and deleted in one
-- transaction) when it comes back, so that a login's state is single use and any node sharing the
-- store can finish a login another node began. Only a keyed hash of the state is kept: the nonce
-- and the PKCE verifier are derived from the state with a key of the root key (auth/oidc.c), so
-- nothing here lets a reader of the database finish a login. Rows live ten minutes; expired ones
-- are deleted by the next login that begins. source_ip (the address that began the login) bounds how
-- many one address may hold pending, so that one caller cannot fill the table for everyone.
CREATE TABLE sso_logins (
    state_hash BLOB PRIMARY KEY,
    return_path TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);
CREATE INDEX sso_logins_source ON sso_logins (source_ip);
