-- Coffer schema version 22: approval policies and change requests (docs/approvals.md).
-- A policy covers an environment of a project under a folder path glob: a user's write there does
-- not apply but becomes a change request that needs `approvals` approvals from the policy's
-- approvers (users, directly or through a group of 0019) before it may be merged; a machine
-- identity's write there is refused unless allow_machines. enforcement 'soft' lets an org owner
-- merge without the approvals, giving a reason; 'hard' lets nobody.
CREATE TABLE approval_policies (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    env_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    path_glob TEXT NOT NULL,
    approvals INTEGER NOT NULL CHECK (approvals >= 1),
    enforcement TEXT NOT NULL CHECK (enforcement IN ('hard', 'soft')),
    allow_machines INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX approval_policies_env ON approval_policies (env_id);

-- A policy's approvers: each row names a user or a group (exactly one of the two).
CREATE TABLE approval_policy_approvers (
    policy_id TEXT NOT NULL REFERENCES approval_policies (id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    group_id TEXT REFERENCES user_groups (id) ON DELETE CASCADE,
    CHECK ((user_id IS NULL AND group_id IS NOT NULL) OR (user_id IS NOT NULL AND group_id IS NULL))
);
CREATE INDEX approval_policy_approvers_policy ON approval_policy_approvers (policy_id);

-- A change request: the writes a user asked for in one folder, held until merged. The policy's
-- name and approvals are copied so that a request keeps the terms it was made under. status:
-- 'open' (waiting for approvals, or approved and not yet merged), 'merged', 'rejected' (an approver
-- rejected it) or 'closed' (its author withdrew it).
CREATE TABLE change_requests (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    policy_id TEXT REFERENCES approval_policies (id) ON DELETE SET NULL,
    policy_name TEXT NOT NULL,
    approvals_required INTEGER NOT NULL,
    enforcement TEXT NOT NULL,
    env_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    folder_id TEXT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    author_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('open', 'merged', 'rejected', 'closed')),
    merged_by TEXT NOT NULL DEFAULT '',
    bypass_reason TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX change_requests_project ON change_requests (project_id, status, created_at);

-- The changes of a request, in order. op: 'create', 'update' or 'delete'; base_version: the key's
-- version when the request was made (0: it did not exist), which a merge requires unchanged.
-- sealed: the proposed value sealed with the project key like a secret version (NULL: the value
-- is not changed); new_key, comment and skip_multiline: NULL when not changed.
CREATE TABLE change_request_items (
    request_id TEXT NOT NULL REFERENCES change_requests (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    key TEXT NOT NULL,
    new_key TEXT,
    base_version INTEGER NOT NULL,
    sealed BLOB,
    comment TEXT,
    skip_multiline INTEGER,
    PRIMARY KEY (request_id, position)
) WITHOUT ROWID;

-- One decision per reviewer and request.
CREATE TABLE change_request_reviews (
    request_id TEXT NOT NULL REFERENCES change_requests (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    comment TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, user_id)
) WITHOUT ROWID;
