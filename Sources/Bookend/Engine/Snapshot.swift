import Foundation
import SQLite
import Supervisor

// What a scheduler pass reads, decoded into typed records through StoredRows: a missing column, a
// state outside its enum or a NULL where a value must be is an error naming the table, the row and
// the column, never an empty string or a zero that the pass would then act on.

/// One `execution` row.
struct ExecutionRecord: Sendable {
    var pk: Int64
    var kind: ExecutionKind
    var state: ExecutionState
    var nodePK: Int64
    var jobPK: Int64?
    var taskPK: Int64?
    var attempt: Int
    var taskDirectory: String
    /// `<node>/volatile/executions/<pk>-<nonce>`: where the shim writes `pid` and `exit`.
    var statusDirectory: String
    var retryCount: Int
    /// When it started (or, while `starting`, when its intent committed).
    var startTime: String
    /// When its wall clock runs out, if it has one.
    var deadline: String?
    /// The process, once its launch (or its adoption) was recorded.
    var identity: ProcessIdentity?
    /// Why Bookend decided to end it, if it did.
    var killReason: KillReason?

    init(_ row: Row) throws {
        let table = "execution"
        pk = try row.int64("pk", table: table)
        kind = try row.state(ExecutionKind.self, "kind", table: table)
        state = try row.state(ExecutionState.self, table: table)
        nodePK = try row.int64("node_pk", table: table)
        jobPK = try row.optionalInt64("job_pk", table: table)
        taskPK = try row.optionalInt64("task_pk", table: table)
        attempt = Int(try row.int64("attempt", table: table))
        taskDirectory = try row.text("task_dir", table: table)
        statusDirectory = try row.text("status_dir", table: table)
        retryCount = Int(try row.int64("retry_count", table: table))
        startTime = try row.text("start_time", table: table)
        deadline = try row.optionalText("deadline", table: table)
        let pid = try row.optionalInt64("pid", table: table)
        let start = try row.optionalInt64("pid_start_time", table: table)
        if let pid, let start, let pid32 = Int32(exactly: pid) {
            identity = ProcessIdentity(pid: pid32, startTime: UInt64(bitPattern: start))
        } else if pid != nil || start != nil {
            throw row.corrupt(table, "pid, pid_start_time", "one is set without the other, or the pid is out of range")
        } else {
            identity = nil
        }
        killReason = try row.optionalState(KillReason.self, "kill_reason", table: table)
    }

    /// The executions `filter` selects, in key order. Every pass calls this, so `filter` should say
    /// `state <> 'completed'` (and narrow it further, `AND state = 'running'`): that term is what lets
    /// SQLite read the few live rows through the partial index `execution_live`, and the `+` keeps
    /// it from scanning the whole table in key order instead, which costs a pass time in proportion
    /// to every execution still stored (a 10,000-task job's, read three times per pass).
    static func all(_ db: Connection, where filter: String, _ arguments: [any SQLiteBindable] = []) throws -> [ExecutionRecord] {
        try db.query(selection(where: filter), arguments).map(ExecutionRecord.init)
    }

    static func selection(where filter: String) -> String { "SELECT * FROM execution WHERE \(filter) ORDER BY +pk" }

    /// The live executions each pass reads (`PassTests` holds each to the partial index).
    enum Live {
        /// Spawned and recorded: the pass looks for their exits.
        static let running = "state <> 'completed' AND state = 'running'"
        /// To be ended before they ever spawned: they complete at once.
        static let killedUnspawned = "state <> 'completed' AND kill_reason IS NOT NULL AND pid IS NULL"
        /// To be ended, with a process to signal.
        static let killedSpawned = "state <> 'completed' AND kill_reason IS NOT NULL AND pid IS NOT NULL"
        /// Every unfinished one (reconcile).
        static let unfinished = "state <> 'completed'"
        static let all = [running, killedUnspawned, killedSpawned, unfinished]
    }

    static func read(_ db: Connection, pk: Int64) throws -> ExecutionRecord? {
        try db.query("SELECT * FROM execution WHERE pk = ?", [pk]).first.map(ExecutionRecord.init)
    }
}

/// A running execution whose process has ended, as the pass found it before its apply transaction:
/// the exit file (nil when the shim wrote none) decides the outcome together with the kill reason.
struct ObservedExit {
    var execution: ExecutionRecord
    var outcome: Outcome
}
