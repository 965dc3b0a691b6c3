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

    /// The live executions each pass reads, each through a partial index (`PassTests` holds them to
    /// it): `execution_live` for the running and unfinished ones, `execution_killing` for those
    /// Bookend decided to end, which are few however many run.
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

/// The engine's last launches (at most `Engine.exitProbeLimit`, oldest first) with the path of each
/// one's exit file. With more processes running than a pass can afford to look at, it tries these
/// exit files only: they belong to what started last, which with short commands is what ends next, so
/// commands that end together are still recorded by one pass instead of one pass each as the
/// watcher reports them. The cost stays bounded by the limit whatever else runs.
struct RecentLaunches {
    private struct Launch {
        var pk: Int64
        var identity: ProcessIdentity
        var exitPath: String
    }
    private var launches: [Launch] = []

    mutating func add(pk: Int64, identity: ProcessIdentity, statusDirectory: String) {
        if launches.count >= Engine.exitProbeLimit { launches.removeFirst(launches.count - Engine.exitProbeLimit + 1) }
        launches.append(Launch(pk: pk, identity: identity, exitPath: statusDirectory + "/exit"))
    }

    func contains(_ pk: Int64) -> Bool { launches.contains { $0.pk == pk } }

    /// The executions among them whose exit file is there (the shim writes it last, just before it
    /// exits), leaving out those reported ended and those spawned since the last pass, whose rows the
    /// pass reads anyway.
    func ended(besides reported: Set<ProcessIdentity>, spawned: [Int64: ProcessIdentity]) -> [Int64] {
        launches.filter { !reported.contains($0.identity) && spawned[$0.pk] == nil && access($0.exitPath, F_OK) == 0 }.map(\.pk)
    }

    /// Drops the executions a pass found ended and the processes the watcher reported.
    mutating func forget(_ ended: [Int64], reported: Set<ProcessIdentity>) {
        guard !launches.isEmpty, !ended.isEmpty || !reported.isEmpty else { return }
        launches.removeAll { ended.contains($0.pk) || reported.contains($0.identity) }
    }
}
