-- Coffer schema version 16: reserved for a change made on another branch at the same time; it
-- changes nothing here, so that the numbering has no gap. Replaced by that branch's file when both
-- are merged.
SELECT 1;
