import SQLite

/// A task as the event log names it.
struct TaskKey {
    var pk: Int64
    var id: String
    var jobID: String
    var poolID: String

    init(pk: Int64, id: String, jobID: String, poolID: String) {
        self.pk = pk
        self.id = id
        self.jobID = jobID
        self.poolID = poolID
    }

    /// From a `task` row and its job's row.
    init(task: Row, job: Row) throws {
        pk = try task.int64("pk", table: "task")
        id = try task.text("id", table: "task")
        jobID = try job.text("id", table: "job")
        poolID = try job.text("pool_id", table: "job")
    }
}

/// How a task ended, for `TaskWrite.complete`.
struct TaskCompletion {
    var exitCode: Int32?
    var result: ExecutionResult
    var failureInfo: FailureInfo?
    /// Whether dependants may run (dependencyAction `satisfy`).
    var satisfiesDependents: Bool
}

/// A task transition with the columns it writes besides the state.
enum TaskWrite {
    case waitForPreparation(nodePK: Int64, nodeID: String?)
    case start(nodePK: Int64, nodeID: String?, attempt: Int)
    /// `reason` goes into the event's detail (e.g. JobPreparationTaskFailed).
    case unassign(reason: String?)
    case requeue
    case retry(exitCode: Int32)
    case complete(TaskCompletion)
    case reactivate

    var event: TaskEvent {
        switch self {
        case .waitForPreparation: .waitForPreparation
        case .start: .start
        case .unassign: .unassign
        case .requeue: .requeue
        case .retry: .retry
        case .complete: .complete
        case .reactivate: .reactivate
        }
    }
}

