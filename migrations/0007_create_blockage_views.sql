-- Why work is stuck: jobs and tasks whose active tasks cannot start until someone acts (enables the
-- job, creates or grows the pool, fixes the preparation task, reactivates a failed dependency).
-- On the wire such tasks simply stay `active`, as on Azure Batch; these views say why, computed from
-- stored state only, so they are never stale. "Waiting" (slots busy, maxParallelTasks reached, nodes
-- still booting, dependencies still running) is not here: it ends on its own. The engine answers
-- the same question through `Engine.whyWaiting` and the daemon in `bookendWaitReason`, with the
-- same codes. Columns are only ever added, never renamed or removed (docs/sql.md).

-- One row per job that has active tasks none of which can ever start as things stand.
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

-- One row per active task that cannot start until someone acts: its job is blocked, it needs more
-- slots than any node of the pool has (§12.24), or a dependency failed without satisfying its
-- dependants, names no task, or is itself blocked (the reason names that dependency).
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
