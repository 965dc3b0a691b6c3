import BatchModels
import Bookend

// Pools: the engine's `Pool` → `BatchPool`, with the `url` only the daemon knows.

extension BatchStartTask {
    init(_ task: StartTask) {
        self.init(
            commandLine: task.commandLine, resourceFiles: task.resourceFiles?.map(BatchModels.ResourceFile.init),
            environmentSettings: task.environmentSettings,
            userIdentity: task.userIdentity.map(BatchModels.UserIdentity.init), maxTaskRetryCount: task.maxTaskRetryCount,
            waitForSuccess: task.waitForSuccess, containerSettings: OpaqueJSON(task.containerSettings))
    }
}

extension BatchPool {
    init(_ pool: Pool, base: String) {
        self.init(id: pool.id)
        displayName = pool.displayName
        url = Wire.poolURL(base, pool.id)
        eTag = pool.eTag
        lastModified = pool.lastModified
        creationTime = pool.creationTime
        state = BatchPoolState(rawValue: pool.state.rawValue)
        stateTransitionTime = pool.stateTransitionTime
        allocationState = BatchModels.AllocationState(rawValue: pool.allocationState.rawValue)
        allocationStateTransitionTime = pool.allocationStateTransitionTime
        vmSize = pool.vmSize
        virtualMachineConfiguration = OpaqueJSON(pool.virtualMachineConfiguration)
        resizeTimeout = pool.resizeTimeout
        currentDedicatedNodes = pool.currentDedicatedNodes
        currentLowPriorityNodes = pool.currentLowPriorityNodes
        targetDedicatedNodes = pool.targetDedicatedNodes
        targetLowPriorityNodes = pool.targetLowPriorityNodes
        enableAutoScale = pool.enableAutoScale
        enableInterNodeCommunication = pool.enableInterNodeCommunication
        startTask = pool.startTask.map(BatchStartTask.init)
        taskSlotsPerNode = pool.taskSlotsPerNode
        taskSchedulingPolicy = BatchTaskSchedulingPolicy(nodeFillType: BatchNodeFillType(rawValue: pool.taskSchedulingPolicy.nodeFillType))
        metadata = pool.metadata
    }
}
