-- Coffer schema version 19: groups of users. A group has a unique name, optionally the id it has in
-- the identity provider (external_id: the Entra ID group object id that appears in ID tokens' groups
-- claim, or the id a SCIM client gave it; unique, NULL for a group made in Coffer), members (users),
-- and project memberships exactly like a user's (role plus env/path rules), which every member holds
-- as well as their own. Deleting a group or a user deletes the rows that name it.
CREATE TABLE user_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    external_id TEXT UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE user_group_members (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX user_group_members_user ON user_group_members (user_id);

-- As user_memberships (0017), for groups: read on every authorization check of a member user.
CREATE TABLE group_memberships (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    rules BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, project_id)
) WITHOUT ROWID;
CREATE INDEX group_memberships_project ON group_memberships (project_id);
