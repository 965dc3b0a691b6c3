-- CHECKs that compare a column with three or more values use OR chains instead of IN lists.
--
-- SQLite builds a small temporary table for every `col IN ('a', 'b', 'c', ...)` it evaluates in a
-- CHECK, row by row; lists of one or two values, and OR chains, compile to plain comparisons. Inserting
-- a task evaluated three such lists (task.state, task.previous_state, task_count.bucket), about 9 µs
-- each: around half the cost of storing a task. The allowed values are exactly the same; only the
-- form of the constraint changes.
--
-- SQLite changes a CHECK only by rebuilding the table: each table with such a list is created again
-- under a new name with every column (in the same order), CHECK and DEFAULT it had, its rows are
-- copied with their keys, the old table is dropped and the new one takes its name, and its indexes
-- and triggers are created again exactly as they were. Foreign keys are off while this runs (the line
-- below tells the migrator so: `PRAGMA foreign_keys` cannot change inside the migration's
-- transaction): with them on, dropping `job` or `task` would delete every row that refers to them.
-- The migrator runs `PRAGMA foreign_key_check` before committing, as after every migration.
--
-- The views read these tables, and SQLite refuses to rename a table while a view names one that is
-- missing, so they are dropped first and created again with their text unchanged.
--
-- Tables without such a list (task_dependency, event, setting) are untouched. Query-time IN lists are
-- evaluated once per statement, not per row, and are left as they are.

PRAGMA foreign_keys = OFF;

DROP VIEW job_history;
DROP VIEW prep_release_status;
DROP VIEW task_history;
DROP VIEW job_blockage;
DROP VIEW task_blockage;

-- pool
CREATE TABLE pool_v10 (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 64),
    display_name TEXT,
    vm_size TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'deleting')),
    allocation_state TEXT NOT NULL CHECK (allocation_state = 'steady' OR allocation_state = 'resizing' OR allocation_state = 'stopping'),
    target_dedicated_nodes INTEGER NOT NULL CHECK (target_dedicated_nodes >= 0),
    target_low_priority_nodes INTEGER NOT NULL CHECK (target_low_priority_nodes >= 0),
    task_slots_per_node INTEGER NOT NULL CHECK (task_slots_per_node BETWEEN 1 AND 256),
    node_fill_type TEXT NOT NULL CHECK (node_fill_type IN ('spread', 'pack')),
    resize_timeout_ms INTEGER NOT NULL CHECK (resize_timeout_ms >= 300000),
    start_task TEXT CHECK (start_task IS NULL OR json_valid(start_task)),
    metadata TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(metadata)),
    spec TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(spec)),
    e_tag TEXT NOT NULL,
    creation_time TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    state_transition_time TEXT NOT NULL,
    allocation_state_transition_time TEXT NOT NULL,
    -- Set when a delete has finished. The row stays so that history keeps its pool and nodes.
    deleted_time TEXT,
    uid INTEGER CHECK (uid IS NULL OR uid > 0),
    CHECK (deleted_time IS NULL OR state = 'deleting')
) STRICT;
INSERT INTO pool_v10 (pk, id, display_name, vm_size, state, allocation_state, target_dedicated_nodes, target_low_priority_nodes, task_slots_per_node, node_fill_type, resize_timeout_ms, start_task, metadata, spec, e_tag, creation_time, last_modified, state_transition_time, allocation_state_transition_time, deleted_time, uid)
SELECT pk, id, display_name, vm_size, state, allocation_state, target_dedicated_nodes, target_low_priority_nodes, task_slots_per_node, node_fill_type, resize_timeout_ms, start_task, metadata, spec, e_tag, creation_time, last_modified, state_transition_time, allocation_state_transition_time, deleted_time, uid FROM pool;
DROP TABLE pool;
ALTER TABLE pool_v10 RENAME TO pool;
CREATE UNIQUE INDEX pool_live_id ON pool (id COLLATE NOCASE) WHERE deleted_time IS NULL;

