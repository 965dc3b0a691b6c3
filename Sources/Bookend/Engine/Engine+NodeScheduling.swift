import Foundation
import SQLite

extension Engine {
    /// Stops scheduling new tasks on a node. `nodeDisableSchedulingOption`: `requeue` (default) ends
    /// running tasks and runs them again elsewhere, `terminate` ends them as failed, `taskcompletion`
    /// lets them finish.
    public func disableNodeScheduling(poolID: String, nodeID: String, nodeDisableSchedulingOption: String? = nil) throws {
        let option = try Validate.oneOf(
            nodeDisableSchedulingOption, ["requeue", "terminate", "taskcompletion"], property: "nodeDisableSchedulingOption") ?? "requeue"
        // requeue and terminate are kill reasons of the same name; taskcompletion kills nothing.
        let reason = KillReason(rawValue: option)
        try setScheduling(poolID: poolID, nodeID: nodeID, to: "disabled") { db, nodePK in
            guard let reason else { return }
            try ExecutionStore.decideKill(db, reason, where: "node_pk = ? AND kind = ?", [nodePK, ExecutionKind.task.rawValue])
        }
    }

    /// Lets the scheduler place tasks on the node again.
    public func enableNodeScheduling(poolID: String, nodeID: String) throws {
        try setScheduling(poolID: poolID, nodeID: nodeID, to: "enabled") { _, _ in }
    }

    private func setScheduling(poolID: String, nodeID: String, to state: String, _ also: (Connection, Int64) throws -> Void) throws {
        let now = Engine.now()
        try transaction { db in
            let pool = try livePool(db, poolID)
            guard let row = try db.query(
                "SELECT pk, id, scheduling_state FROM node WHERE pool_pk = ? AND id = ? AND removed_time IS NULL", [pool["pk"], nodeID]).first
            else { throw BookendError.notFound("NodeNotFound", "The node \(nodeID)") }
            guard row["scheduling_state"].string != state else {
                throw BookendError.conflict("NodeAlreadyInTargetSchedulingState", "The node's scheduling is already \(state)")
            }
            let pk = try row.int64("pk", table: "node")
            try PropertyStore.update(db, .node, pk: pk, [("scheduling_state", state)], now: now)
            try also(db, pk)
            try record(db, "node.scheduling.\(state)", pool: pool["id"].string, node: row["id"].string, to: state, now: now)
        }
        wake()
    }
}
