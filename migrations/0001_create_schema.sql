-- Bookend schema, version 1: pools, nodes, jobs, tasks, every execution attempt, the (job, node)
-- preparation/release record, task counters and the append-only event log.
--
-- Conventions: STRICT tables; ids as the user typed them, unique case-insensitively; times are
-- ISO 8601 UTC text with milliseconds written by Bookend (e.g. 2026-11-28T13:05:00.123Z); durations
-- are integer milliseconds with NULL meaning unlimited; options Bookend stores but does not act on
-- are kept verbatim as JSON in a `spec` column. Enum values are the Azure Batch wire values.

CREATE TABLE pool (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 64),
    display_name TEXT,
    vm_size TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'deleting')),
    allocation_state TEXT NOT NULL CHECK (allocation_state IN ('steady', 'resizing', 'stopping')),
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
    CHECK (deleted_time IS NULL OR state = 'deleting')
) STRICT;
CREATE UNIQUE INDEX pool_live_id ON pool (id COLLATE NOCASE) WHERE deleted_time IS NULL;

CREATE TABLE node (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    pool_pk INTEGER NOT NULL REFERENCES pool (pk),
    is_dedicated INTEGER NOT NULL CHECK (is_dedicated IN (0, 1)),
    state TEXT NOT NULL CHECK (state IN (
        'idle', 'rebooting', 'reimaging', 'running', 'unusable', 'creating', 'starting', 'waitingforstarttask',
        'starttaskfailed', 'unknown', 'leavingpool', 'offline', 'preempted', 'upgradingos', 'deallocated',
        'deallocating')),
    scheduling_state TEXT NOT NULL CHECK (scheduling_state IN ('enabled', 'disabled')),
    -- The node's own folder on this machine: shared/, startup/, workitems/, volatile/.
    root_dir TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    -- Increments on every boot; a preparation that ran under an earlier boot may have to run again.
    boot_count INTEGER NOT NULL DEFAULT 0 CHECK (boot_count >= 0),
    -- What to do with running tasks when the pending reboot happens.
    reboot_option TEXT CHECK (reboot_option IN ('requeue', 'terminate', 'taskcompletion', 'retaineddata')),
    total_tasks_run INTEGER NOT NULL DEFAULT 0,
    total_tasks_succeeded INTEGER NOT NULL DEFAULT 0,
    e_tag TEXT NOT NULL,
    allocation_time TEXT NOT NULL,
    state_transition_time TEXT NOT NULL,
    last_boot_time TEXT,
    -- Set when the node has left its pool (resize down, pool delete); kept for history.
    removed_time TEXT,
    CHECK (removed_time IS NULL OR state = 'leavingpool'),
    CHECK ((state = 'rebooting') = (reboot_option IS NOT NULL))
) STRICT;
CREATE INDEX node_pool ON node (pool_pk) WHERE removed_time IS NULL;

CREATE TABLE job (
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
    state TEXT NOT NULL CHECK (state IN ('active', 'disabling', 'disabled', 'enabling', 'terminating', 'completed', 'deleting')),
    previous_state TEXT CHECK (previous_state IN ('active', 'disabling', 'disabled', 'enabling', 'terminating', 'completed', 'deleting')),
    -- How running tasks are treated while the job is disabling: requeue, terminate or wait.
    disable_tasks TEXT CHECK (disable_tasks IN ('requeue', 'terminate', 'wait')),
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
CREATE INDEX job_dispatch ON job (state, priority DESC, pk);

CREATE TABLE task (
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
    state TEXT NOT NULL CHECK (state IN ('active', 'preparing', 'running', 'completed')),
    previous_state TEXT CHECK (previous_state IN ('active', 'preparing', 'running', 'completed')),
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
CREATE INDEX task_dispatch ON task (job_pk, state, pk);
CREATE INDEX task_on_node ON task (node_pk) WHERE state IN ('preparing', 'running');

-- dependsOn, with ranges expanded to ids; a dependency on an id that does not exist yet simply waits.
CREATE TABLE task_dependency (
    task_pk INTEGER NOT NULL REFERENCES task (pk) ON DELETE CASCADE,
    depends_on_id TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (task_pk, depends_on_id)
) STRICT, WITHOUT ROWID;

-- Task and slot counts per job and state, kept by triggers in the same transaction as the change,
-- so that counting a job's tasks costs the same at ten tasks and at a million.
CREATE TABLE task_count (
    job_pk INTEGER NOT NULL REFERENCES job (pk) ON DELETE CASCADE,
    -- 'active', 'running' (includes preparing), 'succeeded' or 'failed'.
    bucket TEXT NOT NULL CHECK (bucket IN ('active', 'running', 'succeeded', 'failed')),
    tasks INTEGER NOT NULL CHECK (tasks >= 0),
    slots INTEGER NOT NULL CHECK (slots >= 0),
    PRIMARY KEY (job_pk, bucket)
) STRICT, WITHOUT ROWID;

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

-- The (job, node) record: created when the node is first assigned a task of a job with a preparation
-- task. It says whether preparation ran there and therefore whether a release is owed.
CREATE TABLE job_node (
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
    release_state TEXT CHECK (release_state IN ('pending', 'running', 'completed')),
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
CREATE INDEX job_node_release ON job_node (release_state) WHERE release_state IN ('pending', 'running');

-- Every execution attempt of a task, preparation, release or start task on a node. A row is
-- committed in state 'starting' before its process is spawned, gains the process identity in
-- 'running', and is completed exactly once.
CREATE TABLE execution (
    pk INTEGER PRIMARY KEY,
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
    CHECK ((kind = 'start') = (job_pk IS NULL)),
    CHECK ((kind = 'task') = (task_pk IS NOT NULL)),
    CHECK ((state = 'completed') = (end_time IS NOT NULL)),
    CHECK (state <> 'running' OR pid IS NOT NULL),
    CHECK ((pid IS NULL) = (pid_start_time IS NULL)),
    CHECK (state = 'completed' OR (result IS NULL AND exit_code IS NULL)),
    CHECK (state <> 'completed' OR result IS NOT NULL OR interrupted = 1),
    CHECK (retention_deadline IS NULL OR state = 'completed')
) STRICT;
CREATE INDEX execution_live ON execution (node_pk) WHERE state <> 'completed';
CREATE INDEX execution_task ON execution (task_pk, attempt) WHERE task_pk IS NOT NULL;
CREATE INDEX execution_job ON execution (job_pk, kind) WHERE job_pk IS NOT NULL;
CREATE INDEX execution_retention ON execution (retention_deadline)
    WHERE files_deleted_time IS NULL AND retention_deadline IS NOT NULL;

-- Append-only log of state transitions, written in the same transaction as the change. Ids are
-- copied as text so the log outlives deleted jobs and tasks.
CREATE TABLE event (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    pool_id TEXT,
    node_id TEXT,
    job_id TEXT,
    task_id TEXT,
    from_state TEXT,
    to_state TEXT,
    detail TEXT CHECK (detail IS NULL OR json_valid(detail))
) STRICT;
CREATE INDEX event_job ON event (job_id, seq) WHERE job_id IS NOT NULL;

CREATE TRIGGER event_no_update BEFORE UPDATE ON event BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;
CREATE TRIGGER event_no_delete BEFORE DELETE ON event BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;

-- Small facts about this data directory (account name, node id prefix), one row each.
CREATE TABLE setting (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