-- node
CREATE TABLE node_v10 (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    pool_pk INTEGER NOT NULL REFERENCES pool (pk),
    is_dedicated INTEGER NOT NULL CHECK (is_dedicated IN (0, 1)),
    state TEXT NOT NULL CHECK (state = 'idle' OR state = 'rebooting' OR state = 'reimaging' OR state = 'running'
        OR state = 'unusable' OR state = 'creating' OR state = 'starting' OR state = 'waitingforstarttask'
        OR state = 'starttaskfailed' OR state = 'unknown' OR state = 'leavingpool' OR state = 'offline'
        OR state = 'preempted' OR state = 'upgradingos' OR state = 'deallocated' OR state = 'deallocating'),
    scheduling_state TEXT NOT NULL CHECK (scheduling_state IN ('enabled', 'disabled')),
    -- The node's own folder on this machine: shared/, startup/, workitems/, volatile/.
    root_dir TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    -- Increments on every boot; a preparation that ran under an earlier boot may have to run again.
    boot_count INTEGER NOT NULL DEFAULT 0 CHECK (boot_count >= 0),
    -- What to do with running tasks when the pending reboot happens.
    reboot_option TEXT CHECK (reboot_option = 'requeue' OR reboot_option = 'terminate' OR reboot_option = 'taskcompletion' OR reboot_option = 'retaineddata'),
    total_tasks_run INTEGER NOT NULL DEFAULT 0,
    total_tasks_succeeded INTEGER NOT NULL DEFAULT 0,
    e_tag TEXT NOT NULL,
    allocation_time TEXT NOT NULL,
    state_transition_time TEXT NOT NULL,
    last_boot_time TEXT,
    -- Set when the node has left its pool (resize down, pool delete); kept for history.
    removed_time TEXT,
    provider TEXT NOT NULL DEFAULT 'local' CHECK (provider IN ('local', 'slurm')),
    slurm_partition TEXT,
    slurm_job_id TEXT,
    slurm_host TEXT,
    slurm_released_time TEXT,
    CHECK (removed_time IS NULL OR state = 'leavingpool'),
    CHECK ((state = 'rebooting') = (reboot_option IS NOT NULL))
) STRICT;
INSERT INTO node_v10 (pk, id, pool_pk, is_dedicated, state, scheduling_state, root_dir, ip_address, boot_count, reboot_option, total_tasks_run, total_tasks_succeeded, e_tag, allocation_time, state_transition_time, last_boot_time, removed_time, provider, slurm_partition, slurm_job_id, slurm_host, slurm_released_time)
SELECT pk, id, pool_pk, is_dedicated, state, scheduling_state, root_dir, ip_address, boot_count, reboot_option, total_tasks_run, total_tasks_succeeded, e_tag, allocation_time, state_transition_time, last_boot_time, removed_time, provider, slurm_partition, slurm_job_id, slurm_host, slurm_released_time FROM node;
DROP TABLE node;
ALTER TABLE node_v10 RENAME TO node;
CREATE INDEX node_pool ON node (pool_pk) WHERE removed_time IS NULL;

