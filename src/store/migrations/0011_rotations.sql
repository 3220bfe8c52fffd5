-- Coffer schema version 11: secret rotations (docs/rotation.md). A rotation owns one credential at a
-- provider (rotator.h), keeps its current value in Coffer secrets (project, environment, folder path,
-- and the keys of secrets_mapping) and renews it on a schedule or on demand, one step at a time. The
-- state machine's position lives on the row, so that a process killed at any step leaves a state the
-- next run continues from: pending_step names the step to do next, pending_generation the credential
-- being rolled out, pending_cred_id its id at the provider once issued. No secret value is ever
-- stored here: a new credential's value lives only in the versions of the mapped secrets.
CREATE TABLE rotations (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    env_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    folder_path TEXT NOT NULL,
    type TEXT NOT NULL,                     -- Infisical's slug: 'azure-client-secret', ...
    connection_id TEXT NOT NULL DEFAULT '', -- '' for a rotator that needs none
    parameters TEXT NOT NULL,               -- JSON object, checked by the rotator
    secrets_mapping TEXT NOT NULL,          -- JSON object: output name -> secret key
    consumers TEXT NOT NULL DEFAULT '[]',   -- JSON array of {type, connectionId, config}
    interval_days INTEGER NOT NULL DEFAULT 0,      -- 0: no interval
    days_before_expiry INTEGER NOT NULL DEFAULT 0, -- 0: not tied to the expiry
    rotate_at_minute INTEGER NOT NULL DEFAULT 0,   -- minutes after 00:00 UTC (rotateAtUtc)
    grace_period_ms INTEGER NOT NULL,
    lifetime_ms INTEGER NOT NULL DEFAULT 0,        -- 0: the provider's default
    auto_rotate INTEGER NOT NULL DEFAULT 1,
    -- The credential in use and the one it replaced (revoked after the grace period).
    generation INTEGER NOT NULL DEFAULT 0,         -- 0: none issued yet
    current_cred_id TEXT NOT NULL DEFAULT '',
    current_expires_at INTEGER NOT NULL DEFAULT 0,
    previous_cred_id TEXT NOT NULL DEFAULT '',
    -- The rotation in progress: '' idle, else 'issue', 'store', 'verify', 'push', 'syncs', 'grace',
    -- 'revoke'.
    pending_step TEXT NOT NULL DEFAULT '',
    pending_generation INTEGER NOT NULL DEFAULT 0,
    pending_cred_id TEXT NOT NULL DEFAULT '',
    pending_expires_at INTEGER NOT NULL DEFAULT 0,
    pending_version INTEGER NOT NULL DEFAULT 0,    -- the version of the secret holding the value
    pending_consumer INTEGER NOT NULL DEFAULT 0,   -- consumers done so far in the push step
    grace_until INTEGER NOT NULL DEFAULT 0,
    step_started_at INTEGER NOT NULL DEFAULT 0,
    step_attempts INTEGER NOT NULL DEFAULT 0,      -- attempts of the pending step started so far
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',           -- no secret value: names, statuses, codes
    last_error_cause TEXT NOT NULL DEFAULT '',
    last_error_step TEXT NOT NULL DEFAULT '',
    notified_error TEXT NOT NULL DEFAULT '',       -- the last failure told to the channels (hash)
    status TEXT NOT NULL DEFAULT 'idle',           -- 'idle', 'rotating', 'failed', 'succeeded'
    run_requested INTEGER NOT NULL DEFAULT 0,      -- a rotation asked for now
    last_rotated_at INTEGER NOT NULL DEFAULT 0,
    next_rotation_at INTEGER NOT NULL DEFAULT 0,   -- 0: none scheduled
    claim_owner TEXT NOT NULL DEFAULT '',
    claim_until INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX rotations_by_project ON rotations (project_id);

-- One row per step outcome of a rotation; seq orders a rotation's rows (several may share a
-- millisecond).
CREATE TABLE rotation_history (
    id TEXT PRIMARY KEY,
    rotation_id TEXT NOT NULL REFERENCES rotations (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    step TEXT NOT NULL,
    outcome TEXT NOT NULL,                 -- 'ok', 'failed', 'waiting'
    cause TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',      -- no secret value
    credential_id TEXT NOT NULL DEFAULT '',
    at INTEGER NOT NULL
);
CREATE INDEX rotation_history_by_rotation ON rotation_history (rotation_id, seq);
