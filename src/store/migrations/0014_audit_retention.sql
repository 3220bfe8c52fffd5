-- Coffer schema version 14: audit retention (docs/audit.md "Retention"). Events older than
-- --audit-retention are written to signed, compressed archive files and then deleted from
-- audit_events; the one row of audit_archive_state keeps the anchor, the last archived event's seq
-- and hash, signed with the audit key (core/audit.h), from which the live chain goes on, and the
-- claim (owner, lease_until_us) that lets one server at a time archive when several share the
-- store. audit_last_reads keeps, per secret, its newest read among the archived events, so that the
-- inventory's "last read" outlives the events it came from. The state row is made by the first claim
-- (so that `coffer operator migrate` copies it like any row). Never a secret value in any column.
CREATE TABLE audit_archive_state (
    id INTEGER PRIMARY KEY,
    anchor_seq INTEGER NOT NULL DEFAULT 0,
    anchor_hash BLOB,
    anchor_time_us INTEGER NOT NULL DEFAULT 0,
    anchor_signature BLOB,
    owner TEXT NOT NULL DEFAULT '',
    lease_until_us INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE audit_last_reads (
    project_id TEXT NOT NULL,
    environment TEXT NOT NULL,
    path TEXT NOT NULL,
    key TEXT NOT NULL,
    read_at_us INTEGER NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL DEFAULT '',
    actor_name TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (project_id, environment, path, key)
);
