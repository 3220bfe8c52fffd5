-- Coffer schema version 9: app connections (core/connections.h), the credentials Coffer holds to
-- reach another system. The credentials are sealed text (crypto/serverkey.h, bound to the row's
-- id); public_fields is what may be shown of them (ids, names, hints) as JSON. expires_at is the
-- credential's own expiry (0: none known), an item of the expiry query: the partial index serves
-- its scan. The last check's time and result live on the row.
CREATE TABLE app_connections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    app TEXT NOT NULL,
    method TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    credentials TEXT NOT NULL,
    public_fields TEXT NOT NULL,
    expires_at INTEGER NOT NULL DEFAULT 0,
    expires_learned INTEGER NOT NULL DEFAULT 0, -- 1: expires_at came from a check or certificate
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    checked_at INTEGER NOT NULL DEFAULT 0,
    check_ok INTEGER NOT NULL DEFAULT 0,
    check_result TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX app_connections_expiring ON app_connections (expires_at) WHERE expires_at > 0;
