-- Coffer schema version 23: access requests and temporary grants. A user asks for actions (a mask of
-- core/authz.h's action bits: read, create, edit, delete) in one environment of a project under a
-- path glob, for a duration, giving a reason. A project administrator or an org owner/admin other
-- than the requester grants it (status 'granted': the grant holds from starts_at until ends_at,
-- Unix milliseconds), denies it, or revokes a grant. A grant needs no job to expire: authorization
-- matches it only while the clock is before ends_at. decided_by and revoked_by name the deciding
-- principal (a user's email, "admin"), comment the decider's words. Deleting the user, project or
-- environment deletes its requests.
CREATE TABLE access_requests (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    env_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    path_glob TEXT NOT NULL,
    actions INTEGER NOT NULL,
    duration_s INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'denied', 'revoked')),
    created_at INTEGER NOT NULL,
    decided_by TEXT NOT NULL DEFAULT '',
    decided_at INTEGER NOT NULL DEFAULT 0,
    comment TEXT NOT NULL DEFAULT '',
    starts_at INTEGER NOT NULL DEFAULT 0,
    ends_at INTEGER NOT NULL DEFAULT 0,
    revoked_by TEXT NOT NULL DEFAULT '',
    revoked_at INTEGER NOT NULL DEFAULT 0
);
-- Read on authorization checks of a user whose membership does not allow the action.
CREATE INDEX access_requests_grants ON access_requests (user_id, project_id, status);
CREATE INDEX access_requests_project ON access_requests (project_id, created_at);
