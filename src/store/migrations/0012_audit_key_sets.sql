-- Coffer schema version 12: compact audit events. An event that names many secret keys (a folder
-- listed: every key it returned) refers to its list of names by key_set, an id derived from the
-- list's text (store/audit.c), instead of repeating the list in every event; the list itself is
-- stored once in audit_key_sets. key_set 0: the names are in the event's own keys column, as
-- before. The event's hash covers the list of names, not the reference (core/audit.h), so a key
-- set changed after the fact shows in `coffer audit verify` as every event using it edited. Rows
-- are never updated; a key set is only ever added.
CREATE TABLE audit_key_sets (
    id INTEGER PRIMARY KEY,
    keys TEXT NOT NULL
);

ALTER TABLE audit_events ADD COLUMN key_set INTEGER NOT NULL DEFAULT 0;