/// Owns the SQL that moves a task between states.
enum TaskStore {
    /// Asks `TaskMachine` where `write` leads from `from` (throwing, and writing nothing, if it is
    /// illegal), writes the new state with its bookkeeping in one statement guarded by `state = from`,
    /// and appends the event row. Returns the new state.
    @discardableResult
    static func transition(
        _ db: Connection, _ task: TaskKey, from: TaskState, _ write: TaskWrite, now: String, log: inout [EngineEvent]
    ) throws -> TaskState {
        let to = try TaskMachine.next(from: from, on: write.event)
        var change = StateChange(to: to.rawValue, now: now)
        var node: String?
        var detail: String?
        switch write {
        case .waitForPreparation(let nodePK, let nodeID):
            change.sets.append("node_pk = ?")
            change.arguments.append(nodePK)
            node = nodeID
        case .start(let nodePK, let nodeID, let attempt):
            change.sets += ["node_pk = ?", "attempt = ?", "start_time = ?"]
            change.arguments += [nodePK, attempt, now]
            node = nodeID
        case .unassign(let reason):
            change.sets.append("node_pk = NULL")
            detail = reason.map { #"{"reason":"\#($0)"}"# }
        case .requeue:
            change.sets += ["requeue_count = requeue_count + 1", "last_requeue_time = ?"]
            change.arguments.append(now)
            // A task that was only waiting for preparation never ran on the node: it lets go of it.
            // One that ran keeps it as the node it last ran on.
            switch from {
            case .preparing: change.sets.append("node_pk = NULL")
            case .active, .running, .completed: break
            }
            detail = #"{"reason":"requeued"}"#
        case .retry(let exitCode):
            change.sets += ["retry_count = retry_count + 1", "last_retry_time = ?", "exit_code = NULL"]
            change.arguments.append(now)
            detail = #"{"reason":"retry","exitCode":\#(exitCode)}"#
        case .complete(let completion):
            change.sets += ["end_time = ?", "exit_code = ?", "result = ?", "failure_info = ?", "satisfies_dependents = ?"]
            change.arguments += [now, completion.exitCode, completion.result.rawValue, completion.failureInfo.map(encodeJSON),
                completion.satisfiesDependents]
            detail = #"{"result":"\#(completion.result.rawValue)"}"#
        case .reactivate:
            change.sets += ["retry_count = 0", "last_retry_time = NULL", "exit_code = NULL", "result = NULL", "failure_info = NULL",
                "end_time = NULL", "satisfies_dependents = NULL"]
            detail = #"{"reason":"reactivated"}"#
        }
        try change.run(db, "task", pk: task.pk, from: from.rawValue)
        log.append(try EventLog.append(db, "task.\(to.rawValue)", pool: task.poolID, node: node, job: task.jobID, task: task.id,
            from: from.rawValue, to: to.rawValue, detail: detail, now: now))
        return to
    }
}

/// The `spec` column of a new task. Most tasks carry only an id, a command line, perhaps a display
/// name, and the default user identity: those are written directly, in the bytes `encodeJSON` gives
/// (sorted keys, slashes unescaped), because a JSONEncoder run per task was the largest single cost
/// of a library ingest. Anything else goes through `encodeJSON`.
enum StoredTaskSpec {
    static func encode(_ spec: TaskSpec) -> String {
        guard spec.exitConditions == nil, spec.containerSettings == nil, spec.resourceFiles == nil,
            spec.outputFiles == nil, spec.environmentSettings == nil, spec.affinityInfo == nil,
            spec.constraints == nil, spec.requiredSlots == nil, spec.multiInstanceSettings == nil,
            spec.dependsOn == nil, spec.applicationPackageReferences == nil,
            let identity = spec.userIdentity, identity.username == nil, let auto = identity.autoUser,
            let scope = auto.scope, let level = auto.elevationLevel
        else { return encodeJSON(spec) }
        // Written as bytes into one buffer sized up front: appending to a String grew and re-checked
        // it at every piece, which made this a sixth of an ingest's CPU.
        var out: [UInt8] = []
        out.reserveCapacity(96 + spec.commandLine.utf8.count + spec.id.utf8.count + (spec.displayName?.utf8.count ?? 0))
        out.append(contentsOf: #"{"commandLine":"#.utf8)
        quote(spec.commandLine, into: &out)
        if let name = spec.displayName {
            out.append(contentsOf: #","displayName":"#.utf8)
            quote(name, into: &out)
        }
        out.append(contentsOf: #","id":"#.utf8)
        quote(spec.id, into: &out)
        out.append(contentsOf: #","userIdentity":{"autoUser":{"elevationLevel":"#.utf8)
        quote(level.rawValue, into: &out)
        out.append(contentsOf: #","scope":"#.utf8)
        quote(scope.rawValue, into: &out)
        out.append(contentsOf: "}}}".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// The stored spec of a `task` row, as `TaskSpec`. The common shape `encode` writes by hand is read
    /// back by hand too: only its identity is not in a column of its own, and a JSONDecoder run per
    /// task was most of a task page's cost. Any other spec (or one this reader does not follow) goes
    /// through JSONDecoder, so what a read returns never depends on which path read it. NULL is nil;
    /// a spec that does not decode is a corrupt row.
    static func decode(_ row: Row) throws -> TaskSpec? {
        let column = try row.value("spec", table: "task")
        if let text = column.string, let identity = commonIdentity(text) {
            var spec = TaskSpec(id: try row.text("id", table: "task"), commandLine: try row.text("command_line", table: "task"),
                userIdentity: identity)
            spec.displayName = try row.optionalText("display_name", table: "task")
            return spec
        }
        return try row.json(TaskSpec.self, "spec", table: "task")
    }

    /// A stored spec column of any row (`spec` of `task`, or the same column under another name in a
    /// join), as `TaskSpec`: read by hand when it has the common shape and none of its strings holds an
    /// escape, else through JSONDecoder. The scheduler reads every task's spec up to three times (its
    /// identity when it is dispatched, its environment when it launches, its exit conditions when it
    /// completes); JSONDecoder for those was a tenth of the engine's time in the throughput profile.
    static func decode(_ row: Row, _ column: String, table: String) throws -> TaskSpec? {
        if let text = row[column].string, let spec = common(text) { return spec }
        return try row.json(TaskSpec.self, column, table: table)
    }

    /// `text` as a `TaskSpec` when it has exactly the common shape `encode` writes and no string in it
    /// holds an escape (the values are then the bytes between the quotes), else nil.
    static func common(_ text: String) -> TaskSpec? {
        guard let shape = commonShape(text, readingStrings: true), let strings = shape.strings else { return nil }
        var spec = TaskSpec(id: strings.id, commandLine: strings.commandLine, userIdentity: shape.identity)
        spec.displayName = strings.displayName
        return spec
    }

    /// The identity of a spec in exactly the common shape `encode` writes (`commandLine`, an optional
    /// `displayName`, `id`, and an auto-user identity whose two values hold no escapes), else nil.
    /// Its strings are skipped, escapes or not: a task page has them in columns of their own.
    static func commonIdentity(_ text: String) -> UserIdentity? {
        commonShape(text, readingStrings: false)?.identity
    }

    /// The one reader of the common shape, for `common` and `commonIdentity`: the identity, and with
    /// `readingStrings` the command line, display name and id too (nil when one holds an escape).
    private static func commonShape(_ text: String, readingStrings: Bool)
        -> (identity: UserIdentity, strings: (commandLine: String, displayName: String?, id: String)?)?
    {
        var text = text
        return text.withUTF8 { bytes in
            var scanner = SpecScanner(bytes: bytes)
            // A string value: read (nil for an escape) or skipped (`""` stands for a skipped one).
            func value() -> String? { readingStrings ? scanner.plainString() : (scanner.skipString() ? "" : nil) }
            guard scanner.literal(#"{"commandLine":"#), let commandLine = value() else { return nil }
            var displayName: String?
            if scanner.literal(#","displayName":"#) {
                guard let name = value() else { return nil }
                displayName = name
            }
            guard scanner.literal(#","id":"#), let id = value(),
                scanner.literal(#","userIdentity":{"autoUser":{"elevationLevel":"#), let level = scanner.plainString(),
                scanner.literal(#","scope":"#), let scope = scanner.plainString(), scanner.literal("}}}"), scanner.atEnd
            else { return nil }
            // The enums' own init, the one their Decodable conformance uses: the same value either way.
            let identity = UserIdentity(autoUser: UserIdentity.AutoUser(scope: AutoUserScope(rawValue: scope), elevationLevel: ElevationLevel(rawValue: level)))
            return (identity, readingStrings ? (commandLine, displayName, id) : nil)
        }
    }

    /// A forward-only reader over the bytes of a stored spec, for `commonShape`.
    private struct SpecScanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        var atEnd: Bool { position == bytes.count }

        /// Consumes `expected` if the bytes continue with it.
        mutating func literal(_ expected: StaticString) -> Bool {
            let count = expected.utf8CodeUnitCount
            guard bytes.count - position >= count else { return false }
            let start = expected.utf8Start
            for offset in 0..<count where bytes[position + offset] != start[offset] { return false }
            position += count
            return true
        }

        /// Consumes one JSON string literal, escapes included, without building it.
        mutating func skipString() -> Bool {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { return false }
            position += 1
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: "\""):
                    position += 1
                    return true
                case UInt8(ascii: "\\"): position += 2
                default: position += 1
                }
            }
            return false
        }

        /// Consumes a string literal with no escapes and returns its text; nil for any other.
        mutating func plainString() -> String? {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { return nil }
            let start = position + 1
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                guard bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 else { return nil }
                end += 1
            }
            guard end < bytes.count else { return nil }
            position = end + 1
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
    }

    /// `value` as a JSON string literal: quote, backslash and control characters escaped.
    static func quote(_ value: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Nearly every id and command line has nothing to escape: one scan, then one copy.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(contentsOf: value.utf8)
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): out.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): out.append(contentsOf: #"\t"#.utf8)
            case 0x08: out.append(contentsOf: #"\b"#.utf8)
            case 0x0C: out.append(contentsOf: #"\f"#.utf8)
            case 0..<0x20:
                // Bytes of multi-byte characters are all 0x80 or above: they pass through whole.
                let digits = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(digits[Int(byte >> 4)])
                out.append(digits[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension TaskStore {
    /// Inserts a validated task (state `active`), its dependencies and its event; returns its pk. A
    /// task whose id the job already has throws `TaskExists` and writes nothing (the failed INSERT
    /// undoes only itself).
    static func insert(
        _ db: Connection, _ task: Engine.NewTask, into target: Engine.TaskTarget, eTag: String, now: String, log: inout [EngineEvent]
    ) throws -> Int64 {
        let state = TaskState.active
        do {
            // Bound by type (`run(_:binding:)`): the per-task insert of every ingest.
            try db.run(
                """
                INSERT INTO task (job_pk, id, display_name, command_line, spec, is_job_manager, kill_job_on_completion,
                    required_slots, max_wall_clock_time_ms, retention_time_ms, max_task_retry_count, state, creation_time,
                    last_modified, state_transition_time, e_tag)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                binding: target.jobPK, task.id, task.displayName, task.commandLine, task.storedSpec, task.isJobManager,
                task.killJobOnCompletion, task.requiredSlots, task.maxWallClockMS, task.retentionMS, task.maxRetries,
                state.rawValue, now, now, now, eTag)
        } catch {
            if error.isUniqueViolation { throw BookendError.conflict("TaskExists", "The specified task already exists") }
            throw error
        }
        let pk = db.lastInsertRowID
        for dependency in task.dependencies {
            try db.run("INSERT INTO task_dependency (task_pk, depends_on_id) VALUES (?, ?)", binding: pk, dependency)
        }
        log.append(try EventLog.append(db, "task.added", pool: target.poolID, job: target.jobID, task: task.id, to: state.rawValue, now: now))
        return pk
    }

    /// Deletes the task row (its executions and dependencies go with it by cascade) and appends
    /// `task.deleted`.
    static func delete(_ db: Connection, _ task: TaskKey, from: TaskState, now: String, log: inout [EngineEvent]) throws {
        guard try db.run("DELETE FROM task WHERE pk = ?", [task.pk]) == 1 else {
            throw BookendError.internalError("task pk \(task.pk) does not exist")
        }
        log.append(try EventLog.append(db, "task.deleted", pool: task.poolID, job: task.jobID, task: task.id, from: from.rawValue, now: now))
    }

    /// The task's own account (autoUser scope `task`), kept across its retries.
    static func setAccount(_ db: Connection, pk: Int64, uid: Int64) throws {
        try db.run("UPDATE task SET uid = ? WHERE pk = ?", [uid, pk])
    }
}

extension TaskStore {
    /// What `insertAll` did with one task: stored, or refused on its own (`TaskExists`).
    enum BatchOutcome {
        case stored
        case refused(BookendError)
    }

    /// The row counts a multi-row INSERT is prepared for, largest first; a batch is written as the
    /// fewest statements of these sizes (100 tasks: one statement; 37: four).
    static let batchSizes = [100, 50, 20, 10, 5, 2, 1]

    private static let taskColumns = """
        pk, job_pk, id, display_name, command_line, spec, is_job_manager, kill_job_on_completion, required_slots,
        max_wall_clock_time_ms, retention_time_ms, max_task_retry_count, state, creation_time, last_modified,
        state_transition_time, e_tag
        """

    /// One INSERT text per batch size. Kept for the life of the process, so that each text keeps the
    /// address its connection's statement cache finds it by.
    private static let batchInsertSQL: [Int: String] = Dictionary(uniqueKeysWithValues: batchSizes.map { size in
        let row = "(" + Array(repeating: "?", count: 17).joined(separator: ",") + ")"
        return (size, "INSERT INTO task (\(taskColumns)) VALUES " + Array(repeating: row, count: size).joined(separator: ","))
    })

    /// Inserts validated tasks (state `active`) with their dependencies and `task.added` events, in
    /// order; returns what happened to each. Tasks are written by multi-row INSERTs of `batchSizes`
    /// rows: per stored task, one statement run of 100 rows costs SQLite about a fifth less than 100
    /// runs of one row (the statement's set-up, its cursors and its statement journal are paid once).
    ///
    /// A duplicate id fails its whole statement, and SQLite undoes just that statement; the tasks
    /// from that statement on are then inserted one at a time, so that only the duplicate is refused,
    /// exactly as when every task had its own INSERT. Each row's key is given explicitly (the table's
    /// largest key plus one, onwards, which is what SQLite would choose) so that dependencies know it.
    static func insertAll(
        _ db: Connection, _ tasks: [Engine.NewTask], eTags: [String], into target: Engine.TaskTarget, now: String,
        log: inout [EngineEvent]
    ) throws -> [BatchOutcome] {
        precondition(tasks.count == eTags.count)
        var outcomes: [BatchOutcome] = []
        outcomes.reserveCapacity(tasks.count)
        var next = 0
        var lastPK = try db.scalar("SELECT coalesce(max(pk), 0) FROM task").int64 ?? 0
        let state = TaskState.active.rawValue
        while next < tasks.count {
            guard let size = batchSizes.first(where: { $0 <= tasks.count - next }), let sql = batchInsertSQL[size],
                lastPK <= Int64.max - Int64(size)
            else { break }
            let batch = next..<next + size
            let statement = try db.statement(sql)
            statement.resetForBinding()
            var index: Int32 = 1
            for offset in batch {
                let task = tasks[offset]
                try statement.bind(
                    row: lastPK + 1 + Int64(offset - next), target.jobPK, task.id, task.displayName, task.commandLine, task.storedSpec,
                    task.isJobManager, task.killJobOnCompletion, task.requiredSlots, task.maxWallClockMS, task.retentionMS,
                    task.maxRetries, state, now, now, now, eTags[offset], from: &index)
            }
            do throws(SQLiteError) {
                try statement.runToEnd()
            } catch {
                guard error.isUniqueViolation else { throw error }
                break
            }
            for offset in batch where !tasks[offset].dependencies.isEmpty {
                let pk = lastPK + 1 + Int64(offset - next)
                for dependency in tasks[offset].dependencies {
                    try db.run("INSERT INTO task_dependency (task_pk, depends_on_id) VALUES (?, ?)", binding: pk, dependency)
                }
            }
            log += try EventLog.appendAll(db, "task.added", pool: target.poolID, job: target.jobID, tasks: tasks[batch].map(\.id),
                to: state, now: now)
            outcomes += repeatElement(.stored, count: size)
            lastPK += Int64(size)
            next += size
        }
        // From a statement that met a duplicate on: one task at a time.
        for offset in next..<tasks.count {
            do {
                _ = try insert(db, tasks[offset], into: target, eTag: eTags[offset], now: now, log: &log)
                outcomes.append(.stored)
            } catch let error as BookendError {
                outcomes.append(.refused(error))
            }
        }
        return outcomes
    }
}
