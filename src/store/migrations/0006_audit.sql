-- Coffer schema version 6: the tamper-evident audit log. One row per event, numbered
-- 1, 2, ... without gaps (seq); prev_hash and hash chain each event to the one before it (see
-- core/audit.h). Never updated or deleted by Coffer. Checkpoints are signed statements "event N has
-- hash H". Never a secret value, client secret or token in any column.
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL DEFAULT '',
    actor_name TEXT NOT NULL DEFAULT '',
    source_ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    project_id TEXT NOT NULL DEFAULT '',
    environment TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL DEFAULT '',
    keys TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);

CREATE TABLE audit_checkpoints (
    event_seq INTEGER PRIMARY KEY,
    time_us INTEGER NOT NULL,
    event_hash BLOB NOT NULL,
    signature BLOB NOT NULL
);