-- job
CREATE TABLE job_v10 (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(id) BETWEEN 1 AND 64),
    display_name TEXT,
    -- By id, not by reference: a job may name a pool that does not exist yet, and its tasks wait.
    pool_id TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
    max_parallel_tasks INTEGER NOT NULL DEFAULT -1 CHECK (max_parallel_tasks = -1 OR max_parallel_tasks > 0),
    allow_task_preemption INTEGER NOT NULL DEFAULT 0 CHECK (allow_task_preemption IN (0, 1)),
    max_wall_clock_time_ms INTEGER CHECK (max_wall_clock_time_ms >= 0),
    max_task_retry_count INTEGER NOT NULL DEFAULT 0 CHECK (max_task_retry_count >= -1),
    on_all_tasks_complete TEXT NOT NULL DEFAULT 'noaction' CHECK (on_all_tasks_complete IN ('noaction', 'terminatejob')),
    on_task_failure TEXT NOT NULL DEFAULT 'noaction' CHECK (on_task_failure IN ('noaction', 'performexitoptionsjobaction')),
    uses_task_dependencies INTEGER NOT NULL DEFAULT 0 CHECK (uses_task_dependencies IN (0, 1)),
    job_manager_task TEXT CHECK (job_manager_task IS NULL OR json_valid(job_manager_task)),
    job_preparation_task TEXT CHECK (job_preparation_task IS NULL OR json_valid(job_preparation_task)),
    job_release_task TEXT CHECK (job_release_task IS NULL OR json_valid(job_release_task)),
    common_environment_settings TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(common_environment_settings)),
    metadata TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(metadata)),
    spec TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(spec)),
    state TEXT NOT NULL CHECK (state = 'active' OR state = 'disabling' OR state = 'disabled' OR state = 'enabling'
        OR state = 'terminating' OR state = 'completed' OR state = 'deleting'),
    previous_state TEXT CHECK (previous_state = 'active' OR previous_state = 'disabling' OR previous_state = 'disabled' OR previous_state = 'enabling'
        OR previous_state = 'terminating' OR previous_state = 'completed' OR previous_state = 'deleting'),
    -- How running tasks are treated while the job is disabling: requeue, terminate or wait.
    disable_tasks TEXT CHECK (disable_tasks = 'requeue' OR disable_tasks = 'terminate' OR disable_tasks = 'wait'),
    creation_time TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    state_transition_time TEXT NOT NULL,
    previous_state_transition_time TEXT,
    e_tag TEXT NOT NULL,
    end_time TEXT,
    terminate_reason TEXT,
    -- Why the job cannot make progress (e.g. JobPreparationTaskFailed), as BatchError JSON.
    scheduling_error TEXT CHECK (scheduling_error IS NULL OR json_valid(scheduling_error)),
    CHECK (job_release_task IS NULL OR job_preparation_task IS NOT NULL),
    CHECK (state <> 'completed' OR end_time IS NOT NULL),
    CHECK (end_time IS NULL OR state IN ('completed', 'deleting')),
    CHECK (state NOT IN ('terminating', 'completed') OR terminate_reason IS NOT NULL),
    CHECK ((previous_state IS NULL) = (previous_state_transition_time IS NULL))
) STRICT;
INSERT INTO job_v10 (pk, id, display_name, pool_id, priority, max_parallel_tasks, allow_task_preemption, max_wall_clock_time_ms, max_task_retry_count, on_all_tasks_complete, on_task_failure, uses_task_dependencies, job_manager_task, job_preparation_task, job_release_task, common_environment_settings, metadata, spec, state, previous_state, disable_tasks, creation_time, last_modified, state_transition_time, previous_state_transition_time, e_tag, end_time, terminate_reason, scheduling_error)
SELECT pk, id, display_name, pool_id, priority, max_parallel_tasks, allow_task_preemption, max_wall_clock_time_ms, max_task_retry_count, on_all_tasks_complete, on_task_failure, uses_task_dependencies, job_manager_task, job_preparation_task, job_release_task, common_environment_settings, metadata, spec, state, previous_state, disable_tasks, creation_time, last_modified, state_transition_time, previous_state_transition_time, e_tag, end_time, terminate_reason, scheduling_error FROM job;
DROP TABLE job;
ALTER TABLE job_v10 RENAME TO job;
CREATE INDEX job_dispatch ON job (state, priority DESC, pk);

-- task
CREATE TABLE task_v10 (
    pk INTEGER PRIMARY KEY,
    job_pk INTEGER NOT NULL REFERENCES job (pk) ON DELETE CASCADE,
    id TEXT NOT NULL COLLATE NOCASE CHECK (length(id) BETWEEN 1 AND 64),
    display_name TEXT,
    command_line TEXT NOT NULL,
    -- resourceFiles, environmentSettings, userIdentity, exitConditions, dependsOn, affinityInfo and the
    -- options stored verbatim (outputFiles, containerSettings, ...), as the client sent them.
    spec TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(spec)),
    is_job_manager INTEGER NOT NULL DEFAULT 0 CHECK (is_job_manager IN (0, 1)),
    kill_job_on_completion INTEGER NOT NULL DEFAULT 0 CHECK (kill_job_on_completion IN (0, 1)),
    required_slots INTEGER NOT NULL DEFAULT 1 CHECK (required_slots >= 1),
    max_wall_clock_time_ms INTEGER CHECK (max_wall_clock_time_ms >= 0),
    retention_time_ms INTEGER CHECK (retention_time_ms >= 0),
    max_task_retry_count INTEGER NOT NULL CHECK (max_task_retry_count >= -1),
    state TEXT NOT NULL CHECK (state = 'active' OR state = 'preparing' OR state = 'running' OR state = 'completed'),
    previous_state TEXT CHECK (previous_state = 'active' OR previous_state = 'preparing' OR previous_state = 'running' OR previous_state = 'completed'),
    creation_time TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    state_transition_time TEXT NOT NULL,
    previous_state_transition_time TEXT,
    e_tag TEXT NOT NULL,
    -- The node the task holds slots on (preparing, running) or last ran on.
    node_pk INTEGER REFERENCES node (pk),
    -- Execution attempts started so far; the next one is attempt + 1.
    attempt INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    retry_count INTEGER NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    requeue_count INTEGER NOT NULL DEFAULT 0 CHECK (requeue_count >= 0),
    last_retry_time TEXT,
    last_requeue_time TEXT,
    start_time TEXT,
    end_time TEXT,
    exit_code INTEGER,
    result TEXT CHECK (result IN ('success', 'failure')),
    failure_info TEXT CHECK (failure_info IS NULL OR json_valid(failure_info)),
    -- Whether dependants may run (dependencyAction satisfy), decided when the task completes.
    satisfies_dependents INTEGER CHECK (satisfies_dependents IN (0, 1)),
    uid INTEGER CHECK (uid IS NULL OR uid > 0),
    UNIQUE (job_pk, id),
    CHECK ((state = 'completed') = (end_time IS NOT NULL)),
    CHECK ((state = 'completed') = (result IS NOT NULL)),
    CHECK ((state = 'completed') = (satisfies_dependents IS NOT NULL)),
    CHECK (result IS NOT NULL OR (exit_code IS NULL AND failure_info IS NULL)),
    CHECK (state NOT IN ('preparing', 'running') OR node_pk IS NOT NULL),
    CHECK ((retry_count > 0) = (last_retry_time IS NOT NULL)),
    CHECK ((requeue_count > 0) = (last_requeue_time IS NOT NULL)),
    CHECK (max_task_retry_count = -1 OR retry_count <= max_task_retry_count)
) STRICT;
INSERT INTO task_v10 (pk, job_pk, id, display_name, command_line, spec, is_job_manager, kill_job_on_completion, required_slots, max_wall_clock_time_ms, retention_time_ms, max_task_retry_count, state, previous_state, creation_time, last_modified, state_transition_time, previous_state_transition_time, e_tag, node_pk, attempt, retry_count, requeue_count, last_retry_time, last_requeue_time, start_time, end_time, exit_code, result, failure_info, satisfies_dependents, uid)
SELECT pk, job_pk, id, display_name, command_line, spec, is_job_manager, kill_job_on_completion, required_slots, max_wall_clock_time_ms, retention_time_ms, max_task_retry_count, state, previous_state, creation_time, last_modified, state_transition_time, previous_state_transition_time, e_tag, node_pk, attempt, retry_count, requeue_count, last_retry_time, last_requeue_time, start_time, end_time, exit_code, result, failure_info, satisfies_dependents, uid FROM task;
DROP TABLE task;
ALTER TABLE task_v10 RENAME TO task;
CREATE INDEX task_on_node ON task (node_pk) WHERE state IN ('preparing', 'running');
CREATE INDEX task_dispatch_order ON task (job_pk, state, is_job_manager DESC, pk);

