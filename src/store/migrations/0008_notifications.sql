-- Coffer schema version 8: expiry notifications. A channel belongs to a project, or to no
-- project (server-wide: it receives every notice, client secrets' included). A notice is one message
-- about one state of one item (core/expiry.h cf_expiry_item_key) at one threshold, for one channel:
-- the UNIQUE constraint makes creating it a claim, so that every notice exists once however many
-- times, and on however many servers, the scan runs. Its delivery state lives on the row.
CREATE TABLE notification_channels (
    id TEXT PRIMARY KEY,
    project_id TEXT REFERENCES projects (id) ON DELETE CASCADE, -- NULL: server-wide
    type TEXT NOT NULL CHECK (type IN ('webhook', 'slack', 'teams', 'email')),
    name TEXT NOT NULL,
    target TEXT NOT NULL,          -- a URL, or comma-separated e-mail recipients
    signing_secret TEXT NOT NULL,  -- sealed (crypto/serverkey.h); '' for none
    created_at INTEGER NOT NULL
);

-- Per-project thresholds, e.g. '30d,7d,1d' (default when absent).
CREATE TABLE notification_settings (
    project_id TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    thresholds TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE notices (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    item_key TEXT NOT NULL,
    threshold TEXT NOT NULL,       -- '30d', '7d', '1d', 'expired', 'due', ...
    project_id TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL,
    item TEXT NOT NULL,            -- the item as JSON (no secret value: names, places, dates)
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    delivered_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (item_key, threshold, channel_id)
);
CREATE INDEX notices_pending ON notices (next_attempt_at) WHERE state = 'pending';
