-- Coffer schema version 1: server metadata, projects, environments, folders, secrets with every
-- version, folder imports and tags. Everything below a project is deleted with it (ON DELETE
-- CASCADE), so deleting a project, an environment or a folder needs one statement. Ids are UUID
-- strings, times Unix milliseconds. Applied by the store inside one transaction and recorded in
-- schema_migrations; never edit a released migration, add the next numbered file instead.

-- Server-wide values: the admin token hash, the root key check.
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    wrapped_key BLOB NOT NULL, -- the project data key, wrapped by the root key
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- position is 1-based and dense within a project; the store renumbers on moves and deletes.
CREATE TABLE environments (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL CHECK (position >= 1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, slug)
);

-- path is "/" for the root folder (parent_id NULL, created with its environment) or "/a/b". The
-- unique (env_id, path) index serves exact lookups and subtree range scans (path > '/a/' AND path <
-- '/a0').
CREATE TABLE folders (
    id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    parent_id TEXT REFERENCES folders (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    path TEXT NOT NULL CHECK (substr(path, 1, 1) = '/'),
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (env_id, path)
);
CREATE INDEX folders_parent ON folders (parent_id);

-- One row per secret: its current key and version. Clustered on (folder_id, key) (WITHOUT ROWID),
-- so listing a folder reads its secrets in key order from one b-tree range; id is unique for
-- lookups and foreign keys.
CREATE TABLE secrets (
    folder_id TEXT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL CHECK (version >= 1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (folder_id, key)
) WITHOUT ROWID;

-- Every version of every secret; sealed is the AEAD-sealed value (opaque to the store), tags a JSON
-- array of tag ids (opaque too). Clustered on (secret_id, version): fetching a version is one
-- b-tree seek.
CREATE TABLE secret_versions (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    key TEXT NOT NULL,
    sealed BLOB NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    expires_at INTEGER NOT NULL DEFAULT 0,
    skip_multiline INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (secret_id, version)
) WITHOUT ROWID;

-- A folder importing another environment's folder, by path (the imported folder need not exist).
CREATE TABLE secret_imports (
    id TEXT PRIMARY KEY,
    folder_id TEXT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    import_env_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    import_path TEXT NOT NULL,
    position INTEGER NOT NULL CHECK (position >= 1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (folder_id, import_env_id, import_path)
);
CREATE INDEX secret_imports_env ON secret_imports (import_env_id);

CREATE TABLE tags (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    color TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, slug)
);