-- task_count
CREATE TABLE task_count_v10 (
    job_pk INTEGER NOT NULL REFERENCES job (pk) ON DELETE CASCADE,
    -- 'active', 'running' (includes preparing), 'succeeded' or 'failed'.
    bucket TEXT NOT NULL CHECK (bucket = 'active' OR bucket = 'running' OR bucket = 'succeeded' OR bucket = 'failed'),
    tasks INTEGER NOT NULL CHECK (tasks >= 0),
    slots INTEGER NOT NULL CHECK (slots >= 0),
    PRIMARY KEY (job_pk, bucket)
) STRICT, WITHOUT ROWID;
INSERT INTO task_count_v10 (job_pk, bucket, tasks, slots)
SELECT job_pk, bucket, tasks, slots FROM task_count;
DROP TABLE task_count;
ALTER TABLE task_count_v10 RENAME TO task_count;

-- job_node
CREATE TABLE job_node_v10 (
    job_pk INTEGER NOT NULL REFERENCES job (pk) ON DELETE CASCADE,
    node_pk INTEGER NOT NULL REFERENCES node (pk),
    -- 0 once preparation failed for good with waitForSuccess: no task of the job runs here again.
    eligible INTEGER NOT NULL DEFAULT 1 CHECK (eligible IN (0, 1)),
    prep_state TEXT NOT NULL CHECK (prep_state IN ('running', 'completed')),
    prep_result TEXT CHECK (prep_result IN ('success', 'failure')),
    prep_exit_code INTEGER,
    prep_failure_info TEXT CHECK (prep_failure_info IS NULL OR json_valid(prep_failure_info)),
    prep_start_time TEXT NOT NULL,
    prep_end_time TEXT,
    prep_retry_count INTEGER NOT NULL DEFAULT 0 CHECK (prep_retry_count >= 0),
    prep_last_retry_time TEXT,
    -- node.boot_count when preparation last started; a later boot may require it to run again.
    prep_boot_count INTEGER NOT NULL,
    -- NULL: no release owed (yet); 'pending': owed, not started; then 'running' and 'completed'.
    release_state TEXT CHECK (release_state = 'pending' OR release_state = 'running' OR release_state = 'completed'),
    release_result TEXT CHECK (release_result IN ('success', 'failure')),
    release_exit_code INTEGER,
    release_failure_info TEXT CHECK (release_failure_info IS NULL OR json_valid(release_failure_info)),
    release_start_time TEXT,
    release_end_time TEXT,
    PRIMARY KEY (job_pk, node_pk),
    CHECK ((prep_state = 'completed') = (prep_end_time IS NOT NULL)),
    CHECK ((prep_state = 'completed') = (prep_result IS NOT NULL)),
    CHECK ((prep_retry_count > 0) = (prep_last_retry_time IS NOT NULL)),
    CHECK (release_state IS NULL OR prep_state = 'completed'),
    CHECK ((coalesce(release_state, '') = 'completed') = (release_end_time IS NOT NULL)),
    CHECK ((coalesce(release_state, '') = 'completed') = (release_result IS NOT NULL)),
    CHECK (coalesce(release_state, 'pending') = 'pending' OR release_start_time IS NOT NULL)
) STRICT;
INSERT INTO job_node_v10 (job_pk, node_pk, eligible, prep_state, prep_result, prep_exit_code, prep_failure_info, prep_start_time, prep_end_time, prep_retry_count, prep_last_retry_time, prep_boot_count, release_state, release_result, release_exit_code, release_failure_info, release_start_time, release_end_time)
SELECT job_pk, node_pk, eligible, prep_state, prep_result, prep_exit_code, prep_failure_info, prep_start_time, prep_end_time, prep_retry_count, prep_last_retry_time, prep_boot_count, release_state, release_result, release_exit_code, release_failure_info, release_start_time, release_end_time FROM job_node;
DROP TABLE job_node;
ALTER TABLE job_node_v10 RENAME TO job_node;
CREATE INDEX job_node_release ON job_node (release_state) WHERE release_state IN ('pending', 'running');

