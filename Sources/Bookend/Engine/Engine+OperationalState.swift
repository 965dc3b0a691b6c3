import Foundation
import SQLite

/// Counts of stored state for monitoring, read in one read transaction from the engine's readers
/// (never the writer, so a scrape never waits for a scheduling pass). Each query is a grouped
/// count over an index or a small table; `GET /metrics` reports them as gauges.
public struct OperationalState: Sendable, Equatable {
    /// Live executions (`starting` or `running`) by kind and state.
    public var liveExecutions: [Key2: Int]
    /// Tasks in `active` (waiting to run), summed from the `task_count` table.
    public var activeTasks: Int
    /// Nodes still in a pool, by pool id and node state.
    public var nodes: [Key2: Int]
    /// Jobs by state (deleted jobs are gone from the table).
    public var jobs: [String: Int]
    /// `<data-dir>/bookend.db` and its write-ahead log, in bytes (0 when the log is absent).
    public var databaseBytes: Int64
    public var walBytes: Int64

    /// A pair of label values, e.g. (kind, state) or (pool, state).
    public struct Key2: Sendable, Hashable {
        public var first: String
        public var second: String
        public init(_ first: String, _ second: String) {
            self.first = first
            self.second = second
        }
    }
}

extension Engine {
    /// What `OperationalState` describes, now. Blocks on SQLite: async callers use `lookup`.
    public nonisolated func operationalState() throws -> OperationalState {
        let databasePath = DataDirectory.databasePath(dataDirectory)
        // One read transaction (ReaderPool.read), so the counts agree with each other.
        var state = try readers.read { db -> OperationalState in
            do {
                var live: [OperationalState.Key2: Int] = [:]
                for row in try db.query("SELECT kind, state, count(*) AS n FROM execution WHERE state <> 'completed' GROUP BY kind, state") {
                    live[.init(try row.text("kind", table: "execution"), try row.text("state", table: "execution"))] =
                        try row.int("n", table: "execution")
                }
                var nodes: [OperationalState.Key2: Int] = [:]
                for row in try db.query(
                    """
                    SELECT p.id AS pool, n.state AS state, count(*) AS n FROM node n JOIN pool p ON p.pk = n.pool_pk
                    WHERE n.removed_time IS NULL GROUP BY p.id, n.state
                    """)
                {
                    nodes[.init(try row.text("pool", table: "node"), try row.text("state", table: "node"))] = try row.int("n", table: "node")
                }
                var jobs: [String: Int] = [:]
                for row in try db.query("SELECT state, count(*) AS n FROM job GROUP BY state") {
                    jobs[try row.text("state", table: "job")] = try row.int("n", table: "job")
                }
                let active = try db.counted("SELECT coalesce(sum(tasks), 0) FROM task_count WHERE bucket = 'active'")
                return OperationalState(liveExecutions: live, activeTasks: active, nodes: nodes, jobs: jobs, databaseBytes: 0, walBytes: 0)
            }
        }
        state.databaseBytes = Int64(clamping: Engine.fileSize(databasePath))
        state.walBytes = Int64(clamping: Engine.fileSize(databasePath + "-wal"))
        return state
    }
}
