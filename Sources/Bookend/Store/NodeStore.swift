import SQLite

/// Owns the SQL that moves a node between states.
enum NodeStore {
    /// Reads the node's state, asks `NodeMachine` where `event` leads (throwing the Batch conflict if
    /// it is illegal), writes state, transition time, ETag, `reboot_option` (kept only while
    /// rebooting) and `deallocation_option` (written when it leaves) guarded by `state = from`, and appends the event row. `removed` keeps the state and
    /// writes `removed_time` instead. Returns the new state.
    @discardableResult
    static func transition(
        _ db: Connection, pk: Int64, on event: NodeEvent, rebootOption: NodeRebootOption = .requeue,
        deallocation: NodeRebootOption = .requeue, now: String, log: inout [EngineEvent]
    ) throws -> NodeState {
        guard let row = try db.query("SELECT n.pk, n.id, n.state, p.id AS pool_id FROM node n JOIN pool p ON p.pk = n.pool_pk WHERE n.pk = ?", [pk]).first
        else { throw BookendError.internalError("node pk \(pk) does not exist") }
        let from = try row.state(NodeState.self, table: "node")
        let to = try NodeMachine.next(from: from, on: event)
        let id = try row.text("id", table: "node")
        let pool = try row.text("pool_id", table: "node")
        let changed: Int
        switch event {
        case .removed:
            changed = try db.run("UPDATE node SET removed_time = ?, e_tag = ? WHERE pk = ? AND state = ? AND removed_time IS NULL",
                [now, Engine.newETag(), pk, from.rawValue])
        case .boot:
            // Each boot is counted: a preparation that ran under an earlier boot may have to run again.
            changed = try db.run(
                "UPDATE node SET state = ?, state_transition_time = ?, e_tag = ?, boot_count = boot_count + 1, last_boot_time = ? WHERE pk = ? AND state = ?",
                [to.rawValue, now, Engine.newETag(), now, pk, from.rawValue])
        case .leave:
            // Kept with the node while it leaves: what it does to the work still running there.
            changed = try db.run(
                "UPDATE node SET state = ?, reboot_option = NULL, deallocation_option = ?, state_transition_time = ?, e_tag = ? WHERE pk = ? AND state = ?",
                [to.rawValue, deallocation.rawValue, now, Engine.newETag(), pk, from.rawValue])
        case .awaitStartTask, .ready, .startTaskFailed, .busy, .free, .reboot, .rebooted:
            let option: String? = to == .rebooting ? rebootOption.rawValue : nil
            changed = try db.run(
                "UPDATE node SET state = ?, reboot_option = ?, state_transition_time = ?, e_tag = ? WHERE pk = ? AND state = ?",
                [to.rawValue, option, now, Engine.newETag(), pk, from.rawValue])
        }
        guard changed == 1 else { throw staleState("node", "pk \(pk)", expected: from.rawValue) }
        switch event {
        case .removed:
            log.append(try EventLog.append(db, "node.removed", pool: pool, node: id, from: from.rawValue, now: now))
        case .boot, .awaitStartTask, .ready, .startTaskFailed, .busy, .free, .reboot, .rebooted, .leave:
            log.append(try EventLog.append(db, "node.\(to.rawValue)", pool: pool, node: id, from: from.rawValue, to: to.rawValue, now: now))
        }
        return to
    }
}

extension NodeStore {
    /// A new node of a pool starts `creating` and `enabled`.
    @discardableResult
    static func insert(
        _ db: Connection, id: String, poolPK: Int64, poolID: String, isDedicated: Bool, rootDirectory: String, now: String,
        log: inout [EngineEvent]
    ) throws -> Int64 {
        let state = NodeState.creating
        try db.run(
            """
            INSERT INTO node (id, pool_pk, is_dedicated, state, scheduling_state, root_dir, ip_address, e_tag,
                allocation_time, state_transition_time)
            VALUES (?, ?, ?, ?, 'enabled', ?, '127.0.0.1', ?, ?, ?)
            """, [id, poolPK, isDedicated, state.rawValue, rootDirectory, Engine.newETag(), now, now])
        // Read before the event's INSERT, which moves the connection's last rowid.
        let pk = db.lastInsertRowID
        log.append(try EventLog.append(db, "node.created", pool: poolID, node: id, to: state.rawValue, now: now))
        return pk
    }

    /// A task ended on the node: its counters (`totalTasksRun`, `totalTasksSucceeded`) go up.
    static func countTaskRun(_ db: Connection, pk: Int64, succeeded: Bool) throws {
        try db.run("UPDATE node SET total_tasks_run = total_tasks_run + 1, total_tasks_succeeded = total_tasks_succeeded + ? WHERE pk = ?",
            [succeeded ? 1 : 0, pk])
    }
}

/// The Slurm provider's columns of a node (migration 9). None of them is a state: a Slurm node moves
/// between states through `transition` like any other; these say where its allocation is.
extension NodeStore {
    /// A new node becomes a Slurm node: no address until its allocation runs, and its folder under
    /// the shared node root when one is configured.
    static func assignSlurm(_ db: Connection, pk: Int64, partition: String?, nodesDirectory: String?) throws {
        try db.run("UPDATE node SET provider = 'slurm', slurm_partition = ?, ip_address = '' WHERE pk = ?", [partition, pk])
        if let nodesDirectory {
            try db.run("UPDATE node SET root_dir = ? || '/' || id WHERE pk = ?", [nodesDirectory, pk])
        }
    }

    /// The job id `sbatch` answered for the node's allocation; the first answer stands.
    static func recordAllocation(_ db: Connection, pk: Int64, slurmJobID: String) throws {
        try db.run("UPDATE node SET slurm_job_id = ? WHERE pk = ? AND slurm_job_id IS NULL", [slurmJobID, pk])
    }

    /// The host the running allocation landed on, shown as the node's address.
    static func recordSlurmHost(_ db: Connection, pk: Int64, host: String) throws {
        try db.run("UPDATE node SET slurm_host = ?, ip_address = ? WHERE pk = ?", [host, host, pk])
    }

    /// The removed node's allocation is gone (cancelled, or never submitted): nothing more to follow.
    static func markAllocationReleased(_ db: Connection, pk: Int64, now: String) throws {
        try db.run("UPDATE node SET slurm_released_time = ? WHERE pk = ?", [now, pk])
    }

    /// The nodes of a pool that are leaving it end their work as `requeue` from now on, whatever their
    /// resize asked for (the pool is being deleted).
    static func requeueWhileLeaving(_ db: Connection, poolPK: Int64) throws {
        try db.run("UPDATE node SET deallocation_option = ? WHERE pool_pk = ? AND removed_time IS NULL AND state = ?",
            [NodeRebootOption.requeue.rawValue, poolPK, NodeState.leavingpool.rawValue])
    }
}
