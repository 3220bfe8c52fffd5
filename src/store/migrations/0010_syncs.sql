-- Coffer schema version 10: secret syncs (docs/syncs.md). A sync pushes one source folder (project,
-- environment, folder path, imports expanded) to one destination through a connection (none for a
-- file). Its queue state lives on its row: a change to the source raises pending_gen; a node claims
-- the sync (claim_owner, claim_until: a lease, so that a node that dies mid-run loses it) and, when
-- the run succeeds, sets done_gen to the generation it saw at the claim. pending_gen > done_gen means
-- "a change has not reached the destination yet", which survives restarts and is seen by every node.
CREATE TABLE syncs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    env_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    folder_path TEXT NOT NULL,
    destination TEXT NOT NULL,          -- Infisical's slug: 'file', 'azure-devops', ...
    connection_id TEXT NOT NULL DEFAULT '', -- '' for a destination that needs none (file)
    destination_config TEXT NOT NULL,   -- JSON object
    sync_options TEXT NOT NULL,         -- JSON object: keySchema, initialSyncBehavior, ...
    auto_sync INTEGER NOT NULL DEFAULT 1,
    sync_status TEXT NOT NULL DEFAULT 'pending', -- 'pending', 'running', 'succeeded', 'failed'
    last_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_synced_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',       -- no secret value: names, statuses, codes
    last_error_cause TEXT NOT NULL DEFAULT '', -- the class of the failure ('unauthorized', ...)
    items_pushed INTEGER NOT NULL DEFAULT 0,
    drift TEXT NOT NULL DEFAULT '[]',          -- JSON array of the names found drifted
    initial_done INTEGER NOT NULL DEFAULT 0,   -- the initial behaviour has been applied
    pending_gen INTEGER NOT NULL DEFAULT 1,
    done_gen INTEGER NOT NULL DEFAULT 0,
    claim_owner TEXT NOT NULL DEFAULT '',
    claim_until INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,       -- failed runs in a row
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    notified_error TEXT NOT NULL DEFAULT '',   -- the last failure told to the channels (its hash)
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX syncs_by_project ON syncs (project_id);

-- What the last successful run of a sync holds at its destination: one row per destination name,
-- with the Coffer secret it came from (its environment, folder path and key), the version pushed
-- and a keyed hash of the value (BLAKE2b under a key derived from the root key; never the value).
CREATE TABLE sync_items (
    sync_id TEXT NOT NULL REFERENCES syncs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_env_id TEXT NOT NULL,
    secret_path TEXT NOT NULL,
    secret_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    value_hash TEXT NOT NULL,
    pushed_at INTEGER NOT NULL,
    PRIMARY KEY (sync_id, name)
);
CREATE INDEX sync_items_by_secret ON sync_items (secret_env_id, secret_path, secret_key);
