-- Coffer schema version 16 is another change's migration; this stand-in keeps the numbering without
-- gaps on a branch that does not have it yet. It changes nothing, and is deleted when that
-- change's 0016 file is merged.
SELECT 1;
