-- Placeholder for schema version 22, which another branch adds: it keeps the numbering
-- without gaps on this branch. Drop this file when merging the branch that owns the number.
SELECT 1;
