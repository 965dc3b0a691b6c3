import Foundation
import SQLite

/// Owns the SQL that moves an execution between states. Both writes are guarded by the state the
/// machine leaves from, and both answer whether they wrote: an execution completed meanwhile (killed
/// before its launch was recorded, or finished while the engine was down) is a normal outcome that the
/// caller handles, not an error.
enum ExecutionStore {
    /// `starting → running`: the spawned (or adopted) process's identity.
    static func recordProcess(_ db: Connection, pk: Int64, pid: Int32, pidStartTime: Int64) throws -> Bool {
        let from = ExecutionState.starting
        let to = try ExecutionMachine.next(from: from, on: .recordProcess)
        return try db.run("UPDATE execution SET state = ?, pid = ?, pid_start_time = ? WHERE pk = ? AND state = ?",
            [to.rawValue, pid, pidStartTime, pk, from.rawValue]) == 1
    }

    /// `starting|running → completed`, exactly once: false when it was already completed.
    static func complete(
        _ db: Connection, pk: Int64, now: String, exitCode: Int32?, result: ExecutionResult?, failureInfo: FailureInfo?, interrupted: Bool
    ) throws -> Bool {
        let to = try ExecutionMachine.next(from: .running, on: .complete)
        return try db.run(
            """
            UPDATE execution SET state = ?, end_time = ?, exit_code = ?, result = ?, failure_info = ?, interrupted = ?
            WHERE pk = ? AND state <> ?
            """, [to.rawValue, now, exitCode, result?.rawValue, failureInfo.map(encodeJSON), interrupted, pk, to.rawValue]) == 1
    }

    /// Records why Bookend is about to signal the executions `filter` selects, unless a reason is
    /// already recorded (the first decision stands).
    static func decideKill(_ db: Connection, _ reason: KillReason, where filter: String, _ arguments: [any SQLiteBindable]) throws {
        try db.run("UPDATE execution SET kill_reason = ? WHERE state <> ? AND kill_reason IS NULL AND \(filter)",
            [reason.rawValue, ExecutionState.completed.rawValue] + arguments)
    }
}

extension ExecutionStore {
    /// When the completed execution's folder may be deleted (nil: kept until its job or task goes).
    static func setRetentionDeadline(_ db: Connection, pk: Int64, deadline: String) throws {
        try db.run("UPDATE execution SET retention_deadline = ? WHERE pk = ?", [deadline, pk])
    }

    /// A reactivated task keeps the folders of its earlier executions until it completes again.
    static func clearRetentionDeadlines(_ db: Connection, taskPK: Int64) throws {
        try db.run("UPDATE execution SET retention_deadline = NULL WHERE task_pk = ?", [taskPK])
    }

    /// Records that the execution's folder is gone; false when that was already recorded (so a
    /// deletion repeated after a crash is counted once).
    static func markFilesDeleted(_ db: Connection, pk: Int64, now: String) throws -> Bool {
        try db.run("UPDATE execution SET files_deleted_time = ? WHERE pk = ? AND files_deleted_time IS NULL", [now, pk]) == 1
    }

    /// The uid the execution runs as.
    static func setAccount(_ db: Connection, pk: Int64, uid: Int64) throws {
        try db.run("UPDATE execution SET uid = ? WHERE pk = ?", [uid, pk])
    }
}

extension ExecutionStore {
    /// A new execution, `starting`: the intent the crash protocol commits before anything is spawned.
    /// Its status folder is named after its key and a random nonce, so the folder is known before the
    /// process exists (the shim writes `pid` and `exit` there) and can never be one an earlier
    /// execution of the same key left behind (a database restored from a backup reuses keys).
    static func insertStarting(
        _ db: Connection, kind: String, nodePK: Int64, nodeRoot: String, jobPK: Int64?, taskPK: Int64?, attempt: Int,
        taskDirectory: String, startTime: String, deadline: String?, retryCount: Int, requeueCount: Int
    ) throws -> Int64 {
        try db.run(
            """
            INSERT INTO execution (kind, node_pk, job_pk, task_pk, attempt, state, task_dir, status_dir, start_time,
                deadline, retry_count, requeue_count)
            VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?)
            """,
            [kind, nodePK, jobPK, taskPK, attempt, ExecutionState.starting.rawValue, taskDirectory, startTime, deadline, retryCount,
             requeueCount])
        let pk = db.lastInsertRowID
        let nonce = UInt64.random(in: 0...UInt64.max).hex16()
        try db.run("UPDATE execution SET launch_nonce = ?, status_dir = ? WHERE pk = ?",
            [nonce, (nodeRoot as NSString).appendingPathComponent("volatile/executions/\(pk)-\(nonce)"), pk])
        return pk
    }

    /// An execution committed as `starting` but never spawned (the engine died in between) starts its
    /// wall clock again when it is finally spawned: same limit, counted from now.
    /// A task's new `maxWallClockTime` (nil: none) for its attempt that is under way, measured from that
    /// attempt's start, as the next attempt's will be. An execution Bookend already decided to end keeps
    /// its course.
    static func resetTaskClock(_ db: Connection, taskPK: Int64, milliseconds: Int64?) throws {
        for row in try db.query(
            "SELECT pk, start_time FROM execution WHERE task_pk = ? AND kind = 'task' AND state <> 'completed' AND kill_reason IS NULL", [taskPK]) {
            let start = try row.text("start_time", table: "execution")
            guard let started = Timestamp.date(start) else { throw row.corrupt("execution", "start_time", "not a timestamp: \(start)") }
            let deadline = milliseconds.flatMap { Timestamp.deadline(after: started, milliseconds: $0) }
            try db.run("UPDATE execution SET deadline = ? WHERE pk = ?", [deadline, try row.int64("pk", table: "execution")])
        }
    }

    static func restartClock(_ db: Connection, pk: Int64, startTime: String, deadline: String) throws {
        try db.run("UPDATE execution SET start_time = ?, deadline = ? WHERE pk = ? AND state = ?",
            [startTime, deadline, pk, ExecutionState.starting.rawValue])
    }
}
