-- The folder of a deleted task, recorded by the transaction that deletes the task and removed after
-- its commit. A crash between the commit and the removal left the folder on disk until its job was
-- deleted (the start-up sweep covered job folders only); the next start, or the pass after the
-- removal, now finishes what is recorded here and forgets the row. job_id and task_id say whose it
-- was: a task added since under the same id uses the same folder, which is then left alone.
CREATE TABLE task_folder_removal (
    pk INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    path TEXT NOT NULL
);
