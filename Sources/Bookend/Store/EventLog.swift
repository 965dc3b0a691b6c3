import SQLite

/// The append-only `event` table: one row per state change, written by the stores in the same
/// transaction as the change. The caller publishes the returned events once the transaction commits.
enum EventLog {
    static func append(
        _ db: Connection, _ kind: String, pool: String? = nil, node: String? = nil, job: String? = nil,
        task: String? = nil, from: String? = nil, to: String? = nil, detail: String? = nil, now: String
    ) throws -> EngineEvent {
        try db.run(
            "INSERT INTO event (time, kind, pool_id, node_id, job_id, task_id, from_state, to_state, detail) VALUES (?,?,?,?,?,?,?,?,?)",
            binding: now, kind, pool, node, job, task, from, to, detail)
        return EngineEvent(kind: kind, poolId: pool, nodeId: node, jobId: job, taskId: task, state: to, detail: detail)
    }
}

extension EventLog {
    /// One event of `kind` for each task in `tasks` (ids, in order), all of one job and state, written
    /// by multi-row INSERTs; returns them as `append` would, one by one.
    static func appendAll(
        _ db: Connection, _ kind: String, pool: String?, job: String, tasks: [String], to: String, now: String
    ) throws -> [EngineEvent] {
        var next = 0
        while next < tasks.count {
            guard let size = TaskStore.batchSizes.first(where: { $0 <= tasks.count - next }), let sql = batchSQL[size] else { break }
            let statement = try db.statement(sql)
            statement.resetForBinding()
            var index: Int32 = 1
            for task in tasks[next..<next + size] {
                try statement.bind(row: now, kind, pool, job, task, to, from: &index)
            }
            try statement.runToEnd()
            next += size
        }
        return tasks.map { EngineEvent(kind: kind, poolId: pool, nodeId: nil, jobId: job, taskId: $0, state: to, detail: nil) }
    }

    /// One INSERT text per batch size, kept for the life of the process (see `TaskStore.batchInsertSQL`).
    private static let batchSQL: [Int: String] = Dictionary(uniqueKeysWithValues: TaskStore.batchSizes.map { size in
        (size, "INSERT INTO event (time, kind, pool_id, job_id, task_id, to_state) VALUES "
            + Array(repeating: "(?,?,?,?,?,?)", count: size).joined(separator: ","))
    })
}

/// What a guarded write found: the row was not in the state the caller read, so nothing was written.
/// Within one transaction on the engine's only writer this is a bug, not a race; it rolls back.
func staleState(_ table: String, _ key: String, expected: String) -> BookendError {
    BookendError.internalError("\(table) \(key): expected state \(expected), but the row has moved on; nothing was written")
}

extension EventLog {
    /// Removes up to `limit` of a deleted job's events older than its `job.deleted` event (`before`);
    /// the log's delete trigger refuses any other removal.
    static func pruneJob(_ db: Connection, jobID: String, before seq: Int64, limit: Int) throws -> Int {
        try db.run("DELETE FROM event WHERE seq IN (SELECT seq FROM event WHERE job_id = ? AND seq < ? ORDER BY seq LIMIT ?)",
            [jobID, seq, limit])
    }

    /// Removes one event (a pruned job's `job.deleted`, once its earlier events are gone).
    static func remove(_ db: Connection, seq: Int64) throws -> Int {
        try db.run("DELETE FROM event WHERE seq = ?", [seq])
    }
}
