import BatchModels
import Bookend

// Nodes: the engine's `Node` → `BatchNode`, with what Azure adds around the stored node, and the
// node counts of `GET /nodecounts`.

extension BatchStartTaskInfo {
    init(_ info: StartTaskInfo) {
        self.init(
            state: BatchStartTaskState(rawValue: info.state), startTime: info.startTime, endTime: info.endTime, exitCode: info.exitCode,
            failureInfo: info.failureInfo.map(BatchTaskFailureInfo.init), retryCount: info.retryCount, lastRetryTime: info.lastRetryTime,
            result: BatchTaskExecutionResult(info.result))
    }
}

extension BatchNode {
    /// The version a node's agent reports (`nodeAgentInfo.version`): Bookend's nodes have no agent
    /// apart from the daemon, so this names the level of the node API it serves.
    static let agentVersion = "1.0.0"

    /// The stored node with the pool's image reference (the 15.x SDK requires `virtualMachineInfo`),
    /// `nodeAgentInfo`, and `recentTasks` once the node ran a task. The engine's `poolId` and
    /// `rootDirectory` stay out: the pool is in the URL, and local paths are not part of the API.
    init(_ node: Node, pool: Pool, recentTasks: [NodeRecentTask], base: String) {
        self.init(id: node.id)
        url = Wire.nodeURL(base, node.poolId, node.id)
        state = BatchNodeState(rawValue: node.state.rawValue)
        schedulingState = SchedulingState(rawValue: node.schedulingState)
        stateTransitionTime = node.stateTransitionTime
        lastBootTime = node.lastBootTime
        allocationTime = node.allocationTime
        ipAddress = node.ipAddress
        affinityId = node.affinityId
        vmSize = node.vmSize
        totalTasksRun = node.totalTasksRun
        totalTasksSucceeded = node.totalTasksSucceeded
        runningTasksCount = node.runningTasksCount
        runningTaskSlotsCount = node.runningTaskSlotsCount
        isDedicated = node.isDedicated
        startTask = node.startTask
        startTaskInfo = node.startTaskInfo.map(BatchStartTaskInfo.init)
        errors = node.errors.map { $0.map { BatchNodeError(code: $0.code, message: $0.message) } }
        if !recentTasks.isEmpty {
            self.recentTasks = recentTasks.map { recent in
                BatchTaskInfo(
                    taskUrl: Wire.taskURL(base, recent.jobId, recent.task.id), jobId: recent.jobId, taskId: recent.task.id,
                    taskState: BatchTaskState(rawValue: recent.task.state.rawValue), executionInfo: BatchTaskExecutionInfo(recent.task.executionInfo))
            }
        }
        // The agent is installed when the node is allocated and never updated apart from the daemon.
        nodeAgentInfo = BatchNodeAgentInfo(version: BatchNode.agentVersion, lastUpdateTime: node.allocationTime)
        var imageReference: OpaqueJSON?
        if case .object(let configuration)? = pool.virtualMachineConfiguration { imageReference = configuration["imageReference"] }
        virtualMachineInfo = VirtualMachineInfo(imageReference: imageReference)
    }
}

extension BatchPoolNodeCounts {
    /// A pool's nodes counted by state, dedicated and low-priority apart.
    init(poolID: String, nodes: [Node]) {
        var dedicated = BatchNodeCounts()
        var lowPriority = BatchNodeCounts()
        for node in nodes {
            let state = BatchNodeState(rawValue: node.state.rawValue)
            if node.isDedicated { dedicated.add(state) } else { lowPriority.add(state) }
        }
        self.init(poolId: poolID, dedicated: dedicated, lowPriority: lowPriority)
    }
}
