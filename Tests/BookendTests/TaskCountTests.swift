import Bookend
import Foundation
import SQLite
import Testing

@Suite struct TaskCountTests {
    static let now = "'2026-11-20T10:00:00.000Z'"

    /// `task_count` rows with tasks, and the same counts computed from the task table.
    func compare(_ connection: Connection, _ context: String) throws {
        let kept = try connection.values(
            "SELECT job_pk, bucket, tasks, slots FROM task_count WHERE tasks > 0 OR slots > 0 ORDER BY job_pk, bucket")
        let computed = try connection.values("""
            SELECT job_pk, CASE state WHEN 'active' THEN 'active' WHEN 'completed' THEN
                CASE result WHEN 'success' THEN 'succeeded' ELSE 'failed' END ELSE 'running' END AS bucket,
                count(*), sum(required_slots)
            FROM task GROUP BY job_pk, bucket ORDER BY job_pk, bucket
            """)
        #expect(kept == computed, "task_count after \(context)")
        #expect(try connection.values("SELECT count(*) FROM task_count WHERE tasks < 0 OR slots < 0") == [[.integer(0)]])

        let history = try connection.values(
            "SELECT job_id, active, running, completed, succeeded, failed FROM job_history ORDER BY job_id")
        let expected = try connection.values("""
            SELECT j.id,
                count(t.pk) FILTER (WHERE t.state = 'active'),
                count(t.pk) FILTER (WHERE t.state IN ('preparing', 'running')),
                count(t.pk) FILTER (WHERE t.state = 'completed'),
                count(t.pk) FILTER (WHERE t.result = 'success'),
                count(t.pk) FILTER (WHERE t.result = 'failure')
            FROM job j LEFT JOIN task t ON t.job_pk = j.pk GROUP BY j.pk ORDER BY j.id
            """)
        #expect(history == expected, "job_history after \(context)")
    }

    @Test func triggersKeepTaskCountEqualToTheTaskTable() throws {
        let data = try ConstraintTests.database()  // job 1 with task t1 (active), node 1
        let c = data.connection
        let now = Self.now
        try c.execute("""
            INSERT INTO job (id, pool_id, state, creation_time, last_modified, state_transition_time, e_tag)
            VALUES ('job-2', 'pool-a', 'active', \(now), \(now), \(now), '0x2');
            """)
        func insert(_ job: Int, _ id: String, _ state: String, slots: Int = 1, result: String? = nil) throws {
            let completed = state == "completed"
            try c.run(
                """
                INSERT INTO task (job_pk, id, command_line, max_task_retry_count, required_slots, state, creation_time,
                    last_modified, state_transition_time, e_tag, node_pk, end_time, result, satisfies_dependents)
                VALUES (?, ?, 'true', 0, ?, ?, \(now), \(now), \(now), '0x1', ?, ?, ?, ?)
                """,
                [
                    job, id, slots, state, state == "active" ? nil : 1, completed ? "2026-11-20T10:05:00.000Z" : nil, result,
                    completed ? (result == "success" ? 1 : 0) : nil,
                ])
        }
        try insert(1, "t2", "active", slots: 2)
        try insert(1, "t3", "preparing")
        try insert(1, "t4", "running", slots: 3)
        try insert(1, "t5", "completed", result: "success")
        try insert(1, "t6", "completed", slots: 2, result: "failure")
        try insert(2, "u1", "active")
        try insert(2, "u2", "running")
        try compare(c, "inserts")

        func move(_ id: String, to state: String, result: String? = nil) throws {
            let completed = state == "completed"
            try c.run(
                """
                UPDATE task SET state = ?, previous_state = state, node_pk = coalesce(node_pk, 1),
                    end_time = ?, result = ?, satisfies_dependents = ?
                WHERE id = ?
                """,
                [
                    state, completed ? "2026-11-20T10:06:00.000Z" : nil, result, completed ? (result == "success" ? 1 : 0) : nil,
                    id,
                ])
        }
        try move("t1", to: "running")
        try compare(c, "t1 active → running")
        try move("t1", to: "completed", result: "success")
        try compare(c, "t1 running → completed success")
        try move("t2", to: "preparing")
        try move("t2", to: "running")
        try move("t2", to: "completed", result: "failure")
        try compare(c, "t2 active → preparing → running → completed failure")
        try move("t3", to: "active")  // requeued
        try compare(c, "t3 requeued")
        try move("u1", to: "running")
        try move("u2", to: "completed", result: "failure")
        try compare(c, "job-2 moves")
        try c.run("UPDATE task SET required_slots = 4 WHERE id = 't4'")
        try compare(c, "slots changed")
        // A completed task that is requeued goes back to active (reactivate).
        try move("t6", to: "active")
        try compare(c, "t6 reactivated")

        #expect(try c.run("DELETE FROM task WHERE id IN ('t1', 't4', 'u2')") == 3)
        try compare(c, "deletes")
        try c.run("DELETE FROM job WHERE id = 'job-2'")
        #expect(try c.scalar("SELECT count(*) FROM task_count WHERE job_pk = 2") == .integer(0), "cascades with the job")
        try compare(c, "job delete")
        #expect(
            try c.values("SELECT active, running, completed, succeeded, failed FROM job_history WHERE job_id = 'job-1'") == [
                [.integer(2), .integer(0), .integer(2), .integer(1), .integer(1)]
            ])
    }
}
