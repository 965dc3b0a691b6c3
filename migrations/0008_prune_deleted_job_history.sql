-- History retention (`EngineConfiguration.historyRetention`, `bookend serve --history-retention`):
-- the events of a job deleted longer ago than the retention may be removed, so that the history of
-- deleted jobs does not grow without bound.

-- Pages freed by pruning go back to the file system with `PRAGMA incremental_vacuum`. A file that
-- already has tables changes mode only with a VACUUM, which cannot run inside this migration's
-- transaction: the migration runner runs it once this has committed (see docs/decisions.md).
PRAGMA auto_vacuum = INCREMENTAL;

-- The log stays append-only for everything else: a row may be deleted only when its job has a
-- `job.deleted` event at or after it, that is, the row belongs to a job (or an earlier job of the
-- same id) that has been deleted. Pruning removes a job's rows before its `job.deleted` row.
DROP TRIGGER event_no_delete;
CREATE TRIGGER event_no_delete BEFORE DELETE ON event
WHEN old.job_id IS NULL
    OR NOT EXISTS (SELECT 1 FROM event d WHERE d.job_id = old.job_id AND d.kind = 'job.deleted' AND d.seq >= old.seq)
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;

-- Finding the deletions older than the retention without reading the whole log.
CREATE INDEX event_job_deleted ON event (time) WHERE kind = 'job.deleted';
