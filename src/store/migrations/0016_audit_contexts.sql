-- Coffer schema version 16: compact audit events (docs/audit.md "How events are stored"). What
-- repeats from event to event is stored once, as a row of audit_contexts: who (actor kind, id and
-- name), from where (source IP, user agent), what (action, result) and on what (project,
-- environment, path and the keys named, these as before: in keys, or by key_set when long). An
-- event refers to its context and keeps only what is its own: its id (the UUID's 16 bytes, or the
-- last 8 of a UUIDv7 whose first 8 are the event's time; any other id as its text), time, reason,
-- request id (the 8 bytes of Coffer's 16 hex digits; any other as its text) and hash. Its prevHash is not stored: it is the hash of the event before it (the
-- anchor's for the first event after an archive cut, zeros for event 1), read from there. The
-- chain's format is unchanged: an event's hash covers its fields as read, so a context edited after
-- the fact shows as its first event edited, and a deleted, inserted or moved event breaks the
-- links as before. digest is a hash of a context's fields by which a server finds one to reuse
-- (store/audit.c); NULL for the contexts made here from older events, which new events do not
-- reuse. Contexts are only ever added.
CREATE TABLE audit_contexts (
    id INTEGER PRIMARY KEY,
    digest BLOB UNIQUE,
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
    key_set INTEGER NOT NULL DEFAULT 0,
    result TEXT NOT NULL
);

INSERT INTO audit_contexts (id, actor_kind, actor_id, actor_name, source_ip, user_agent, action,
                            project_id, environment, path, keys, key_set, result)
SELECT ROW_NUMBER() OVER (ORDER BY MIN(seq)), actor_kind, actor_id, actor_name, source_ip,
       user_agent, action, project_id, environment, path, keys, key_set, result
FROM audit_events
GROUP BY actor_kind, actor_id, actor_name, source_ip, user_agent, action, project_id, environment,
         path, keys, key_set, result;

CREATE TABLE audit_events_compact (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    time_us INTEGER NOT NULL,
    context INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    request_id BLOB NOT NULL,
    hash BLOB NOT NULL
);

-- The ids and request ids of older events keep their text: a reader takes an id of 16 bytes and a
-- request id of 8 as the binary form, and any other length as text (store/audit.c).
INSERT INTO audit_events_compact (seq, id, time_us, context, reason, request_id, hash)
SELECT e.seq, CAST(e.id AS BLOB), e.time_us, c.id, e.reason, CAST(e.request_id AS BLOB), e.hash
FROM audit_events e
JOIN audit_contexts c ON c.actor_kind = e.actor_kind AND c.actor_id = e.actor_id
    AND c.actor_name = e.actor_name AND c.source_ip = e.source_ip AND c.user_agent = e.user_agent
    AND c.action = e.action AND c.project_id = e.project_id AND c.environment = e.environment
    AND c.path = e.path AND c.keys = e.keys AND c.key_set = e.key_set AND c.result = e.result;

DROP TABLE audit_events;

ALTER TABLE audit_events_compact RENAME TO audit_events;
