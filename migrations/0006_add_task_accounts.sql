-- Non-admin work runs under accounts of its own when the engine is root: one per pool (autoUser
-- scope 'pool'), one per task with scope 'task'. The uids come from a reserved range with no
-- /etc/passwd entry, gid = uid. They are recorded here so that a restart launches the same work under
-- the same account and no uid is ever handed to two owners within a data directory. NULL: not
-- allocated yet (or the engine is not root, and tasks share its account).
ALTER TABLE pool ADD COLUMN uid INTEGER CHECK (uid IS NULL OR uid > 0);
ALTER TABLE task ADD COLUMN uid INTEGER CHECK (uid IS NULL OR uid > 0);
-- The account this execution runs as; NULL for admin work and when the engine is not root.
ALTER TABLE execution ADD COLUMN uid INTEGER CHECK (uid IS NULL OR uid > 0);
-- The current block of reserved uids (setting 'task_uid_block') and the next free one
-- ('task_uid_next') live in `setting`.
