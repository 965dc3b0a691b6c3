import BatchModels
import Bookend

// Request bodies → the engine's create and update shapes. Controllers decode a body into its
// BatchModels type once (the decoder checks every property's type, naming it), and these are the
// only place a wire body becomes an engine value. PATCH bodies need none: the engine's `PoolUpdate`
// and `JobUpdate` are the wire's `BatchPoolUpdateOptions` and `BatchJobUpdateOptions`. The engine validates values (ids, ranges, enum
// values it does not know) the same way for the daemon and for a program embedding the library.

extension PoolSpec {
    init(_ options: BatchPoolCreateOptions) throws {
        // Without autoscale a pool says how many nodes it wants (§4: at least one of the two counts),
        // as Batch requires; zero is a valid answer.
        if options.enableAutoScale != true, options.targetDedicatedNodes == nil, options.targetLowPriorityNodes == nil {
            throw BookendError(.invalidRequest, "MissingRequiredProperty",
                "The property targetDedicatedNodes (or targetLowPriorityNodes) is required when enableAutoScale is false",
                details: [.init(key: "PropertyName", value: "targetDedicatedNodes")])
        }
        self.init(id: options.id, vmSize: options.vmSize, targetDedicatedNodes: options.targetDedicatedNodes,
            taskSlotsPerNode: options.taskSlotsPerNode, startTask: options.startTask)
        displayName = options.displayName
        virtualMachineConfiguration = options.virtualMachineConfiguration
        resizeTimeout = options.resizeTimeout
        targetLowPriorityNodes = options.targetLowPriorityNodes
        enableAutoScale = options.enableAutoScale
        enableInterNodeCommunication = options.enableInterNodeCommunication
        metadata = options.metadata
        if let policy = options.taskSchedulingPolicy {
            // The engine's policy always names its fill type; the wire's may leave it out.
            guard let fill = policy.nodeFillType else {
                throw BookendError(.invalidRequest, "MissingRequiredProperty", "The property taskSchedulingPolicy.nodeFillType is required",
                    details: [.init(key: "PropertyName", value: "taskSchedulingPolicy.nodeFillType")])
            }
            taskSchedulingPolicy = TaskSchedulingPolicy(nodeFillType: fill.rawValue)
        }
    }
}

extension JobSpec {
    init(_ options: BatchJobCreateOptions) {
        self.init(id: options.id, poolID: options.poolInfo.poolId ?? "", jobPreparationTask: options.jobPreparationTask,
            jobReleaseTask: options.jobReleaseTask, priority: options.priority, onAllTasksComplete: options.onAllTasksComplete?.rawValue)
        // As sent: the engine refuses a missing poolId and an auto pool, naming them.
        poolInfo = options.poolInfo
        displayName = options.displayName
        usesTaskDependencies = options.usesTaskDependencies
        allowTaskPreemption = options.allowTaskPreemption
        maxParallelTasks = options.maxParallelTasks
        constraints = options.constraints
        jobManagerTask = options.jobManagerTask
        commonEnvironmentSettings = options.commonEnvironmentSettings
        onTaskFailure = options.onTaskFailure?.rawValue
        networkConfiguration = options.networkConfiguration.map(JSONValue.object)
        metadata = options.metadata
    }
}

extension JobUpdate {
    /// PUT: what was not sent returns to its default; the pool changes only if another is named.
    /// (PATCH decodes a `JobUpdate`, the wire's `BatchJobUpdateOptions`, directly.)
    init(_ options: BatchJobReplaceOptions, current: Job) {
        self.init(priority: options.priority ?? 0, maxParallelTasks: options.maxParallelTasks ?? -1,
            onAllTasksComplete: options.onAllTasksComplete ?? .noAction, constraints: options.constraints ?? JobConstraints())
        allowTaskPreemption = options.allowTaskPreemption ?? false
        metadata = options.metadata ?? []
        if options.poolInfo.poolId?.lowercased() != current.poolInfo.poolId?.lowercased() || options.poolInfo.autoPoolSpecification != nil {
            poolInfo = options.poolInfo
        }
    }
}

extension TaskSpec {
    init(_ options: BatchTaskCreateOptions) {
        self.init(id: options.id, commandLine: options.commandLine, environmentSettings: options.environmentSettings,
            resourceFiles: options.resourceFiles, constraints: options.constraints, requiredSlots: options.requiredSlots,
            userIdentity: options.userIdentity, dependsOn: options.dependsOn, exitConditions: options.exitConditions)
        displayName = options.displayName
        containerSettings = options.containerSettings.map(JSONValue.object)
        outputFiles = options.outputFiles.map(JSONValue.array)
        affinityInfo = options.affinityInfo
        multiInstanceSettings = options.multiInstanceSettings.map(JSONValue.object)
        applicationPackageReferences = options.applicationPackageReferences.map(JSONValue.array)
    }
}
