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
        let startTask = try spec.startTask.map(Engine.normalizedStartTask)
        var extra: [String: JSONValue] = [:]
        extra["virtualMachineConfiguration"] = spec.virtualMachineConfiguration
        if spec.enableInterNodeCommunication == true { extra["enableInterNodeCommunication"] = .bool(true) }
        let now = Engine.now()
        let pk: Int64 = try transaction { db in
            if try db.scalar("SELECT 1 FROM pool WHERE id = ? COLLATE NOCASE AND deleted_time IS NULL", [spec.id]) != .null {
                throw BookendError.conflict("PoolExists", "The specified pool already exists")
            }
            let pk = try PoolStore.insert(db, NewPool(
                id: spec.id, displayName: spec.displayName, vmSize: vmSize, targetDedicatedNodes: dedicated,
                targetLowPriorityNodes: lowPriority, taskSlotsPerNode: slots, nodeFillType: fill, resizeTimeoutMS: resizeTimeout,
                startTask: startTask.map(encodeJSON), metadata: encodeJSON(spec.metadata ?? []), spec: encodeJSON(extra)),
                now: now, log: &pendingEvents)
            try addNodes(db, poolPK: pk, poolID: spec.id, dedicated: dedicated, lowPriority: lowPriority, now: now)
            return pk
        }
        wake()
        return try pool(pk: pk)
    }

    /// A start task as stored: validated, with its defaults (no retries, wait for success, the
    /// pool's non-admin auto-user) written out. Creating and updating a pool share it.
    static func normalizedStartTask(_ task: StartTask) throws -> StartTask {
        var normalized = task
        try Validate.process("startTask", commandLine: task.commandLine, environment: task.environmentSettings,
            resourceFiles: task.resourceFiles)
        try Validate.retryCount(task.maxTaskRetryCount, property: "startTask.maxTaskRetryCount")
        normalized.userIdentity = try Validate.userIdentity(task.userIdentity, property: "startTask.userIdentity")
        normalized.maxTaskRetryCount = task.maxTaskRetryCount ?? 0
        normalized.waitForSuccess = task.waitForSuccess ?? true
        return normalized
    }

    func addNodes(_ db: Connection, poolPK: Int64, poolID: String, dedicated: Int, lowPriority: Int, now: String) throws {
        for index in 0..<(dedicated + lowPriority) {
            let isDedicated = index < dedicated
            let id = "tvmps_" + UInt64.random(in: 0...UInt64.max).hex16() + (isDedicated ? "_d" : "_p")
            let root = (nodesDirectory as NSString).appendingPathComponent(id)
            let nodePK = try NodeStore.insert(db, id: id, poolPK: poolPK, poolID: poolID, isDedicated: isDedicated, rootDirectory: root, now: now,
                log: &pendingEvents)
            try assignNodeProvider(db, nodePK: nodePK, poolPK: poolPK)
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
        // One statement for the list, rows built as a single pool's are.
        try db.query(Engine.poolSelect + " WHERE p.deleted_time IS NULL ORDER BY p.id").map(Engine.pool)
    }

    func pool(pk: Int64) throws -> Pool {
        guard let row = try db.query(Engine.poolSelect + " WHERE p.pk = ?", [pk]).first else {
            throw BookendError.notFound("PoolNotFound", "The pool")
        }
        return try Engine.pool(row)
    }

    /// The columns `pool(_:)` reads: a pool row with its live node counts.
    static let poolSelect = """
        SELECT p.*, (SELECT count(*) FROM node n WHERE n.pool_pk = p.pk AND n.removed_time IS NULL AND n.is_dedicated = 1) AS dedicated,
            (SELECT count(*) FROM node n WHERE n.pool_pk = p.pk AND n.removed_time IS NULL AND n.is_dedicated = 0) AS low
        FROM pool p
        """

    /// The pool entity of a `poolSelect` row.
    static func pool(_ row: Row) throws -> Pool {
        let extra = try row.json([String: JSONValue].self, "spec", table: "pool") ?? [:]
        let metadata = try row.json([MetadataItem].self, "metadata", table: "pool") ?? []
        return Pool(
            id: try row.text("id", table: "pool"), displayName: row["display_name"].string, eTag: try row.text("e_tag", table: "pool"),
            lastModified: try row.text("last_modified", table: "pool"), creationTime: try row.text("creation_time", table: "pool"),
            state: try row.state(PoolState.self, table: "pool"), stateTransitionTime: try row.text("state_transition_time", table: "pool"),
            allocationState: try row.state(AllocationState.self, "allocation_state", table: "pool"),
            allocationStateTransitionTime: try row.text("allocation_state_transition_time", table: "pool"),
            vmSize: try row.text("vm_size", table: "pool"), virtualMachineConfiguration: extra["virtualMachineConfiguration"],
            resizeTimeout: ISODuration.format(row["resize_timeout_ms"].int64),
            currentDedicatedNodes: try row.int("dedicated", table: "pool"), currentLowPriorityNodes: try row.int("low", table: "pool"),
            targetDedicatedNodes: try row.int("target_dedicated_nodes", table: "pool"),
            targetLowPriorityNodes: try row.int("target_low_priority_nodes", table: "pool"), enableAutoScale: false,
            enableInterNodeCommunication: extra["enableInterNodeCommunication"] == .bool(true),
            startTask: try row.json(StartTask.self, "start_task", table: "pool"),
            taskSlotsPerNode: row["task_slots_per_node"].int ?? 1,
            taskSchedulingPolicy: TaskSchedulingPolicy(nodeFillType: row["node_fill_type"].string ?? "spread"),
            metadata: metadata.isEmpty ? nil : metadata)
    }

    /// Changes a pool's node count. Shrinking removes idle nodes first, then applies `nodeDeallocationOption`.
    public func resizePool(
        id: String, targetDedicatedNodes: Int?, targetLowPriorityNodes: Int? = nil, nodeDeallocationOption: String? = nil
    ) throws {
        let deallocation = try Engine.nodeOption(nodeDeallocationOption, property: "nodeDeallocationOption")
        let now = Engine.now()
        try transaction { db in
            let (poolRow, pk, state, allocation) = try resizablePool(db, id)
            let dedicated = try targetDedicatedNodes ?? poolRow.int("target_dedicated_nodes", table: "pool")
            let lowPriority = try targetLowPriorityNodes ?? poolRow.int("target_low_priority_nodes", table: "pool")
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
                    try addNodes(db, poolPK: pk, poolID: poolRow.text("id", table: "pool"), dedicated: flag == 1 ? target - nodes.count : 0,
                        lowPriority: flag == 0 ? target - nodes.count : 0, now: now)
                } else {
                    for node in nodes.prefix(nodes.count - target) {
                        try NodeStore.transition(db, pk: node.int64("pk", table: "node"), on: .leave, deallocation: deallocation, now: now, log: &pendingEvents)
                    }
                }
            }
        }
        wake()
    }

    /// A `nodeRebootOption` or `nodeDeallocationOption` (the same four values: what a node that reboots
    /// or leaves does to its running work), `requeue` when absent.
    static func nodeOption(_ text: String?, property: String) throws -> NodeRebootOption {
        try Validate.oneOf(text, NodeRebootOption.allCases.map(\.rawValue), property: property).flatMap(NodeRebootOption.init(rawValue:)) ?? .requeue
    }

    /// A live pool that may change its node count now: the machines answer PoolBeingDeleted or
    /// PoolBeingResized before anything else is checked.
    private func resizablePool(_ db: Connection, _ id: String) throws -> (row: Row, pk: Int64, state: PoolState, allocation: AllocationState) {
        let row = try livePool(db, id)
        let state = try row.state(PoolState.self, table: "pool")
        let allocation = try row.state(AllocationState.self, "allocation_state", table: "pool")
        _ = try PoolMachine.next(from: state, on: .resize)
        _ = try AllocationMachine.next(from: allocation, on: .resize)
        return (row, try row.int64("pk", table: "pool"), state, allocation)
    }

    /// Takes the named nodes out of their pool (`POST …/removenodes`): the pool's targets drop by as many
    /// and it is `resizing` until they have left; each applies `nodeDeallocationOption` (default
    /// requeue) to its running work, as a resize's nodes do. At most 100 nodes per call, as on Azure.
    public func removeNodes(poolID: String, nodeIDs: [String], nodeDeallocationOption: String? = nil) throws {
        let deallocation = try Engine.nodeOption(nodeDeallocationOption, property: "nodeDeallocationOption")
        guard (1...100).contains(nodeIDs.count) else {
            throw BookendError.invalidProperty("nodeList", "\(nodeIDs.count) nodes", "names between 1 and 100 nodes")
        }
        let now = Engine.now()
        try transaction { db in
            let (_, pk, state, allocation) = try resizablePool(db, poolID)
            var leaving: [(pk: Int64, dedicated: Bool)] = []
            for id in nodeIDs {
                guard let node = try db.query("SELECT pk, is_dedicated FROM node WHERE pool_pk = ? AND id = ? AND removed_time IS NULL", [pk, id]).first else {
                    throw BookendError.notFound("NodeNotFound", "The node \(id)")
                }
                let nodePK = try node.int64("pk", table: "node")
                if !leaving.contains(where: { $0.pk == nodePK }) { leaving.append((nodePK, try node.int64("is_dedicated", table: "node") == 1)) }
            }
            func staying(_ dedicated: Bool) throws -> Int {
                try db.scalar("SELECT count(*) FROM node WHERE pool_pk = ? AND is_dedicated = ? AND removed_time IS NULL AND state <> 'leavingpool'",
                    [pk, dedicated ? 1 : 0]).int ?? 0
            }
            let dedicated = try staying(true) - leaving.filter(\.dedicated).count
            let lowPriority = try staying(false) - leaving.filter { !$0.dedicated }.count
            try PoolStore.resize(db, pk: pk, id: poolID, state: state, from: allocation, dedicated: max(dedicated, 0),
                lowPriority: max(lowPriority, 0), now: now, log: &pendingEvents)
            // A node already leaving answers NodeLeavingPool (the node machine), and nothing of this call is kept.
            for node in leaving {
                try NodeStore.transition(db, pk: node.pk, on: .leave, deallocation: deallocation, now: now, log: &pendingEvents)
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
            // Nodes already leaving with taskcompletion (or retaineddata) would hold the deletion until
            // their work ended on its own, hours maybe: a pool's deletion requeues it (spec §4.4).
            try NodeStore.requeueWhileLeaving(db, poolPK: pk)
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
            .map { try node(pk: $0.int64("pk", table: "node")) }
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
                \(Engine.usedSlotsOfNode) AS running_slots
            FROM node n JOIN pool p ON p.pk = n.pool_pk WHERE n.pk = ?
            """, [pk]).first
        else { throw BookendError.notFound("NodeNotFound", "The node") }
        var startTaskInfo: StartTaskInfo?
        if let start = try db.query(
            "SELECT * FROM execution WHERE node_pk = ? AND kind = 'start' ORDER BY pk DESC LIMIT 1", [pk]).first {
            let completed = try start.state(ExecutionState.self, table: "execution") == .completed && start["interrupted"].int != 1
            startTaskInfo = StartTaskInfo(
                state: completed ? "completed" : "running", startTime: try start.text("start_time", table: "execution"),
                endTime: completed ? start["end_time"].string : nil, exitCode: completed ? start["exit_code"].int : nil,
                failureInfo: completed ? (try start.json(FailureInfo.self, "failure_info", table: "execution")) : nil,
                retryCount: try start.int("retry_count", table: "execution"),
                lastRetryTime: (try start.int("retry_count", table: "execution")) > 0 ? start["start_time"].string : nil,
                result: completed ? start["result"].string : nil)
        }
        let id = try row.text("id", table: "node")
        var node = Node(
            id: id, poolId: try row.text("pool_id", table: "node"), state: try row.state(NodeState.self, table: "node"),
            schedulingState: try row.text("scheduling_state", table: "node"), stateTransitionTime: try row.text("state_transition_time", table: "node"),
            lastBootTime: row["last_boot_time"].string, allocationTime: try row.text("allocation_time", table: "node"),
            ipAddress: try row.text("ip_address", table: "node"), affinityId: "TVM:\(id)", vmSize: try row.text("vm_size", table: "node"),
            totalTasksRun: try row.int("total_tasks_run", table: "node"), totalTasksSucceeded: try row.int("total_tasks_succeeded", table: "node"),
            runningTasksCount: try row.int("running_tasks", table: "node"), runningTaskSlotsCount: try row.int("running_slots", table: "node"),
            isDedicated: row["is_dedicated"].int == 1, startTask: try row.json(StartTask.self, "start_task", table: "node"),
            startTaskInfo: startTaskInfo, rootDirectory: try row.text("root_dir", table: "node"))
        node.errors = nodeProviderErrors(provider: row["provider"].string, nodePK: pk)
        return node
    }

    /// Reboots a node: its processes end (per `nodeRebootOption`), it boots again, its start task reruns,
    /// and job preparation reruns there per `rerunOnNodeRebootAfterSuccess`.
    public func rebootNode(poolID: String, nodeID: String, nodeRebootOption: String? = nil) throws {
        let option = try Engine.nodeOption(nodeRebootOption, property: "nodeRebootOption")
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
