-- Coffer schema version 26: secrets marked leaked (docs/scan.md "Marking leaked secrets"). A row says
-- that the value of one version of a secret was found where it should not be: source names where
-- (a file and line, or a commit, as `coffer scan --known --mark-leaked` reports it), fingerprint is
-- the scan finding's fingerprint (a hash; never the value), and the actor is who marked it. The
-- mark holds while that version is the secret's current one: a new version (a changed value) makes
-- it stale, readers ignore it, and marking again replaces it. The history of marks stays in the
-- audit log (secret.leaked events).
CREATE TABLE secret_leaks (
    secret_id TEXT PRIMARY KEY REFERENCES secrets (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    leaked_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '',
    actor_kind TEXT NOT NULL,            -- 'admin', 'identity', 'user'
    actor_id TEXT NOT NULL DEFAULT '',
    actor_name TEXT NOT NULL DEFAULT ''
);
