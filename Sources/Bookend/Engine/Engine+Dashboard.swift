import Foundation
import SQLite

/// One run of a preparation, task or release on a node, as the dashboard's timeline and attempt
/// lists draw it: every attempt is kept in `execution`, which the wire's entities only summarise.
public struct ExecutionSummary: Sendable, Hashable {
    public var kind: ExecutionKind
    public var poolId: String
    public var nodeId: String
    /// The task's id for `task` runs; nil for preparation and release.
    public var taskId: String?
    public var attempt: Int
    public var state: ExecutionState
    /// Stored times (UTC, millisecond text as everywhere in the database).
    public var startTime: String
    public var endTime: String?
    public var exitCode: Int?
    public var result: ExecutionResult?
    public var failureInfo: FailureInfo?
    /// The attempt ended without a result of its own (requeued, or its node rebooted).
    public var interrupted: Bool

    public init(
        kind: ExecutionKind, poolId: String, nodeId: String, taskId: String?, attempt: Int, state: ExecutionState, startTime: String,
        endTime: String?, exitCode: Int?, result: ExecutionResult?, failureInfo: FailureInfo?, interrupted: Bool
    ) {
        self.kind = kind
        self.poolId = poolId
        self.nodeId = nodeId
        self.taskId = taskId
        self.attempt = attempt
        self.state = state
        self.startTime = startTime
        self.endTime = endTime
        self.exitCode = exitCode
        self.result = result
        self.failureInfo = failureInfo
        self.interrupted = interrupted
    }
}

extension Engine {
    /// The job's preparation and release runs, and its latest `latestTasks` task runs, oldest first
    /// (start tasks are not a job's); `truncated` when earlier task runs were left out. A job of many
    /// thousand tasks is drawn from its latest runs rather than read whole on every look.
    /// Reads on a reader connection, in one snapshot.
    public nonisolated func executions(jobID: String, latestTasks: Int) throws -> (runs: [ExecutionSummary], truncated: Bool) {
        try readers.read { db in
            let job = try jobRow(db, jobID)
            let bookends = try executionRecords(db, where: "e.job_pk = ? AND e.kind IN ('preparation', 'release')", [job["pk"]])
            var tasks = try executionRecords(
                db, where: "e.job_pk = ? AND e.kind = 'task'", [job["pk"]], newestFirst: true, limit: latestTasks + 1)
            let truncated = tasks.count > latestTasks
            if truncated { tasks.removeLast() }
            let runs = (bookends + tasks).sorted { ($0.startTime, $0.kind.order) < ($1.startTime, $1.kind.order) }
            return (runs, truncated)
        }
    }

    /// Every attempt of one task, oldest first. Reads on a reader connection.
    public nonisolated func executions(jobID: String, taskID: String) throws -> [ExecutionSummary] {
        try readers.read { db in
            let pk = try taskPK(db, jobID: jobID, taskID: taskID)
            return try executionRecords(db, where: "e.task_pk = ? AND e.kind = 'task'", [pk])
        }
    }

    private nonisolated func executionRecords(
        _ db: Connection, where condition: String, _ arguments: [any SQLiteBindable], newestFirst: Bool = false, limit: Int = -1
    ) throws -> [ExecutionSummary] {
        let order = newestFirst ? "e.start_time DESC, e.pk DESC" : "e.start_time, e.pk"
        return try db.query(
            """
            SELECT e.kind, e.attempt, e.state, e.start_time, e.end_time, e.exit_code, e.result, e.failure_info,
                e.interrupted, n.id AS node_id, p.id AS pool_id, t.id AS task_id
            FROM execution e JOIN node n ON n.pk = e.node_pk JOIN pool p ON p.pk = n.pool_pk
            LEFT JOIN task t ON t.pk = e.task_pk
            WHERE \(condition) ORDER BY \(order) LIMIT ?
            """, arguments + [limit]
        ).map { row in
            ExecutionSummary(
                kind: try row.state(ExecutionKind.self, "kind", table: "execution"),
                poolId: try row.text("pool_id", table: "pool"), nodeId: try row.text("node_id", table: "node"),
                taskId: row["task_id"].string, attempt: row["attempt"].int ?? 1,
                state: try row.state(ExecutionState.self, table: "execution"),
                startTime: try row.text("start_time", table: "execution"), endTime: row["end_time"].string,
                exitCode: row["exit_code"].int, result: try row.optionalState(ExecutionResult.self, "result", table: "execution"),
                failureInfo: try row.json(FailureInfo.self, "failure_info", table: "execution"),
                interrupted: (row["interrupted"].int ?? 0) != 0)
        }
    }
}

extension ExecutionKind {
    /// Among runs that start in the same millisecond, a node's preparation comes first and its release last.
    fileprivate var order: Int {
        switch self {
        case .start: 0
        case .preparation: 1
        case .task: 2
        case .release: 3
        }
    }
}
