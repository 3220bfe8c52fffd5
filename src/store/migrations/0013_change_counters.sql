-- Coffer schema version 13: change counters. A server caches in memory what every request looks up
-- (projects, environments, folders, memberships with their rules, access tokens; never a secret
-- value) and uses an entry only while the counter named 'lookups' still has the value it had when
-- the entry was read; the counter is read once per request. Triggers bump it in the transaction of
-- every change that can alter a cached row, whichever process or code path makes it, so a change
-- on one server is seen by every server sharing the database on its next request. The triggers
-- are written per dialect (store/sqlite.c and store/postgres.c add them after this file), since
-- SQLite and PostgreSQL declare triggers differently.
CREATE TABLE change_counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO change_counters (name, value) VALUES ('lookups', 0);