-- execution
CREATE TABLE execution_v10 (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind = 'task' OR kind = 'preparation' OR kind = 'release' OR kind = 'start'),
    node_pk INTEGER NOT NULL REFERENCES node (pk),
    job_pk INTEGER REFERENCES job (pk) ON DELETE CASCADE,
    task_pk INTEGER REFERENCES task (pk) ON DELETE CASCADE,
    attempt INTEGER NOT NULL CHECK (attempt >= 1),
    state TEXT NOT NULL CHECK (state = 'starting' OR state = 'running' OR state = 'completed'),
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
    kill_reason TEXT CHECK (kill_reason = 'timeout' OR kill_reason = 'terminate' OR kill_reason = 'requeue' OR kill_reason = 'delete'
        OR kill_reason = 'shutdown'),
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
    uid INTEGER CHECK (uid IS NULL OR uid > 0),
    CHECK ((kind = 'start') = (job_pk IS NULL)),
    CHECK ((kind = 'task') = (task_pk IS NOT NULL)),
    CHECK ((state = 'completed') = (end_time IS NOT NULL)),
    CHECK (state <> 'running' OR pid IS NOT NULL),
    CHECK ((pid IS NULL) = (pid_start_time IS NULL)),
    CHECK (state = 'completed' OR (result IS NULL AND exit_code IS NULL)),
    CHECK (state <> 'completed' OR result IS NOT NULL OR interrupted = 1),
    CHECK (retention_deadline IS NULL OR state = 'completed')
) STRICT;
INSERT INTO execution_v10 (pk, kind, node_pk, job_pk, task_pk, attempt, state, task_dir, status_dir, start_time, end_time, deadline, pid, pid_start_time, kill_reason, exit_code, result, failure_info, retry_count, requeue_count, interrupted, retention_deadline, files_deleted_time, launch_nonce, uid)
SELECT pk, kind, node_pk, job_pk, task_pk, attempt, state, task_dir, status_dir, start_time, end_time, deadline, pid, pid_start_time, kill_reason, exit_code, result, failure_info, retry_count, requeue_count, interrupted, retention_deadline, files_deleted_time, launch_nonce, uid FROM execution;
-- Keys are never reused (version 5): the new table continues from the old one's counter.
DELETE FROM sqlite_sequence WHERE name = 'execution_v10';
INSERT INTO sqlite_sequence (name, seq) SELECT 'execution_v10', seq FROM sqlite_sequence WHERE name = 'execution';
DROP TABLE execution;
ALTER TABLE execution_v10 RENAME TO execution;
CREATE INDEX execution_live ON execution (node_pk) WHERE state <> 'completed';
CREATE INDEX execution_task ON execution (task_pk, attempt) WHERE task_pk IS NOT NULL;
CREATE INDEX execution_job ON execution (job_pk, kind) WHERE job_pk IS NOT NULL;
CREATE INDEX execution_retention ON execution (retention_deadline)
    WHERE files_deleted_time IS NULL AND retention_deadline IS NOT NULL;

