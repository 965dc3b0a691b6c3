import Foundation
import SQLite

/// Changes to a pool (`PATCH /pools/{id}`): nil fields stay as they are; `metadata: []` clears it.
/// The wire's body itself.
public typealias PoolUpdate = BatchPoolUpdateOptions

extension Engine {
    /// Updates the given properties of a pool. A new start task applies to nodes when they next boot.
    @discardableResult
    public func updatePool(id: String, _ update: PoolUpdate) throws -> Pool {
        let startTask = try update.startTask.map(Engine.normalizedStartTask)
        try Validate.metadata(update.metadata)
        try NodeProviderChoice.validate(update.metadata)
        let now = Engine.now()
        let pk: Int64 = try transaction { db in
            let row = try livePool(db, id)
            guard try row.state(PoolState.self, table: "pool") == .active else {
                throw BookendError.conflict("PoolBeingDeleted", "The pool is being deleted")
            }
            var assignments: [(String, any SQLiteBindable)] = []
            if let startTask { assignments.append(("start_task", encodeJSON(startTask))) }
            if let metadata = update.metadata { assignments.append(("metadata", encodeJSON(metadata))) }
            try PropertyStore.update(db, .pool, pk: row.int64("pk", table: "pool"), assignments, now: now)
            try record(db, "pool.updated", pool: row["id"].string, now: now)
            return try row.int64("pk", table: "pool")
        }
        return try pool(pk: pk)
    }
}

extension Engine {
    /// Replaces a pool's start task and metadata (`POST /pools/{id}/updateproperties`): nil removes the
    /// start task, `[]` clears the metadata. As with `updatePool`, a new start task applies to nodes
    /// when they next boot.
    @discardableResult
    public func replacePoolProperties(id: String, startTask: StartTask?, metadata: [MetadataItem]) throws -> Pool {
        let startTask = try startTask.map(Engine.normalizedStartTask)
        try Validate.metadata(metadata)
        try NodeProviderChoice.validate(metadata)
        let now = Engine.now()
        let pk: Int64 = try transaction { db in
            let row = try livePool(db, id)
            guard try row.state(PoolState.self, table: "pool") == .active else {
                throw BookendError.conflict("PoolBeingDeleted", "The pool is being deleted")
            }
            let pk = try row.int64("pk", table: "pool")
            try PropertyStore.update(db, .pool, pk: pk,
                [("start_task", startTask.map { encodeJSON($0) } as String?), ("metadata", encodeJSON(metadata))], now: now)
            try record(db, "pool.updated", pool: row["id"].string, now: now)
            return pk
        }
        return try pool(pk: pk)
    }
}

extension Engine {
    /// Stops a pool's resize: the target becomes the nodes it has now (nodes already leaving still
    /// leave); the pool turns `steady` once those settle. On a `steady` pool this changes nothing.
    public func stopPoolResize(id: String) throws {
        let now = Engine.now()
        try transaction { db in
            let row = try livePool(db, id)
            guard try row.state(PoolState.self, table: "pool") == .active else {
                throw BookendError.conflict("PoolBeingDeleted", "The pool is being deleted")
            }
            guard try row.state(AllocationState.self, "allocation_state", table: "pool") == .resizing else { return }
            let pk = try row.int64("pk", table: "pool")
            // Nodes not allocated yet (`creating`: a Slurm allocation still queued, or asked of a
            // cluster that does not answer) leave, as Batch drops the nodes a stopped resize had not
            // allocated. Counting them in the new target kept the pool resizing for as long as they
            // waited, with no way to stop it (a resize is refused while one runs).
            for node in try db.query("SELECT pk FROM node WHERE pool_pk = ? AND removed_time IS NULL AND state = ?",
                [pk, NodeState.creating.rawValue]) {
                try NodeStore.transition(db, pk: node.int64("pk", table: "node"), on: .leave, now: now, log: &pendingEvents)
            }
            func count(_ dedicated: Int) throws -> Int {
                try db.counted(
                    "SELECT count(*) FROM node WHERE pool_pk = ? AND is_dedicated = ? AND removed_time IS NULL AND state <> 'leavingpool'",
                    [pk, dedicated])
            }
            try PropertyStore.update(db, .pool, pk: pk, [("target_dedicated_nodes", try count(1)), ("target_low_priority_nodes", try count(0))],
                now: now)
            try record(db, "pool.resize.stopped", pool: row["id"].string, now: now)
        }
        wake()
    }
}
