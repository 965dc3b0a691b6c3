import BatchModels
import Bookend

// Pools: the engine's `Pool` → `BatchPool`, with the `url` only the daemon knows.

extension BatchPool {
    init(_ pool: Pool, base: String) {
        self.init(id: pool.id)
        setVersion(from: pool)
        displayName = pool.displayName
        url = Wire.poolURL(base, pool.id)
        allocationState = BatchModels.AllocationState(rawValue: pool.allocationState.rawValue)
        allocationStateTransitionTime = pool.allocationStateTransitionTime
        vmSize = pool.vmSize
        virtualMachineConfiguration = pool.virtualMachineConfiguration
        resizeTimeout = pool.resizeTimeout
        currentDedicatedNodes = pool.currentDedicatedNodes
        currentLowPriorityNodes = pool.currentLowPriorityNodes
        targetDedicatedNodes = pool.targetDedicatedNodes
        targetLowPriorityNodes = pool.targetLowPriorityNodes
        enableAutoScale = pool.enableAutoScale
        enableInterNodeCommunication = pool.enableInterNodeCommunication
        startTask = pool.startTask
        taskSlotsPerNode = pool.taskSlotsPerNode
        taskSchedulingPolicy = BatchTaskSchedulingPolicy(nodeFillType: BatchNodeFillType(rawValue: pool.taskSchedulingPolicy.nodeFillType))
        metadata = pool.metadata
    }
}
