-- Placeholder so that 0007 applies on this branch: version 5 belongs to another part of the
-- Trust issue (one engine per data directory). When merging, keep that part's 0005 and delete this file.
SELECT 1;
