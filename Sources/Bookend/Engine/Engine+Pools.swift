import Foundation
import SQLite

extension Engine {
    /// Creates a pool; its `targetDedicatedNodes` become that many local nodes on this machine.
    @discardableResult
    public func createPool(_ spec: PoolSpec) throws -> Pool {
        try Validate.id(spec.id, property: "id")
        try Validate.displayName(spec.displayName)
        try Validate.metadata(spec.metadata)
        try NodeProviderChoice.validate(spec.metadata)
        guard let vmSize = spec.vmSize, !vmSize.isEmpty else { throw BookendError.missingProperty("vmSize") }
        if spec.enableAutoScale == true {
            throw BookendError.invalidProperty("enableAutoScale", "true", "autoscale is not supported by Bookend")
        }
        let dedicated = spec.targetDedicatedNodes ?? 0
        let lowPriority = spec.targetLowPriorityNodes ?? 0
        try Validate.nodeCounts(dedicated: dedicated, lowPriority: lowPriority)
        let slots = spec.taskSlotsPerNode ?? 1
        guard (1...256).contains(slots) else { throw BookendError.invalidProperty("taskSlotsPerNode", "\(slots)", "must be 1 to 256") }
        let fill = try Validate.oneOf(spec.taskSchedulingPolicy?.nodeFillType, ["spread", "pack"], property: "taskSchedulingPolicy.nodeFillType") ?? "spread"
        let resizeTimeout = try Validate.duration(spec.resizeTimeout, property: "resizeTimeout") ?? 900_000
        guard resizeTimeout >= 300_000 else { throw BookendError.invalidProperty("resizeTimeout", spec.resizeTimeout, "must be at least PT5M") }
        var startTask = spec.startTask
        if let task = startTask {
            try Validate.commandLine(task.commandLine, property: "startTask.commandLine")
            try Validate.retryCount(task.maxTaskRetryCount, property: "startTask.maxTaskRetryCount")
            try Validate.environment(task.environmentSettings, property: "startTask.environmentSettings")
            try Validate.resourceFiles(task.resourceFiles, property: "startTask.resourceFiles")
            startTask?.userIdentity = try Validate.userIdentity(task.userIdentity, property: "startTask.userIdentity")
            startTask?.maxTaskRetryCount = task.maxTaskRetryCount ?? 0
            startTask?.waitForSuccess = task.waitForSuccess ?? true
        }
        var extra: [String: JSONValue] = [:]
        extra["virtualMachineConfiguration"] = spec.virtualMachineConfiguration
        if spec.enableInterNodeCommunication == true { extra["enableInterNodeCommunication"] = .bool(true) }
        let now = Engine.now()
        let pk: Int64 = try transaction { db in
            if try db.scalar("SELECT 1 FROM pool WHERE id = ? COLLATE NOCASE AND deleted_time IS NULL", [spec.id]) != .null {
                throw BookendError.conflict("PoolExists", "The specified pool already exists")
            }
            try db.run(
                """
                INSERT INTO pool (id, display_name, vm_size, state, allocation_state, target_dedicated_nodes,
                    target_low_priority_nodes, task_slots_per_node, node_fill_type, resize_timeout_ms, start_task,
                    metadata, spec, e_tag, creation_time, last_modified, state_transition_time, allocation_state_transition_time)
                VALUES (?, ?, ?, 'active', 'resizing', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [spec.id, spec.displayName, vmSize, dedicated, lowPriority, slots, fill, resizeTimeout,
                 startTask.map(encodeJSON), encodeJSON(spec.metadata ?? []), encodeJSON(extra), Engine.newETag(),
                 now, now, now, now])
            let pk = db.lastInsertRowID
            try record(db, "pool.created", pool: spec.id, to: "active", now: now)
            try addNodes(db, poolPK: pk, poolID: spec.id, dedicated: dedicated, lowPriority: lowPriority, now: now)
            return pk
        }
        wake()
        return try pool(pk: pk)
    }

    func addNodes(_ db: Connection, poolPK: Int64, poolID: String, dedicated: Int, lowPriority: Int, now: String) throws {
        for index in 0..<(dedicated + lowPriority) {
            let isDedicated = index < dedicated
            let id = "tvmps_" + String(format: "%016llx", UInt64.random(in: 0...UInt64.max)) + (isDedicated ? "_d" : "_p")
            let root = (nodesDirectory as NSString).appendingPathComponent(id)
            try db.run(
                """
                INSERT INTO node (id, pool_pk, is_dedicated, state, scheduling_state, root_dir, ip_address, e_tag,
                    allocation_time, state_transition_time)
                VALUES (?, ?, ?, 'creating', 'enabled', ?, '127.0.0.1', ?, ?, ?)
                """, [id, poolPK, isDedicated, root, Engine.newETag(), now, now])
            try assignNodeProvider(db, nodePK: db.lastInsertRowID, poolPK: poolPK)
            try record(db, "node.created", pool: poolID, node: id, to: "creating", now: now)
        }
    }

    /// The pool with this id (case-insensitive).
    public func pool(id: String) throws -> Pool {
        guard let pk = try db.scalar("SELECT pk FROM pool WHERE id = ? COLLATE NOCASE AND deleted_time IS NULL", [id]).int64 else {
            throw BookendError.notFound("PoolNotFound", "The pool \(id)")
        }
        return try pool(pk: pk)
    }

    /// Every pool, ordered by id.
    public func pools() throws -> [Pool] {
        try db.query("SELECT pk FROM pool WHERE deleted_time IS NULL ORDER BY id").compactMap { try pool(pk: $0[0].int64 ?? 0) }
    }

    func pool(pk: Int64) throws -> Pool {
        guard let row = try db.query(
            """
            SELECT p.*, (SELECT count(*) FROM node n WHERE n.pool_pk = p.pk AND n.removed_time IS NULL AND n.is_dedicated = 1) AS dedicated,
                (SELECT count(*) FROM node n WHERE n.pool_pk = p.pk AND n.removed_time IS NULL AND n.is_dedicated = 0) AS low
            FROM pool p WHERE p.pk = ?
            """, [pk]).first
        else { throw BookendError.notFound("PoolNotFound", "The pool") }
        let extra = decodeJSON([String: JSONValue].self, row["spec"].string) ?? [:]
        let metadata = decodeJSON([MetadataItem].self, row["metadata"].string) ?? []
        return Pool(
            id: row["id"].string ?? "", displayName: row["display_name"].string, eTag: row["e_tag"].string ?? "",
            lastModified: row["last_modified"].string ?? "", creationTime: row["creation_time"].string ?? "",
            state: try row.state(PoolState.self, table: "pool"), stateTransitionTime: row["state_transition_time"].string ?? "",
            allocationState: try row.state(AllocationState.self, "allocation_state", table: "pool"),
            allocationStateTransitionTime: row["allocation_state_transition_time"].string ?? "",
            vmSize: row["vm_size"].string ?? "", virtualMachineConfiguration: extra["virtualMachineConfiguration"],
            resizeTimeout: ISODuration.format(row["resize_timeout_ms"].int64),
            currentDedicatedNodes: row["dedicated"].int ?? 0, currentLowPriorityNodes: row["low"].int ?? 0,
            targetDedicatedNodes: row["target_dedicated_nodes"].int ?? 0,
            targetLowPriorityNodes: row["target_low_priority_nodes"].int ?? 0, enableAutoScale: false,
            enableInterNodeCommunication: extra["enableInterNodeCommunication"] == .bool(true),
            startTask: decodeJSON(StartTask.self, row["start_task"].string),
            taskSlotsPerNode: row["task_slots_per_node"].int ?? 1,
            taskSchedulingPolicy: TaskSchedulingPolicy(nodeFillType: row["node_fill_type"].string ?? "spread"),
            metadata: metadata.isEmpty ? nil : metadata)
    }

    /// Changes a pool's node count. Shrinking removes idle nodes first, then applies `nodeDeallocationOption`.
    public func resizePool(
        id: String, targetDedicatedNodes: Int?, targetLowPriorityNodes: Int? = nil, nodeDeallocationOption: String? = nil
    ) throws {
        // Validated, then not acted on: a node leaving its pool always requeues its running tasks.
        _ = try Validate.oneOf(nodeDeallocationOption, NodeRebootOption.allCases.map(\.rawValue), property: "nodeDeallocationOption")
        let now = Engine.now()
        try transaction { db in
            let poolRow = try livePool(db, id)
            let state = try poolRow.state(PoolState.self, table: "pool")
            let allocation = try poolRow.state(AllocationState.self, "allocation_state", table: "pool")
            // The machines answer PoolBeingDeleted / PoolBeingResized before the counts are checked.
            _ = try PoolMachine.next(from: state, on: .resize)
            _ = try AllocationMachine.next(from: allocation, on: .resize)
            let pk = try poolRow.int64("pk", table: "pool")
            let dedicated = targetDedicatedNodes ?? poolRow["target_dedicated_nodes"].int ?? 0
            let lowPriority = targetLowPriorityNodes ?? poolRow["target_low_priority_nodes"].int ?? 0
            try Validate.nodeCounts(dedicated: dedicated, lowPriority: lowPriority)
            try PoolStore.resize(db, pk: pk, id: poolRow.text("id", table: "pool"), state: state, from: allocation, dedicated: dedicated,
                lowPriority: lowPriority, now: now, log: &pendingEvents)
            for (flag, target) in [(1, dedicated), (0, lowPriority)] {
                let nodes = try db.query(
                    """
                    SELECT n.pk, n.id, (SELECT count(*) FROM execution e WHERE e.node_pk = n.pk AND e.state <> 'completed') AS busy
                    FROM node n WHERE n.pool_pk = ? AND n.is_dedicated = ? AND n.removed_time IS NULL AND n.state <> 'leavingpool'
                    ORDER BY busy, n.pk DESC
                    """, [pk, flag])
                if nodes.count < target {
                    try addNodes(db, poolPK: pk, poolID: poolRow["id"].string ?? "", dedicated: flag == 1 ? target - nodes.count : 0,
                        lowPriority: flag == 0 ? target - nodes.count : 0, now: now)
                } else {
                    for node in nodes.prefix(nodes.count - target) {
                        try NodeStore.transition(db, pk: node.int64("pk", table: "node"), on: .leave, now: now, log: &pendingEvents)
                    }
                }
            }
        }
        wake()
    }

    /// Starts deleting a pool: its nodes leave (running tasks are requeued) and then the pool is gone.
    public func deletePool(id: String) throws {
        let now = Engine.now()
        try transaction { db in
            let poolRow = try livePool(db, id)
            let state = try poolRow.state(PoolState.self, table: "pool")
            guard try PoolMachine.next(from: state, on: .delete) != state else { return }
            let pk = try poolRow.int64("pk", table: "pool")
            try PoolStore.delete(db, pk: pk, id: poolRow.text("id", table: "pool"), from: state, now: now, log: &pendingEvents)
            for node in try db.query("SELECT pk FROM node WHERE pool_pk = ? AND removed_time IS NULL AND state <> ?",
                [pk, NodeState.leavingpool.rawValue]) {
                try NodeStore.transition(db, pk: node.int64("pk", table: "node"), on: .leave, now: now, log: &pendingEvents)
            }
        }
        wake()
    }

    func livePool(_ db: Connection, _ id: String) throws -> Row {
        guard let row = try db.query("SELECT * FROM pool WHERE id = ? COLLATE NOCASE AND deleted_time IS NULL", [id]).first else {
            throw BookendError.notFound("PoolNotFound", "The pool \(id)")
        }
        return row
    }

    /// The nodes of a pool.
    public func nodes(poolID: String) throws -> [Node] {
        let pool = try livePool(db, poolID)
        return try db.query("SELECT pk FROM node WHERE pool_pk = ? AND removed_time IS NULL ORDER BY pk", [pool["pk"]])
            .map { try node(pk: $0[0].int64 ?? 0) }
    }

    /// One node of a pool.
    public func node(poolID: String, nodeID: String) throws -> Node {
        let pool = try livePool(db, poolID)
        guard let pk = try db.scalar("SELECT pk FROM node WHERE pool_pk = ? AND id = ? AND removed_time IS NULL", [pool["pk"], nodeID]).int64 else {
            throw BookendError.notFound("NodeNotFound", "The node \(nodeID)")
        }
        return try node(pk: pk)
    }

    func node(pk: Int64) throws -> Node {
        guard let row = try db.query(
            """
            SELECT n.*, p.id AS pool_id, p.vm_size, p.start_task,
                (SELECT count(*) FROM task t WHERE t.node_pk = n.pk AND t.state IN ('preparing', 'running')) AS running_tasks,
                (SELECT coalesce(sum(t.required_slots), 0) FROM task t WHERE t.node_pk = n.pk AND t.state IN ('preparing', 'running')) AS running_slots
            FROM node n JOIN pool p ON p.pk = n.pool_pk WHERE n.pk = ?
            """, [pk]).first
        else { throw BookendError.notFound("NodeNotFound", "The node") }
        var startTaskInfo: StartTaskInfo?
        if let start = try db.query(
            "SELECT * FROM execution WHERE node_pk = ? AND kind = 'start' ORDER BY pk DESC LIMIT 1", [pk]).first {
            let completed = try start.state(ExecutionState.self, table: "execution") == .completed && start["interrupted"].int != 1
            startTaskInfo = StartTaskInfo(
                state: completed ? "completed" : "running", startTime: start["start_time"].string ?? "",
                endTime: completed ? start["end_time"].string : nil, exitCode: completed ? start["exit_code"].int : nil,
                failureInfo: completed ? decodeJSON(FailureInfo.self, start["failure_info"].string) : nil,
                retryCount: start["retry_count"].int ?? 0,
                lastRetryTime: (start["retry_count"].int ?? 0) > 0 ? start["start_time"].string : nil,
                result: completed ? start["result"].string : nil)
        }
        let id = row["id"].string ?? ""
        var node = Node(
            id: id, poolId: row["pool_id"].string ?? "", state: try row.state(NodeState.self, table: "node"),
            schedulingState: row["scheduling_state"].string ?? "", stateTransitionTime: row["state_transition_time"].string ?? "",
            lastBootTime: row["last_boot_time"].string, allocationTime: row["allocation_time"].string ?? "",
            ipAddress: row["ip_address"].string ?? "", affinityId: "TVM:\(id)", vmSize: row["vm_size"].string ?? "",
            totalTasksRun: row["total_tasks_run"].int ?? 0, totalTasksSucceeded: row["total_tasks_succeeded"].int ?? 0,
            runningTasksCount: row["running_tasks"].int ?? 0, runningTaskSlotsCount: row["running_slots"].int ?? 0,
            isDedicated: row["is_dedicated"].int == 1, startTask: decodeJSON(StartTask.self, row["start_task"].string),
            startTaskInfo: startTaskInfo, rootDirectory: row["root_dir"].string ?? "")
        node.errors = nodeProviderErrors(provider: row["provider"].string, nodePK: pk)
        return node
    }

    /// Reboots a node: its processes end (per `nodeRebootOption`), it boots again, its start task reruns,
    /// and job preparation reruns there per `rerunOnNodeRebootAfterSuccess`.
    public func rebootNode(poolID: String, nodeID: String, nodeRebootOption: String? = nil) throws {
        let option = try Validate.oneOf(nodeRebootOption, NodeRebootOption.allCases.map(\.rawValue), property: "nodeRebootOption")
            .flatMap(NodeRebootOption.init(rawValue:)) ?? .requeue
        let now = Engine.now()
        try transaction { db in
            let pool = try livePool(db, poolID)
            guard let row = try db.query("SELECT pk, state FROM node WHERE pool_pk = ? AND id = ? AND removed_time IS NULL", [pool["pk"], nodeID]).first else {
                throw BookendError.notFound("NodeNotFound", "The node \(nodeID)")
            }
            // The machine answers NodeBeingRebooted, NodeBeingCreated, NodeBeingStarted or
            // OperationInvalidForCurrentState for a node that cannot reboot now.
            try NodeStore.transition(db, pk: row.int64("pk", table: "node"), on: .reboot, rebootOption: option, now: now, log: &pendingEvents)
        }
        wake()
    }

}
