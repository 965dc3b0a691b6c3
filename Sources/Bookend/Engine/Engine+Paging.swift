import Foundation
import SQLite

extension Engine {
    /// Up to `limit` tasks of a job in id order (case-insensitive), starting after `afterID`: one page
    /// of a list without loading the whole job.
    /// Reads on a reader connection, in one snapshot.
    public nonisolated func tasks(jobID: String, afterID: String?, limit: Int) throws -> [JobTask] {
        try taskPage(jobID: jobID, afterID: afterID, limit: limit).tasks
    }

    /// One page of a job's tasks, as `tasks(jobID:afterID:limit:)`, with the job's id as stored.
    /// The rows are made tasks where they are used (`task(at:)`), not on the reader that fetched
    /// them: the API makes a page's tasks on several threads at once, and making a thousand of them
    /// was most of what a reader did for a page, one after another.
    public struct TaskPage: Sendable {
        /// The job's id as it was created (the request may spell it in another case).
        public var jobID: String
        let rows: [Row]

        public var count: Int { rows.count }

        /// The id of the task at `index`, without making the whole task.
        public func id(at index: Int) throws -> String { try rows[index].text("id", table: "task") }

        /// The task at `index`; a stored row that does not decode throws, as a read would.
        public func task(at index: Int) throws -> JobTask { try Engine.jobTask(rows[index]) }

        /// Every task of the page, in order.
        public var tasks: [JobTask] { get throws { try rows.map(Engine.jobTask) } }
    }

    /// `tasks(jobID:afterID:limit:)` with the job's stored id, which a caller building URLs needs and
    /// would otherwise read the whole job for.
    ///
    /// `states` (stored task states) narrows the page to tasks in one of them: a list filtered on
    /// `state` reads only those rows instead of rendering every task of the job to test it (a
    /// `state eq 'completed'` page of a 200,000-task job with none completed took 9.8 s).
    public nonisolated func taskPage(jobID: String, afterID: String?, limit: Int, states: Set<String>? = nil) throws -> TaskPage {
        try readers.read { db in
            let job = try jobRow(db, jobID)
            let after = afterID.map(SQLiteValue.text) ?? .null
            let narrowed = Engine.inStates(states, column: "t.state")
            // One statement for the whole page: the rows come with their job's and node's ids.
            let rows = try db.query(
                Engine.taskSelect + " WHERE t.job_pk = ? AND (? IS NULL OR t.id > ? COLLATE NOCASE)" + narrowed.sql
                    + " ORDER BY t.id COLLATE NOCASE LIMIT ?",
                [job["pk"], after, after] + narrowed.values + [.integer(Int64(limit))])
            return TaskPage(jobID: try job.text("id", table: "job"), rows: rows)
        }
    }

    /// Up to `limit` jobs in id order (case-insensitive), after `afterID`, in one statement on a
    /// reader connection. Why not `jobs()`: that reads every job on the engine's queue, so listing
    /// 10,000 jobs held the scheduler for about 150 ms per page. `states` (stored job states)
    /// narrows the page as `taskPage`'s does.
    public nonisolated func jobPage(afterID: String?, limit: Int, states: Set<String>? = nil) throws -> [Job] {
        try readers.read { db in
            let after = afterID.map(SQLiteValue.text) ?? .null
            let narrowed = Engine.inStates(states, column: "state")
            return try db.query(
                "SELECT * FROM job WHERE (? IS NULL OR id > ? COLLATE NOCASE)" + narrowed.sql + " ORDER BY id COLLATE NOCASE LIMIT ?",
                [after, after] + narrowed.values + [.integer(Int64(limit))]).map(Engine.job)
        }
    }

    /// ` AND <column> IN (?, …)` with its values, or nothing when `states` is nil (a page not narrowed).
    private static func inStates(_ states: Set<String>?, column: String) -> (sql: String, values: [SQLiteValue]) {
        guard let states else { return ("", []) }
        let known = states.sorted()
        return (" AND \(column) IN (" + Array(repeating: "?", count: known.count).joined(separator: ", ") + ")", known.map(SQLiteValue.text))
    }
}
