import SQLite

/// Realistic rows for the history views and the examples in docs/sql.md.
///
/// - Pool `pool-a` with nodes `node-1`..`node-3`.
/// - Job `render` (completed): `t1` succeeded; `t2` failed once and succeeded on retry; `t3` failed.
///   Preparation and release ran on node-1 and node-2.
/// - Job `etl` (terminating): `e1` was ended by the terminate; `e2` still runs on node-3. Its release
///   is pending on node-1 and not yet recorded on node-3.
/// - Job `nightly` (active): `n1` waits; preparation failed on node-2 yesterday and on node-1 30 days ago.
enum SampleData {
    static let poolCount = 1, nodeCount = 3, jobCount = 3, taskCount = 6, executionCount = 9, jobNodeCount = 5
    static let eventCount = 6

    /// Inserts the rows into a database at schema `version` (1 or later).
    static func insert(into connection: Connection, version: Int) throws {
        precondition(version >= 1, "the tables exist from version 1")
        // Version 1 created every table used here; later versions so far only added views. A migration
        // that changes these tables must add a case here for databases before and after it.
        try connection.execute(sql)
    }

    /// `strftime` for a time relative to now, in Bookend's format.
    private static func ago(_ modifier: String) -> String { "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '\(modifier)')" }

    static let sql = """
        INSERT INTO pool (pk, id, vm_size, state, allocation_state, target_dedicated_nodes, target_low_priority_nodes,
            task_slots_per_node, node_fill_type, resize_timeout_ms, e_tag, creation_time, last_modified,
            state_transition_time, allocation_state_transition_time)
        VALUES (1, 'pool-a', 'local', 'active', 'steady', 3, 0, 2, 'spread', 900000, '0x1',
            '2026-11-01T09:00:00.000Z', '2026-11-01T09:00:00.000Z', '2026-11-01T09:00:00.000Z', '2026-11-01T09:00:00.000Z');

        INSERT INTO node (pk, id, pool_pk, is_dedicated, state, scheduling_state, root_dir, ip_address, boot_count,
            total_tasks_run, total_tasks_succeeded, e_tag, allocation_time, state_transition_time, last_boot_time)
        VALUES
            (1, 'node-1', 1, 1, 'idle', 'enabled', '/var/lib/bookend/nodes/node-1', '127.0.0.1', 1, 3, 2, '0x2',
                '2026-11-01T09:00:01.000Z', '2026-11-20T11:05:00.500Z', '2026-11-01T09:00:02.000Z'),
            (2, 'node-2', 1, 1, 'idle', 'enabled', '/var/lib/bookend/nodes/node-2', '127.0.0.1', 1, 2, 0, '0x3',
                '2026-11-01T09:00:01.000Z', '2026-11-20T10:02:00.000Z', '2026-11-01T09:00:02.000Z'),
            (3, 'node-3', 1, 1, 'running', 'enabled', '/var/lib/bookend/nodes/node-3', '127.0.0.1', 1, 1, 0, '0x4',
                '2026-11-01T09:00:01.000Z', '2026-11-20T11:00:00.000Z', '2026-11-01T09:00:02.000Z');

        INSERT INTO job (pk, id, pool_id, priority, max_task_retry_count, on_all_tasks_complete, job_preparation_task,
            job_release_task, state, creation_time, last_modified, state_transition_time, e_tag, end_time,
            terminate_reason)
        VALUES
            (1, 'render', 'pool-a', 100, 3, 'terminatejob', '{"commandLine":"./fetch-assets"}', '{"commandLine":"./clean"}',
                'completed', '2026-11-20T10:00:00.000Z', '2026-11-20T10:04:00.000Z', '2026-11-20T10:04:00.000Z', '0x10',
                '2026-11-20T10:04:00.000Z', 'AllTasksComplete'),
            (2, 'etl', 'pool-a', 0, 0, 'noaction', '{"commandLine":"./mount"}', '{"commandLine":"./unmount"}',
                'terminating', '2026-11-20T10:59:00.000Z', '2026-11-20T11:05:00.000Z', '2026-11-20T11:05:00.000Z', '0x11',
                NULL, 'UserTerminate'),
            (3, 'nightly', 'pool-a', -10, 0, 'noaction', '{"commandLine":"./warm-cache","waitForSuccess":true}', NULL,
                'active', \(ago("-40 days")), \(ago("-40 days")), \(ago("-40 days")), '0x12', NULL, NULL);

        INSERT INTO task (pk, job_pk, id, command_line, max_task_retry_count, state, creation_time, last_modified,
            state_transition_time, e_tag, node_pk, attempt, retry_count, last_retry_time, start_time, end_time,
            exit_code, result, failure_info, satisfies_dependents)
        VALUES
            (1, 1, 't1', './render 1', 3, 'completed', '2026-11-20T10:00:10.000Z', '2026-11-20T10:02:00.000Z',
                '2026-11-20T10:02:00.000Z', '0x20', 1, 1, 0, NULL, '2026-11-20T10:01:00.000Z', '2026-11-20T10:02:00.000Z',
                0, 'success', NULL, 1),
            (2, 1, 't2', './render 2', 3, 'completed', '2026-11-20T10:00:10.000Z', '2026-11-20T10:03:30.000Z',
                '2026-11-20T10:03:30.000Z', '0x21', 1, 2, 1, '2026-11-20T10:01:30.000Z', '2026-11-20T10:02:00.000Z',
                '2026-11-20T10:03:30.000Z', 0, 'success', NULL, 1),
            (3, 1, 't3', './render 3', 0, 'completed', '2026-11-20T10:00:10.000Z', '2026-11-20T10:02:00.000Z',
                '2026-11-20T10:02:00.000Z', '0x22', 2, 1, 0, NULL, '2026-11-20T10:01:30.000Z', '2026-11-20T10:02:00.000Z',
                2, 'failure', '{"category":"UserError","code":"FailureExitCode","message":"The task exited with an exit code representing a failure"}', 0),
            (4, 2, 'e1', './extract', 0, 'completed', '2026-11-20T10:59:10.000Z', '2026-11-20T11:05:00.500Z',
                '2026-11-20T11:05:00.500Z', '0x23', 1, 1, 0, NULL, '2026-11-20T11:00:00.000Z', '2026-11-20T11:05:00.500Z',
                137, 'failure', '{"category":"UserError","code":"TaskEnded","message":"The task was ended by a job terminate"}', 0),
            (5, 2, 'e2', './load', 0, 'running', '2026-11-20T10:59:10.000Z', '2026-11-20T11:00:00.000Z',
                '2026-11-20T11:00:00.000Z', '0x24', 3, 1, 0, NULL, '2026-11-20T11:00:00.000Z', NULL, NULL, NULL, NULL, NULL),
            (6, 3, 'n1', './nightly', 0, 'active', \(ago("-1 day")), \(ago("-1 day")), \(ago("-1 day")), '0x25',
                NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

        INSERT INTO job_node (job_pk, node_pk, eligible, prep_state, prep_result, prep_exit_code, prep_failure_info,
            prep_start_time, prep_end_time, prep_retry_count, prep_last_retry_time, prep_boot_count, release_state,
            release_result, release_exit_code, release_start_time, release_end_time)
        VALUES
            (1, 1, 1, 'completed', 'success', 0, NULL, '2026-11-20T10:00:20.000Z', '2026-11-20T10:00:50.000Z', 0, NULL, 1,
                'completed', 'success', 0, '2026-11-20T10:04:01.000Z', '2026-11-20T10:04:03.000Z'),
            (1, 2, 1, 'completed', 'success', 0, NULL, '2026-11-20T10:00:20.000Z', '2026-11-20T10:00:55.000Z', 0, NULL, 1,
                'completed', 'success', 0, '2026-11-20T10:04:01.000Z', '2026-11-20T10:04:02.000Z'),
            (2, 1, 1, 'completed', 'success', 0, NULL, '2026-11-20T10:59:20.000Z', '2026-11-20T10:59:40.000Z', 0, NULL, 1,
                'pending', NULL, NULL, NULL, NULL),
            (2, 3, 1, 'completed', 'success', 0, NULL, '2026-11-20T10:59:20.000Z', '2026-11-20T10:59:45.000Z', 0, NULL, 1,
                NULL, NULL, NULL, NULL, NULL),
            (3, 2, 0, 'completed', 'failure', 3, '{"category":"UserError","code":"FailureExitCode","message":"exit code 3"}',
                \(ago("-1 day")), \(ago("-1 day")), 2, \(ago("-1 day")), 1, NULL, NULL, NULL, NULL, NULL),
            (3, 1, 1, 'completed', 'failure', 1, '{"category":"UserError","code":"FailureExitCode","message":"exit code 1"}',
                \(ago("-30 days")), \(ago("-30 days")), 0, NULL, 1, NULL, NULL, NULL, NULL, NULL);

        INSERT INTO execution (pk, kind, node_pk, job_pk, task_pk, attempt, state, task_dir, status_dir, start_time,
            end_time, pid, pid_start_time, kill_reason, exit_code, result, failure_info, retry_count, retention_deadline)
        VALUES
            (1, 'start', 1, NULL, NULL, 1, 'completed', '/n1/startup', '/n1/startup/.status', '2026-11-01T09:00:02.000Z',
                '2026-11-01T09:00:05.000Z', 101, 1001, NULL, 0, 'success', NULL, 0, NULL),
            (2, 'preparation', 1, 1, NULL, 1, 'completed', '/n1/render/prep', '/n1/render/prep/.status',
                '2026-11-20T10:00:20.000Z', '2026-11-20T10:00:50.000Z', 102, 1002, NULL, 0, 'success', NULL, 0, NULL),
            (3, 'task', 1, 1, 1, 1, 'completed', '/n1/render/t1/1', '/n1/render/t1/1/.status',
                '2026-11-20T10:01:00.000Z', '2026-11-20T10:02:00.000Z', 103, 1003, NULL, 0, 'success', NULL, 0,
                '2026-11-27T10:02:00.000Z'),
            (4, 'task', 2, 1, 2, 1, 'completed', '/n2/render/t2/1', '/n2/render/t2/1/.status',
                '2026-11-20T10:01:00.000Z', '2026-11-20T10:01:30.000Z', 104, 1004, NULL, 1, 'failure',
                '{"category":"UserError","code":"FailureExitCode","message":"The task exited with an exit code representing a failure"}',
                0, '2026-11-27T10:01:30.000Z'),
            (5, 'task', 1, 1, 2, 2, 'completed', '/n1/render/t2/2', '/n1/render/t2/2/.status',
                '2026-11-20T10:02:00.000Z', '2026-11-20T10:03:30.000Z', 105, 1005, NULL, 0, 'success', NULL, 1,
                '2026-11-27T10:03:30.000Z'),
            (6, 'task', 2, 1, 3, 1, 'completed', '/n2/render/t3/1', '/n2/render/t3/1/.status',
                '2026-11-20T10:01:30.000Z', '2026-11-20T10:02:00.000Z', 106, 1006, NULL, 2, 'failure',
                '{"category":"UserError","code":"FailureExitCode","message":"The task exited with an exit code representing a failure"}',
                0, '2026-11-27T10:02:00.000Z'),
            (7, 'release', 1, 1, NULL, 1, 'completed', '/n1/render/release', '/n1/render/release/.status',
                '2026-11-20T10:04:01.000Z', '2026-11-20T10:04:03.000Z', 107, 1007, NULL, 0, 'success', NULL, 0, NULL),
            (8, 'task', 1, 2, 4, 1, 'completed', '/n1/etl/e1/1', '/n1/etl/e1/1/.status',
                '2026-11-20T11:00:00.000Z', '2026-11-20T11:05:00.500Z', 108, 1008, 'terminate', 137, 'failure',
                '{"category":"UserError","code":"TaskEnded","message":"The task was ended by a job terminate"}', 0,
                '2026-11-27T11:05:00.500Z'),
            (9, 'task', 3, 2, 5, 1, 'running', '/n3/etl/e2/1', '/n3/etl/e2/1/.status',
                '2026-11-20T11:00:00.000Z', NULL, 4242, 98765, NULL, NULL, NULL, NULL, 0, NULL);

        INSERT INTO event (seq, time, kind, pool_id, node_id, job_id, task_id, from_state, to_state, detail)
        VALUES
            (1, '2026-11-20T10:00:00.000Z', 'job.created', 'pool-a', NULL, 'render', NULL, NULL, 'active', NULL),
            (2, '2026-11-20T10:01:00.000Z', 'task.running', 'pool-a', 'node-1', 'render', 't1', 'active', 'running', NULL),
            (3, '2026-11-20T10:02:00.000Z', 'task.completed', 'pool-a', 'node-1', 'render', 't1', 'running', 'completed',
                '{"exitCode":0}'),
            (4, '2026-11-20T10:04:00.000Z', 'job.completed', 'pool-a', NULL, 'render', NULL, 'active', 'completed',
                '{"terminateReason":"AllTasksComplete"}'),
            (5, '2026-11-20T10:59:00.000Z', 'job.created', 'pool-a', NULL, 'etl', NULL, NULL, 'active', NULL),
            (6, '2026-11-20T11:05:00.000Z', 'job.terminating', 'pool-a', NULL, 'etl', NULL, 'active', 'terminating',
                '{"terminateReason":"UserTerminate"}');
        """
}
