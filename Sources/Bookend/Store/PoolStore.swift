import SQLite

/// Owns the SQL that moves a pool between states and allocation states.
enum PoolStore {
    /// deletePool: `active → deleting` (a pool already deleting is left as it is).
    static func delete(_ db: Connection, pk: Int64, id: String, from: PoolState, now: String, log: inout [EngineEvent]) throws {
        let to = try PoolMachine.next(from: from, on: .delete)
        guard to != from else { return }
        let changed = try db.run(
            "UPDATE pool SET state = ?, state_transition_time = ?, e_tag = ?, last_modified = ? WHERE pk = ? AND state = ?",
            [to.rawValue, now, Engine.newETag(), now, pk, from.rawValue])
        guard changed == 1 else { throw staleState("pool", "pk \(pk)", expected: from.rawValue) }
        log.append(try EventLog.append(db, "pool.\(to.rawValue)", pool: id, from: from.rawValue, to: to.rawValue, now: now))
    }

    /// resizePool: new targets and `steady → resizing`. Throws PoolBeingDeleted / PoolBeingResized.
    static func resize(
        _ db: Connection, pk: Int64, id: String, state: PoolState, from: AllocationState, dedicated: Int, lowPriority: Int,
        now: String, log: inout [EngineEvent]
    ) throws {
        _ = try PoolMachine.next(from: state, on: .resize)
        let to = try AllocationMachine.next(from: from, on: .resize)
        let changed = try db.run(
            """
            UPDATE pool SET target_dedicated_nodes = ?, target_low_priority_nodes = ?, allocation_state = ?,
                allocation_state_transition_time = ?, e_tag = ?, last_modified = ? WHERE pk = ? AND allocation_state = ?
            """, [dedicated, lowPriority, to.rawValue, now, Engine.newETag(), now, pk, from.rawValue])
        guard changed == 1 else { throw staleState("pool", "pk \(pk)", expected: from.rawValue) }
        log.append(try EventLog.append(db, "pool.\(to.rawValue)", pool: id, from: from.rawValue, to: to.rawValue, now: now))
    }

    /// Every node has booted or left: `resizing → steady`.
    static func settle(_ db: Connection, pk: Int64, id: String, from: AllocationState, now: String, log: inout [EngineEvent]) throws {
        let to = try AllocationMachine.next(from: from, on: .settle)
        let changed = try db.run(
            "UPDATE pool SET allocation_state = ?, allocation_state_transition_time = ?, e_tag = ? WHERE pk = ? AND allocation_state = ?",
            [to.rawValue, now, Engine.newETag(), pk, from.rawValue])
        guard changed == 1 else { throw staleState("pool", "pk \(pk)", expected: from.rawValue) }
        log.append(try EventLog.append(db, "pool.\(to.rawValue)", pool: id, from: from.rawValue, to: to.rawValue, now: now))
    }

    /// A deleting pool whose nodes have all left is gone; the row stays for history and its id is free.
    static func markDeleted(_ db: Connection, pk: Int64, id: String, now: String, log: inout [EngineEvent]) throws {
        let changed = try db.run("UPDATE pool SET deleted_time = ? WHERE pk = ? AND state = ? AND deleted_time IS NULL",
            [now, pk, PoolState.deleting.rawValue])
        guard changed == 1 else { throw staleState("pool", "pk \(pk)", expected: PoolState.deleting.rawValue) }
        log.append(try EventLog.append(db, "pool.deleted", pool: id, from: PoolState.deleting.rawValue, now: now))
    }
}

/// A validated pool as `createPool` inserts it.
struct NewPool {
    var id: String
    var displayName: String?
    var vmSize: String
    var targetDedicatedNodes: Int
    var targetLowPriorityNodes: Int
    var taskSlotsPerNode: Int
    var nodeFillType: String
    var resizeTimeoutMS: Int64
    /// JSON columns, already encoded.
    var startTask: String?
    var metadata: String
    var spec: String
}

extension PoolStore {
    /// A new pool starts `active` and `resizing` (its nodes are about to be added); returns its pk.
    static func insert(_ db: Connection, _ pool: NewPool, now: String, log: inout [EngineEvent]) throws -> Int64 {
        let state = PoolState.active
        try db.run(
            """
            INSERT INTO pool (id, display_name, vm_size, state, allocation_state, target_dedicated_nodes,
                target_low_priority_nodes, task_slots_per_node, node_fill_type, resize_timeout_ms, start_task,
                metadata, spec, e_tag, creation_time, last_modified, state_transition_time, allocation_state_transition_time)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [pool.id, pool.displayName, pool.vmSize, state.rawValue, AllocationState.resizing.rawValue, pool.targetDedicatedNodes,
             pool.targetLowPriorityNodes, pool.taskSlotsPerNode, pool.nodeFillType, pool.resizeTimeoutMS, pool.startTask,
             pool.metadata, pool.spec, Engine.newETag(), now, now, now, now])
        let pk = db.lastInsertRowID
        log.append(try EventLog.append(db, "pool.created", pool: pool.id, to: state.rawValue, now: now))
        return pk
    }

    /// The pool's own account (autoUser scope `pool`), recorded once and kept for its lifetime.
    static func setAccount(_ db: Connection, pk: Int64, uid: Int64) throws {
        try db.run("UPDATE pool SET uid = ? WHERE pk = ?", [uid, pk])
    }
}
