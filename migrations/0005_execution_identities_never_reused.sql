-- Execution keys are never reused, and every launch has a nonce of its own.
--
-- Until version 4, execution.pk was a plain INTEGER PRIMARY KEY: deleting the newest executions (a
-- job delete) handed their numbers to the next ones, and with them their status folders
-- (volatile/executions/<pk>), where an old `exit` file could be read as the new execution's. SQLite
-- gives AUTOINCREMENT only to a table created with it, so the table is rebuilt here with every
-- column, CHECK and index it had, plus `launch_nonce`: random, written in the transaction that
-- commits the execution, and part of its status folder's name (<pk>-<nonce>). Rows from before this
-- version keep their folders and have no nonce.
--
-- task_history reads execution, so it is dropped first and created again exactly as version 2 made it.

DROP VIEW task_history;

CREATE TABLE execution_v5 (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('task', 'preparation', 'release', 'start')),
    node_pk INTEGER NOT NULL REFERENCES node (pk),
    job_pk INTEGER REFERENCES job (pk) ON DELETE CASCADE,
    task_pk INTEGER REFERENCES task (pk) ON DELETE CASCADE,
    attempt INTEGER NOT NULL CHECK (attempt >= 1),
    state TEXT NOT NULL CHECK (state IN ('starting', 'running', 'completed')),
    -- The execution's directory (stdout.txt, stderr.txt, wd/) and where its shim writes pid and exit.
    task_dir TEXT NOT NULL,
    status_dir TEXT NOT NULL,
    start_time TEXT NOT NULL,
    end_time TEXT,
    -- When the process must be killed (start + maxWallClockTime); NULL for unlimited.
    deadline TEXT,
    pid INTEGER,
    -- Field 22 of /proc/<pid>/stat, so that a reused pid is never taken for this process.
    pid_start_time INTEGER,
    -- Why Bookend signalled the process, recorded before the signal is sent.
    kill_reason TEXT CHECK (kill_reason IN ('timeout', 'terminate', 'requeue', 'delete', 'shutdown')),
    exit_code INTEGER,
    result TEXT CHECK (result IN ('success', 'failure')),
    failure_info TEXT CHECK (failure_info IS NULL OR json_valid(failure_info)),
    -- The owner's retry and requeue counts when this attempt started.
    retry_count INTEGER NOT NULL DEFAULT 0,
    requeue_count INTEGER NOT NULL DEFAULT 0,
    -- 1 when the attempt ended without a result of its own (requeued, or its node rebooted).
    interrupted INTEGER NOT NULL DEFAULT 0 CHECK (interrupted IN (0, 1)),
    retention_deadline TEXT,
    files_deleted_time TEXT,
    -- 16 hex digits chosen when the row is inserted; the status folder is <pk>-<nonce>. NULL only
    -- for executions committed before version 5.
    launch_nonce TEXT CHECK (launch_nonce IS NULL OR (length(launch_nonce) = 16 AND launch_nonce NOT GLOB '*[^0-9a-f]*')),
    CHECK ((kind = 'start') = (job_pk IS NULL)),
    CHECK ((kind = 'task') = (task_pk IS NOT NULL)),
    CHECK ((state = 'completed') = (end_time IS NOT NULL)),
    CHECK (state <> 'running' OR pid IS NOT NULL),
    CHECK ((pid IS NULL) = (pid_start_time IS NULL)),
    CHECK (state = 'completed' OR (result IS NULL AND exit_code IS NULL)),
    CHECK (state <> 'completed' OR result IS NOT NULL OR interrupted = 1),
    CHECK (retention_deadline IS NULL OR state = 'completed')
) STRICT;

INSERT INTO execution_v5 (pk, kind, node_pk, job_pk, task_pk, attempt, state, task_dir, status_dir, start_time, end_time,
    deadline, pid, pid_start_time, kill_reason, exit_code, result, failure_info, retry_count, requeue_count, interrupted,
    retention_deadline, files_deleted_time)
SELECT pk, kind, node_pk, job_pk, task_pk, attempt, state, task_dir, status_dir, start_time, end_time,
    deadline, pid, pid_start_time, kill_reason, exit_code, result, failure_info, retry_count, requeue_count, interrupted,
    retention_deadline, files_deleted_time
FROM execution;

DROP TABLE execution;
ALTER TABLE execution_v5 RENAME TO execution;

CREATE INDEX execution_live ON execution (node_pk) WHERE state <> 'completed';
CREATE INDEX execution_task ON execution (task_pk, attempt) WHERE task_pk IS NOT NULL;
CREATE INDEX execution_job ON execution (job_pk, kind) WHERE job_pk IS NOT NULL;
CREATE INDEX execution_retention ON execution (retention_deadline)
    WHERE files_deleted_time IS NULL AND retention_deadline IS NOT NULL;

CREATE VIEW task_history AS
SELECT
    j.id AS job_id,
    t.id AS task_id,
    e.attempt AS attempt,
    n.id AS node_id,
    e.state AS state,
    e.exit_code AS exit_code,
    e.result AS result,
    json_extract(e.failure_info, '$.code') AS failure_code,
    e.start_time AS start_time,
    e.end_time AS end_time,
    e.retry_count AS retry_count,
    e.requeue_count AS requeue_count,
    e.retention_deadline AS retention_deadline
FROM execution e
JOIN task t ON t.pk = e.task_pk
JOIN job j ON j.pk = e.job_pk
JOIN node n ON n.pk = e.node_pk
WHERE e.kind = 'task';