-- The triggers of the rebuilt tables, as they were.
CREATE TRIGGER task_count_insert AFTER INSERT ON task BEGIN
    INSERT INTO task_count (job_pk, bucket, tasks, slots)
    VALUES (NEW.job_pk, CASE NEW.state WHEN 'active' THEN 'active' WHEN 'completed' THEN
        CASE NEW.result WHEN 'success' THEN 'succeeded' ELSE 'failed' END ELSE 'running' END, 1, NEW.required_slots)
    ON CONFLICT (job_pk, bucket) DO UPDATE SET tasks = tasks + 1, slots = slots + excluded.slots;
END;
CREATE TRIGGER task_count_update AFTER UPDATE OF state, result, required_slots ON task BEGIN
    UPDATE task_count SET tasks = tasks - 1, slots = slots - OLD.required_slots
    WHERE job_pk = OLD.job_pk AND bucket = CASE OLD.state WHEN 'active' THEN 'active' WHEN 'completed' THEN
        CASE OLD.result WHEN 'success' THEN 'succeeded' ELSE 'failed' END ELSE 'running' END;
    INSERT INTO task_count (job_pk, bucket, tasks, slots)
    VALUES (NEW.job_pk, CASE NEW.state WHEN 'active' THEN 'active' WHEN 'completed' THEN
        CASE NEW.result WHEN 'success' THEN 'succeeded' ELSE 'failed' END ELSE 'running' END, 1, NEW.required_slots)
    ON CONFLICT (job_pk, bucket) DO UPDATE SET tasks = tasks + 1, slots = slots + excluded.slots;
END;
CREATE TRIGGER task_count_delete AFTER DELETE ON task BEGIN
    UPDATE task_count SET tasks = tasks - 1, slots = slots - OLD.required_slots
    WHERE job_pk = OLD.job_pk AND bucket = CASE OLD.state WHEN 'active' THEN 'active' WHEN 'completed' THEN
        CASE OLD.result WHEN 'success' THEN 'succeeded' ELSE 'failed' END ELSE 'running' END;
END;

-- The views, as they were.
CREATE VIEW job_history AS
SELECT
    j.id AS job_id,
    j.pool_id AS pool_id,
    j.state AS state,
    j.creation_time AS creation_time,
    j.creation_time AS start_time,
    j.end_time AS end_time,
    CASE WHEN j.state = 'completed' THEN j.terminate_reason END AS terminate_reason,
    coalesce((SELECT tasks FROM task_count c WHERE c.job_pk = j.pk AND c.bucket = 'active'), 0) AS active,
    coalesce((SELECT tasks FROM task_count c WHERE c.job_pk = j.pk AND c.bucket = 'running'), 0) AS running,
    coalesce((SELECT sum(tasks) FROM task_count c WHERE c.job_pk = j.pk AND c.bucket IN ('succeeded', 'failed')), 0)
        AS completed,
    coalesce((SELECT tasks FROM task_count c WHERE c.job_pk = j.pk AND c.bucket = 'succeeded'), 0) AS succeeded,
    coalesce((SELECT tasks FROM task_count c WHERE c.job_pk = j.pk AND c.bucket = 'failed'), 0) AS failed,
    json_extract(j.scheduling_error, '$.code') AS scheduling_error_code,
    json_extract(j.scheduling_error, '$.message') AS scheduling_error_message
FROM job j;

CREATE VIEW prep_release_status AS
SELECT
    j.id AS job_id,
    p.id AS pool_id,
    n.id AS node_id,
    r.prep_state AS prep_state,
    r.prep_result AS prep_result,
    r.prep_exit_code AS prep_exit_code,
    r.prep_start_time AS prep_start_time,
    r.prep_end_time AS prep_end_time,
    r.prep_retry_count AS prep_retry_count,
    r.release_state AS release_state,
    r.release_result AS release_result,
    r.release_exit_code AS release_exit_code,
    r.release_start_time AS release_start_time,
    r.release_end_time AS release_end_time,
    r.eligible AS eligible,
    json_extract(r.prep_failure_info, '$.code') AS prep_failure_code,
    json_extract(r.release_failure_info, '$.code') AS release_failure_code
FROM job_node r
JOIN job j ON j.pk = r.job_pk
JOIN node n ON n.pk = r.node_pk
JOIN pool p ON p.pk = n.pool_pk;

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

