-- Coffer schema version 24: the admin token's stored hash and its break-glass switch (meta rows
-- 'admin_token_hash' and 'admin_token_disabled') join the lookup cache of migration 0013: every
-- request made with the admin token reads both, so they are kept in memory while the change counter
-- 'lookups' holds its value, and triggers (per dialect, store/sqlite.c and store/postgres.c) bump it
-- in the transaction of any change to either row, so that a rotation or a disabling on one server
-- (or by `coffer operator` on the host) is honoured by every server on its next request. Existing
-- caches are invalidated once here.
UPDATE change_counters SET value = value + 1 WHERE name = 'lookups';
