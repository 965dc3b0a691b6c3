import Foundation
import SQLite

/// A task that ran on a node lately, as the node's `recentTasks` lists it.
public struct NodeRecentTask: Sendable, Hashable {
    public var jobId: String
    public var task: JobTask
}

extension Engine {
    /// How many tasks a node lists in `recentTasks`: Azure shows the last few, not the node's history.
    public static let recentTaskLimit = 10

    /// The tasks whose latest run was on this node (preparing, running, or finished there), the most
    /// recent state change first. Empty for a node that never ran a job task.
    /// Reads on a reader connection, in one snapshot.
    public nonisolated func recentTasks(poolID: String, nodeID: String, limit: Int = Engine.recentTaskLimit) throws -> [NodeRecentTask] {
        try readers.read { db in
            try db.query(
                """
                SELECT t.pk, j.id AS job_id FROM task t JOIN job j ON j.pk = t.job_pk JOIN node n ON n.pk = t.node_pk
                JOIN pool p ON p.pk = n.pool_pk
                WHERE p.id = ? COLLATE NOCASE AND p.deleted_time IS NULL AND n.id = ? AND n.removed_time IS NULL
                ORDER BY t.state_transition_time DESC, t.pk DESC LIMIT ?
                """, [poolID, nodeID, limit]
            ).map { row in
                NodeRecentTask(jobId: try row.text("job_id", table: "job"), task: try task(db, pk: try row.int64("pk", table: "task")))
            }
        }
    }
}
