import Bookend
import Foundation
import SQLite
import Testing

/// One invalid write and the table it must leave unchanged.
struct InvalidWrite: Sendable, CustomTestStringConvertible {
    let name: String
    let table: String
    let sql: String
    var testDescription: String { name }
}

@Suite struct ConstraintTests {
    static let now = "'2026-11-20T10:00:00.000Z'"
    static let jobColumns = "id, pool_id, state, creation_time, last_modified, state_transition_time, e_tag"
    static let taskColumns =
        "job_pk, id, command_line, max_task_retry_count, creation_time, last_modified, state_transition_time, e_tag"
    static let taskValues = "1, 'x', 'true', 0, \(now), \(now), \(now), '0x1'"

    static let invalidWrites: [InvalidWrite] = [
        InvalidWrite(
            name: "job state bogus", table: "job",
            sql: "INSERT INTO job (\(jobColumns)) VALUES ('j2', 'pool-a', 'bogus', \(now), \(now), \(now), '0x1')"),
        InvalidWrite(
            name: "job priority 1001", table: "job",
            sql: "INSERT INTO job (\(jobColumns), priority) VALUES ('j2', 'pool-a', 'active', \(now), \(now), \(now), '0x1', 1001)"),
        InvalidWrite(
            name: "job release task without preparation task", table: "job",
            sql: """
                INSERT INTO job (\(jobColumns), job_release_task)
                VALUES ('j2', 'pool-a', 'active', \(now), \(now), \(now), '0x1', '{"commandLine":"./clean"}')
                """),
        InvalidWrite(
            name: "completed task without end time", table: "task",
            sql: "INSERT INTO task (\(taskColumns), state, result, satisfies_dependents, node_pk) VALUES (\(taskValues), 'completed', 'success', 1, 1)"),
        InvalidWrite(
            name: "task with result but not completed", table: "task",
            sql: "INSERT INTO task (\(taskColumns), state, result) VALUES (\(taskValues), 'active', 'failure')"),
        InvalidWrite(
            name: "running task without node", table: "task",
            sql: "INSERT INTO task (\(taskColumns), state) VALUES (\(taskValues), 'running')"),
        InvalidWrite(
            name: "running execution without pid", table: "execution",
            sql: """
                INSERT INTO execution (kind, node_pk, job_pk, task_pk, attempt, state, task_dir, status_dir, start_time)
                VALUES ('task', 1, 1, 1, 1, 'running', '/d', '/d/.status', \(now))
                """),
        InvalidWrite(
            name: "release completed without end time", table: "job_node",
            sql: """
                INSERT INTO job_node (job_pk, node_pk, prep_state, prep_result, prep_start_time, prep_end_time,
                    prep_boot_count, release_state, release_result, release_start_time)
                VALUES (1, 1, 'completed', 'success', \(now), \(now), 1, 'completed', 'success', \(now))
                """),
        InvalidWrite(
            name: "release owed before preparation completed", table: "job_node",
            sql: """
                INSERT INTO job_node (job_pk, node_pk, prep_state, prep_start_time, prep_boot_count, release_state)
                VALUES (1, 1, 'running', \(now), 1, 'pending')
                """),
    ]

    /// A migrated database with one pool, node, job and task.
    static func database() throws -> MigratedDirectory {
        let data = try MigratedDirectory()
        try data.connection.execute("""
            INSERT INTO pool (id, vm_size, state, allocation_state, target_dedicated_nodes, target_low_priority_nodes,
                task_slots_per_node, node_fill_type, resize_timeout_ms, e_tag, creation_time, last_modified,
                state_transition_time, allocation_state_transition_time)
            VALUES ('pool-a', 'local', 'active', 'steady', 1, 0, 1, 'spread', 900000, '0x1', \(now), \(now), \(now), \(now));
            INSERT INTO node (id, pool_pk, is_dedicated, state, scheduling_state, root_dir, ip_address, e_tag,
                allocation_time, state_transition_time)
            VALUES ('node-1', 1, 1, 'idle', 'enabled', '/nodes/node-1', '127.0.0.1', '0x1', \(now), \(now));
            INSERT INTO job (\(jobColumns), job_preparation_task)
            VALUES ('job-1', 'pool-a', 'active', \(now), \(now), \(now), '0x1', '{"commandLine":"./prep"}');
            INSERT INTO task (\(taskColumns), state) VALUES (1, 't1', 'true', 0, \(now), \(now), \(now), '0x1', 'active');
            INSERT INTO event (time, kind, job_id, to_state) VALUES (\(now), 'job.state', 'job-1', 'active');
            """)
        return data
    }

    @Test(arguments: invalidWrites)
    func checkConstraintRejects(_ write: InvalidWrite) throws {
        let data = try Self.database()
        let before = try data.connection.values("SELECT * FROM \(write.table)")
        let error = try #require(throws: SQLiteError.self) { try data.connection.run(write.sql) }
        #expect(error.isCheckViolation, "\(error)")
        #expect(try data.connection.values("SELECT * FROM \(write.table)") == before, "nothing was written")
        #expect(try data.connection.values("SELECT tasks FROM task_count") == [[.integer(1)]])
    }

    @Test(arguments: ["UPDATE event SET kind = 'edited'", "DELETE FROM event", "DELETE FROM event WHERE seq = 1"])
    func eventLogIsAppendOnly(_ sql: String) throws {
        let data = try Self.database()
        let before = try data.connection.values("SELECT * FROM event")
        let error = try #require(throws: SQLiteError.self) { try data.connection.run(sql) }
        #expect(error.isConstraintViolation)
        #expect(error.message == "the event log is append-only")
        #expect(try data.connection.values("SELECT * FROM event") == before)
    }

    @Test func validRowsAreAccepted() throws {
        let data = try Self.database()
        try data.connection.run("INSERT INTO event (time, kind, job_id) VALUES (\(Self.now), 'job.state', 'job-1')")
        #expect(try data.connection.count("event") == 2)
    }
}