CREATE VIEW job_blockage AS
SELECT job_id, pool_id, code,
    CASE code
        WHEN 'JobTerminated' THEN 'The job has ended (' || coalesce(terminate_reason, state) || '); its ' || active_tasks || ' active task(s) will never run'
        WHEN 'JobDisabled' THEN 'The job is disabled; enable it to let its ' || active_tasks || ' active task(s) start'
        WHEN 'PoolNotFound' THEN 'The pool ' || pool_id || ' does not exist; create it to let the job''s tasks start'
        WHEN 'PoolBeingDeleted' THEN 'The pool ' || pool_id || ' is being deleted; the job''s tasks cannot start on it'
        WHEN 'PoolHasNoNodes' THEN 'The pool ' || pool_id || ' has no nodes and a target of 0; resize it to let the job''s tasks start'
        WHEN 'JobPreparationTaskFailed' THEN 'The job preparation task failed on every node that could run the job''s tasks: ' || failed_nodes
        WHEN 'NoUsableNodes' THEN 'No node of pool ' || pool_id || ' can run tasks: ' || unusable_nodes
        WHEN 'AllTasksBlocked' THEN 'None of the job''s ' || active_tasks || ' active task(s) can start and none is running: see task_blockage'
    END AS message,
    active_tasks
FROM (
    SELECT j.id AS job_id, j.pool_id AS pool_id, j.state AS state, j.terminate_reason AS terminate_reason,
        c.tasks AS active_tasks,
        -- Nodes listed by id (the ordered subquery: group_concat has no ORDER BY before SQLite 3.44).
        (SELECT group_concat(item, ', ') FROM (
            SELECT n.id || ' (' || CASE WHEN r.prep_exit_code IS NOT NULL THEN 'exit code ' || r.prep_exit_code
                    ELSE coalesce(json_extract(r.prep_failure_info, '$.code'), 'failed') END || ')' AS item
            FROM job_node r JOIN node n ON n.pk = r.node_pk
            WHERE r.job_pk = j.pk AND r.eligible = 0 AND n.pool_pk = p.pk AND n.removed_time IS NULL AND n.state <> 'leavingpool'
            ORDER BY n.id)) AS failed_nodes,
        (SELECT group_concat(item, ', ') FROM (
            SELECT n.id || ' (' || CASE WHEN n.scheduling_state = 'disabled' THEN 'scheduling disabled' ELSE n.state END || ')' AS item
            FROM node n WHERE n.pool_pk = p.pk AND n.removed_time IS NULL AND n.state <> 'leavingpool'
            ORDER BY n.id)) AS unusable_nodes,
        CASE
            WHEN j.state IN ('terminating', 'completed') THEN 'JobTerminated'
            WHEN j.state IN ('disabling', 'disabled') THEN 'JobDisabled'
            WHEN p.pk IS NULL THEN 'PoolNotFound'
            WHEN p.state = 'deleting' THEN 'PoolBeingDeleted'
            -- Nodes that may still take the job's tasks: in or on their way to idle/running, scheduling
            -- enabled, and not made ineligible for this job by a failed preparation (P5).
            WHEN EXISTS (SELECT 1 FROM node n WHERE n.pool_pk = p.pk AND n.removed_time IS NULL AND n.scheduling_state = 'enabled'
                    AND n.state IN ('idle', 'running', 'creating', 'starting', 'waitingforstarttask', 'rebooting', 'reimaging')
                    AND NOT EXISTS (SELECT 1 FROM job_node r WHERE r.job_pk = j.pk AND r.node_pk = n.pk AND r.eligible = 0)) THEN
                CASE
                    -- Nothing runs, so nothing can change: if no active task is both small enough for
                    -- a node and free of unmet dependencies, none ever will be.
                    WHEN coalesce((SELECT tasks FROM task_count k WHERE k.job_pk = j.pk AND k.bucket = 'running'), 0) = 0
                        AND NOT EXISTS (SELECT 1 FROM task t WHERE t.job_pk = j.pk AND t.state = 'active'
                            AND t.required_slots <= p.task_slots_per_node
                            AND NOT EXISTS (SELECT 1 FROM task_dependency d WHERE d.task_pk = t.pk AND NOT EXISTS (
                                SELECT 1 FROM task u WHERE u.job_pk = t.job_pk AND u.id = d.depends_on_id AND u.satisfies_dependents = 1)))
                        THEN 'AllTasksBlocked'
                END
            WHEN EXISTS (SELECT 1 FROM job_node r JOIN node n ON n.pk = r.node_pk WHERE r.job_pk = j.pk AND r.eligible = 0
                    AND n.pool_pk = p.pk AND n.removed_time IS NULL AND n.state <> 'leavingpool') THEN 'JobPreparationTaskFailed'
            WHEN EXISTS (SELECT 1 FROM node n WHERE n.pool_pk = p.pk AND n.removed_time IS NULL AND n.state <> 'leavingpool') THEN 'NoUsableNodes'
            -- No nodes: they are coming while the pool's target is above zero (waiting), else blocked.
            WHEN p.target_dedicated_nodes + p.target_low_priority_nodes = 0 THEN 'PoolHasNoNodes'
        END AS code
    FROM job j
    JOIN task_count c ON c.job_pk = j.pk AND c.bucket = 'active' AND c.tasks > 0
    LEFT JOIN pool p ON p.id = j.pool_id COLLATE NOCASE AND p.deleted_time IS NULL
    WHERE j.state <> 'deleting'
)
WHERE code IS NOT NULL;

