-- Coffer schema version 15: the change counter 'content'. A server keeps the rendered body of a
-- folder list in memory and serves it again only while this counter still has the value it had
-- when the body was made. Triggers bump it in the transaction of every change that can alter what a
-- list answers: secrets and their versions (writes, deletes, rollbacks), imports, tags, folders,
-- environments and projects (a root-key rotation rewraps projects.wrapped_key), whichever server or
-- code path makes it. As in 0013, the triggers are written per dialect (store/sqlite.c and
-- store/postgres.c add them after this file).
INSERT INTO change_counters (name, value) VALUES ('content', 0);
