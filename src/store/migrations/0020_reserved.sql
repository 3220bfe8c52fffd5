-- Placeholder for schema version 20, which another branch defines: the migrations must run without
-- gaps, so this branch holds the number until that one is merged (the merge replaces this file).
SELECT 1;
