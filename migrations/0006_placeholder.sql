-- Placeholder so that 0007 applies on this branch: version 6 is reserved for another part of the
-- Trust issue (task accounts). When merging, replace it with that part's 0006, or keep this no-op if
-- that part needed no migration.
SELECT 1;