CREATE VIEW task_blockage AS
WITH RECURSIVE stuck (task_pk, code, dependency_id) AS (
    SELECT d.task_pk, CASE WHEN u.pk IS NULL THEN 'TaskDependencyNotFound' ELSE 'TaskDependencyFailed' END, d.depends_on_id
    FROM task_dependency d
    JOIN task t ON t.pk = d.task_pk AND t.state = 'active'
    LEFT JOIN task u ON u.job_pk = t.job_pk AND u.id = d.depends_on_id
    WHERE u.pk IS NULL OR u.satisfies_dependents = 0
    UNION
    SELECT d.task_pk, 'TaskDependencyBlocked', d.depends_on_id
    FROM stuck s
    JOIN task u ON u.pk = s.task_pk
    JOIN task_dependency d ON d.depends_on_id = u.id
    JOIN task t ON t.pk = d.task_pk AND t.job_pk = u.job_pk AND t.state = 'active'
),
-- One reason per task: a failed dependency before a missing one before a blocked one, then by id.
first_stuck AS (
    SELECT task_pk, code, dependency_id FROM (
        SELECT task_pk, code, dependency_id, row_number() OVER (PARTITION BY task_pk ORDER BY
            CASE code WHEN 'TaskDependencyFailed' THEN 1 WHEN 'TaskDependencyNotFound' THEN 2 ELSE 3 END, dependency_id) AS rank
        FROM stuck)
    WHERE rank = 1
)
SELECT job_id, task_id, code,
    CASE code
        WHEN 'RequiredSlotsExceedTaskSlotsPerNode' THEN 'The task needs ' || required_slots || ' slots but the nodes of pool ' || pool_id
            || ' have ' || task_slots_per_node || ' (taskSlotsPerNode): it can never be scheduled'
        WHEN 'TaskDependencyFailed' THEN 'The task depends on ' || dependency_id || ', which failed without satisfying its dependants'
        WHEN 'TaskDependencyNotFound' THEN 'The task depends on ' || dependency_id || ', which does not exist in the job'
        WHEN 'TaskDependencyBlocked' THEN coalesce('The task depends on ' || dependency_id || ', which can never run',
            'The task''s dependencies wait on each other in a cycle (or on tasks that do): none can ever run')
        ELSE job_message
    END AS message,
    dependency_id
FROM (
    SELECT j.id AS job_id, t.id AS task_id, t.required_slots AS required_slots, j.pool_id AS pool_id,
        p.task_slots_per_node AS task_slots_per_node, b.message AS job_message, s.dependency_id AS dependency_id,
        CASE
            WHEN b.code IS NOT NULL AND b.code <> 'AllTasksBlocked' THEN b.code
            WHEN p.pk IS NOT NULL AND t.required_slots > p.task_slots_per_node THEN 'RequiredSlotsExceedTaskSlotsPerNode'
            WHEN s.code IS NOT NULL THEN s.code
            -- The job is blocked and this task has none of the reasons above: its dependencies wait on
            -- each other in a cycle, or on tasks that do.
            WHEN b.code = 'AllTasksBlocked' THEN 'TaskDependencyBlocked'
        END AS code
    FROM task t
    JOIN job j ON j.pk = t.job_pk
    LEFT JOIN pool p ON p.id = j.pool_id COLLATE NOCASE AND p.deleted_time IS NULL
    LEFT JOIN job_blockage b ON b.job_id = j.id
    LEFT JOIN first_stuck s ON s.task_pk = t.pk
    WHERE t.state = 'active' AND j.state <> 'deleting'
)
WHERE code IS NOT NULL;

