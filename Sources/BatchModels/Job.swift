// Jobs as on the wire: the entity, its bodies, preparation and release tasks and their per-node record, task counts.

/// Where a job's tasks run (`poolInfo`).
public struct BatchPoolInfo: Codable, Sendable, Hashable {
    public var poolId: String?
    public var autoPoolSpecification: OpaqueJSONObject?

    public init(poolId: String? = nil, autoPoolSpecification: OpaqueJSONObject? = nil) {
        self.poolId = poolId
        self.autoPoolSpecification = autoPoolSpecification
    }
}

/// Limits of a job (`constraints`).
public struct BatchJobConstraints: Codable, Sendable, Hashable {
    public var maxWallClockTime: String?
    public var maxTaskRetryCount: Int?

    public init(maxWallClockTime: String? = nil, maxTaskRetryCount: Int? = nil) {
        self.maxWallClockTime = maxWallClockTime
        self.maxTaskRetryCount = maxTaskRetryCount
    }
}

/// A task created with the job and run before its other tasks (`jobManagerTask`).
public struct BatchJobManagerTask: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var commandLine: String
    public var resourceFiles: [ResourceFile]?
    public var outputFiles: OpaqueJSONArray?
    public var environmentSettings: [EnvironmentSetting]?
    public var constraints: BatchTaskConstraints?
    public var requiredSlots: Int?
    public var killJobOnCompletion: Bool?
    public var userIdentity: UserIdentity?
    public var runExclusive: Bool?
    public var applicationPackageReferences: OpaqueJSONArray?
    public var allowLowPriorityNode: Bool?
    public var containerSettings: OpaqueJSONObject?

    public init(
        id: String,
        displayName: String? = nil,
        commandLine: String,
        resourceFiles: [ResourceFile]? = nil,
        outputFiles: OpaqueJSONArray? = nil,
        environmentSettings: [EnvironmentSetting]? = nil,
        constraints: BatchTaskConstraints? = nil,
        requiredSlots: Int? = nil,
        killJobOnCompletion: Bool? = nil,
        userIdentity: UserIdentity? = nil,
        runExclusive: Bool? = nil,
        applicationPackageReferences: OpaqueJSONArray? = nil,
        allowLowPriorityNode: Bool? = nil,
        containerSettings: OpaqueJSONObject? = nil
    ) {
        self.id = id
        self.displayName = displayName
        self.commandLine = commandLine
        self.resourceFiles = resourceFiles
        self.outputFiles = outputFiles
        self.environmentSettings = environmentSettings
        self.constraints = constraints
        self.requiredSlots = requiredSlots
        self.killJobOnCompletion = killJobOnCompletion
        self.userIdentity = userIdentity
        self.runExclusive = runExclusive
        self.applicationPackageReferences = applicationPackageReferences
        self.allowLowPriorityNode = allowLowPriorityNode
        self.containerSettings = containerSettings
    }
}

/// The task that runs on a node before any of the job's tasks there (`jobPreparationTask`).
public struct BatchJobPreparationTask: Codable, Sendable, Hashable {
    public var id: String?
    public var commandLine: String
    public var containerSettings: OpaqueJSONObject?
    public var resourceFiles: [ResourceFile]?
    public var environmentSettings: [EnvironmentSetting]?
    public var constraints: BatchTaskConstraints?
    public var waitForSuccess: Bool?
    public var userIdentity: UserIdentity?
    public var rerunOnNodeRebootAfterSuccess: Bool?

    public init(
        id: String? = nil,
        commandLine: String,
        containerSettings: OpaqueJSONObject? = nil,
        resourceFiles: [ResourceFile]? = nil,
        environmentSettings: [EnvironmentSetting]? = nil,
        constraints: BatchTaskConstraints? = nil,
        waitForSuccess: Bool? = nil,
        userIdentity: UserIdentity? = nil,
        rerunOnNodeRebootAfterSuccess: Bool? = nil
    ) {
        self.id = id
        self.commandLine = commandLine
        self.containerSettings = containerSettings
        self.resourceFiles = resourceFiles
        self.environmentSettings = environmentSettings
        self.constraints = constraints
        self.waitForSuccess = waitForSuccess
        self.userIdentity = userIdentity
        self.rerunOnNodeRebootAfterSuccess = rerunOnNodeRebootAfterSuccess
    }
}

/// The task that runs on every prepared node when the job ends (`jobReleaseTask`).
public struct BatchJobReleaseTask: Codable, Sendable, Hashable {
    public var id: String?
    public var commandLine: String
    public var containerSettings: OpaqueJSONObject?
    public var resourceFiles: [ResourceFile]?
    public var environmentSettings: [EnvironmentSetting]?
    public var maxWallClockTime: String?
    public var retentionTime: String?
    public var userIdentity: UserIdentity?

    public init(
        id: String? = nil,
        commandLine: String,
        containerSettings: OpaqueJSONObject? = nil,
        resourceFiles: [ResourceFile]? = nil,
        environmentSettings: [EnvironmentSetting]? = nil,
        maxWallClockTime: String? = nil,
        retentionTime: String? = nil,
        userIdentity: UserIdentity? = nil
    ) {
        self.id = id
        self.commandLine = commandLine
        self.containerSettings = containerSettings
        self.resourceFiles = resourceFiles
        self.environmentSettings = environmentSettings
        self.maxWallClockTime = maxWallClockTime
        self.retentionTime = retentionTime
        self.userIdentity = userIdentity
    }
}

/// Why a job cannot schedule (`executionInfo.schedulingError`). Azure's schema names it apart from a
/// task's `failureInfo` but gives it the same properties, so one type serves both.
public typealias BatchJobSchedulingError = BatchTaskFailureInfo

/// When a job ran and how it ended (`executionInfo`).
public struct BatchJobExecutionInfo: Codable, Sendable, Hashable {
    public var startTime: String?
    public var endTime: String?
    public var poolId: String?
    public var schedulingError: BatchJobSchedulingError?
    public var terminateReason: String?

    public init(
        startTime: String? = nil,
        endTime: String? = nil,
        poolId: String? = nil,
        schedulingError: BatchJobSchedulingError? = nil,
        terminateReason: String? = nil
    ) {
        self.startTime = startTime
        self.endTime = endTime
        self.poolId = poolId
        self.schedulingError = schedulingError
        self.terminateReason = terminateReason
    }
}

/// Bookend's extension: a node where the job preparation task failed for good.
public struct BookendFailedPreparation: Codable, Sendable, Hashable {
    public var nodeId: String
    public var exitCode: Int?
    public var failureInfo: BatchTaskFailureInfo?
    public var stderrTail: String?

    public init(nodeId: String, exitCode: Int? = nil, failureInfo: BatchTaskFailureInfo? = nil, stderrTail: String? = nil) {
        self.nodeId = nodeId
        self.exitCode = exitCode
        self.failureInfo = failureInfo
        self.stderrTail = stderrTail
    }
}

/// Bookend's extension `bookendWaitReason` on a job or task GET: why its work has not started.
public struct BookendWaitReason: Codable, Sendable, Hashable {
    public var state: BookendWaitState
    public var code: String?
    public var message: String?
    public var failedPreparations: [BookendFailedPreparation]?
    public var dependencyId: String?

    public init(
        state: BookendWaitState,
        code: String? = nil,
        message: String? = nil,
        failedPreparations: [BookendFailedPreparation]? = nil,
        dependencyId: String? = nil
    ) {
        self.state = state
        self.code = code
        self.message = message
        self.failedPreparations = failedPreparations
        self.dependencyId = dependencyId
    }
}

/// A job (`GET /jobs/{jobId}`).
public struct BatchJob: Codable, Sendable, Hashable {
    public var odataMetadata: String?
    public var id: String
    public var displayName: String?
    public var usesTaskDependencies: Bool?
    public var url: String?
    public var eTag: String?
    public var lastModified: String?
    public var creationTime: String?
    public var state: BatchJobState?
    public var stateTransitionTime: String?
    public var previousState: BatchJobState?
    public var previousStateTransitionTime: String?
    public var priority: Int?
    public var allowTaskPreemption: Bool?
    public var maxParallelTasks: Int?
    public var constraints: BatchJobConstraints?
    public var jobManagerTask: BatchJobManagerTask?
    public var jobPreparationTask: BatchJobPreparationTask?
    public var jobReleaseTask: BatchJobReleaseTask?
    public var commonEnvironmentSettings: [EnvironmentSetting]?
    public var poolInfo: BatchPoolInfo?
    public var onAllTasksComplete: OnAllBatchTasksComplete?
    public var onTaskFailure: OnBatchTaskFailure?
    public var networkConfiguration: OpaqueJSON?
    public var metadata: [MetadataItem]?
    public var executionInfo: BatchJobExecutionInfo?
    public var stats: OpaqueJSON?
    public var bookendWaitReason: BookendWaitReason?

    enum CodingKeys: String, CodingKey {
        case odataMetadata = "odata.metadata"
        case id
        case displayName
        case usesTaskDependencies
        case url
        case eTag
        case lastModified
        case creationTime
        case state
        case stateTransitionTime
        case previousState
        case previousStateTransitionTime
        case priority
        case allowTaskPreemption
        case maxParallelTasks
        case constraints
        case jobManagerTask
        case jobPreparationTask
        case jobReleaseTask
        case commonEnvironmentSettings
        case poolInfo
        case onAllTasksComplete
        case onTaskFailure
        case networkConfiguration
        case metadata
        case executionInfo
        case stats
        case bookendWaitReason
    }

    /// An entity as the service answers with it. The service sets the other properties by name
    /// (each is optional on the wire); a client reads them.
    public init(id: String) {
        self.id = id
    }
}

/// The body of `POST /jobs`.
public struct BatchJobCreateOptions: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var usesTaskDependencies: Bool?
    public var priority: Int?
    public var allowTaskPreemption: Bool?
    public var maxParallelTasks: Int?
    public var constraints: BatchJobConstraints?
    public var jobManagerTask: BatchJobManagerTask?
    public var jobPreparationTask: BatchJobPreparationTask?
    public var jobReleaseTask: BatchJobReleaseTask?
    public var commonEnvironmentSettings: [EnvironmentSetting]?
    public var poolInfo: BatchPoolInfo
    public var onAllTasksComplete: OnAllBatchTasksComplete?
    public var onTaskFailure: OnBatchTaskFailure?
    public var networkConfiguration: OpaqueJSONObject?
    public var metadata: [MetadataItem]?

    public init(
        id: String,
        displayName: String? = nil,
        usesTaskDependencies: Bool? = nil,
        priority: Int? = nil,
        allowTaskPreemption: Bool? = nil,
        maxParallelTasks: Int? = nil,
        constraints: BatchJobConstraints? = nil,
        jobManagerTask: BatchJobManagerTask? = nil,
        jobPreparationTask: BatchJobPreparationTask? = nil,
        jobReleaseTask: BatchJobReleaseTask? = nil,
        commonEnvironmentSettings: [EnvironmentSetting]? = nil,
        poolInfo: BatchPoolInfo,
        onAllTasksComplete: OnAllBatchTasksComplete? = nil,
        onTaskFailure: OnBatchTaskFailure? = nil,
        networkConfiguration: OpaqueJSONObject? = nil,
        metadata: [MetadataItem]? = nil
    ) {
        self.id = id
        self.displayName = displayName
        self.usesTaskDependencies = usesTaskDependencies
        self.priority = priority
        self.allowTaskPreemption = allowTaskPreemption
        self.maxParallelTasks = maxParallelTasks
        self.constraints = constraints
        self.jobManagerTask = jobManagerTask
        self.jobPreparationTask = jobPreparationTask
        self.jobReleaseTask = jobReleaseTask
        self.commonEnvironmentSettings = commonEnvironmentSettings
        self.poolInfo = poolInfo
        self.onAllTasksComplete = onAllTasksComplete
        self.onTaskFailure = onTaskFailure
        self.networkConfiguration = networkConfiguration
        self.metadata = metadata
    }
}

/// The body of `PATCH /jobs/{jobId}`: only the properties sent change.
public struct BatchJobUpdateOptions: Codable, Sendable, Hashable {
    public var priority: Int?
    public var allowTaskPreemption: Bool?
    public var maxParallelTasks: Int?
    public var constraints: BatchJobConstraints?
    public var poolInfo: BatchPoolInfo?
    public var onAllTasksComplete: OnAllBatchTasksComplete?
    public var metadata: [MetadataItem]?

    // This order (the first four as the library's `JobUpdate` had them) keeps its callers compiling.
    public init(
        priority: Int? = nil,
        maxParallelTasks: Int? = nil,
        onAllTasksComplete: OnAllBatchTasksComplete? = nil,
        constraints: BatchJobConstraints? = nil,
        allowTaskPreemption: Bool? = nil,
        poolInfo: BatchPoolInfo? = nil,
        metadata: [MetadataItem]? = nil
    ) {
        self.priority = priority
        self.allowTaskPreemption = allowTaskPreemption
        self.maxParallelTasks = maxParallelTasks
        self.constraints = constraints
        self.poolInfo = poolInfo
        self.onAllTasksComplete = onAllTasksComplete
        self.metadata = metadata
    }
}

/// The body of `PUT /jobs/{jobId}`: every property Bookend keeps is replaced, and one not sent
/// returns to its default. `poolInfo` is required.
public struct BatchJobReplaceOptions: Codable, Sendable, Hashable {
    public var poolInfo: BatchPoolInfo
    public var priority: Int?
    public var allowTaskPreemption: Bool?
    public var maxParallelTasks: Int?
    public var constraints: BatchJobConstraints?
    public var onAllTasksComplete: OnAllBatchTasksComplete?
    public var metadata: [MetadataItem]?

    public init(
        poolInfo: BatchPoolInfo,
        priority: Int? = nil,
        allowTaskPreemption: Bool? = nil,
        maxParallelTasks: Int? = nil,
        constraints: BatchJobConstraints? = nil,
        onAllTasksComplete: OnAllBatchTasksComplete? = nil,
        metadata: [MetadataItem]? = nil
    ) {
        self.poolInfo = poolInfo
        self.priority = priority
        self.allowTaskPreemption = allowTaskPreemption
        self.maxParallelTasks = maxParallelTasks
        self.constraints = constraints
        self.onAllTasksComplete = onAllTasksComplete
        self.metadata = metadata
    }
}

/// The body of `POST /jobs/{jobId}/terminate`.
public struct BatchJobTerminateOptions: Codable, Sendable, Hashable {
    public var terminateReason: String?

    public init(terminateReason: String? = nil) {
        self.terminateReason = terminateReason
    }
}

/// The body of `POST /jobs/{jobId}/disable`.
public struct BatchJobDisableOptions: Codable, Sendable, Hashable {
    public var disableTasks: DisableBatchJobOption

    public init(disableTasks: DisableBatchJobOption) {
        self.disableTasks = disableTasks
    }
}

/// The job preparation task on one node (`jobPreparationTaskExecutionInfo`).
public struct BatchJobPreparationTaskExecutionInfo: Codable, Sendable, Hashable {
    public var startTime: String?
    public var endTime: String?
    public var state: BatchJobPreparationTaskState
    public var taskRootDirectory: String?
    public var taskRootDirectoryUrl: String?
    public var exitCode: Int?
    public var containerInfo: OpaqueJSON?
    public var failureInfo: BatchTaskFailureInfo?
    public var retryCount: Int?
    public var lastRetryTime: String?
    public var result: BatchTaskExecutionResult?

    public init(
        startTime: String? = nil,
        endTime: String? = nil,
        state: BatchJobPreparationTaskState,
        taskRootDirectory: String? = nil,
        taskRootDirectoryUrl: String? = nil,
        exitCode: Int? = nil,
        containerInfo: OpaqueJSON? = nil,
        failureInfo: BatchTaskFailureInfo? = nil,
        retryCount: Int? = nil,
        lastRetryTime: String? = nil,
        result: BatchTaskExecutionResult? = nil
    ) {
        self.startTime = startTime
        self.endTime = endTime
        self.state = state
        self.taskRootDirectory = taskRootDirectory
        self.taskRootDirectoryUrl = taskRootDirectoryUrl
        self.exitCode = exitCode
        self.containerInfo = containerInfo
        self.failureInfo = failureInfo
        self.retryCount = retryCount
        self.lastRetryTime = lastRetryTime
        self.result = result
    }
}

/// The job release task on one node (`jobReleaseTaskExecutionInfo`).
public struct BatchJobReleaseTaskExecutionInfo: Codable, Sendable, Hashable {
    public var startTime: String?
    public var endTime: String?
    public var state: BatchJobReleaseTaskState
    public var taskRootDirectory: String?
    public var taskRootDirectoryUrl: String?
    public var exitCode: Int?
    public var containerInfo: OpaqueJSON?
    public var failureInfo: BatchTaskFailureInfo?
    public var result: BatchTaskExecutionResult?

    public init(
        startTime: String? = nil,
        endTime: String? = nil,
        state: BatchJobReleaseTaskState,
        taskRootDirectory: String? = nil,
        taskRootDirectoryUrl: String? = nil,
        exitCode: Int? = nil,
        containerInfo: OpaqueJSON? = nil,
        failureInfo: BatchTaskFailureInfo? = nil,
        result: BatchTaskExecutionResult? = nil
    ) {
        self.startTime = startTime
        self.endTime = endTime
        self.state = state
        self.taskRootDirectory = taskRootDirectory
        self.taskRootDirectoryUrl = taskRootDirectoryUrl
        self.exitCode = exitCode
        self.containerInfo = containerInfo
        self.failureInfo = failureInfo
        self.result = result
    }
}

/// One node's job preparation and release record (`GET /jobs/{jobId}/jobpreparationandreleasetaskstatus` item).
public struct BatchJobPreparationAndReleaseTaskStatus: Codable, Sendable, Hashable {
    public var poolId: String?
    public var nodeId: String
    public var nodeUrl: String?
    public var jobPreparationTaskExecutionInfo: BatchJobPreparationTaskExecutionInfo?
    public var jobReleaseTaskExecutionInfo: BatchJobReleaseTaskExecutionInfo?

    public init(
        poolId: String? = nil,
        nodeId: String,
        nodeUrl: String? = nil,
        jobPreparationTaskExecutionInfo: BatchJobPreparationTaskExecutionInfo? = nil,
        jobReleaseTaskExecutionInfo: BatchJobReleaseTaskExecutionInfo? = nil
    ) {
        self.poolId = poolId
        self.nodeId = nodeId
        self.nodeUrl = nodeUrl
        self.jobPreparationTaskExecutionInfo = jobPreparationTaskExecutionInfo
        self.jobReleaseTaskExecutionInfo = jobReleaseTaskExecutionInfo
    }
}

/// Tasks (or their slots) by state.
public struct BatchTaskCounts: Codable, Sendable, Hashable {
    public var active: Int
    public var running: Int
    public var completed: Int
    public var succeeded: Int
    public var failed: Int

    public init(active: Int, running: Int, completed: Int, succeeded: Int, failed: Int) {
        self.active = active
        self.running = running
        self.completed = completed
        self.succeeded = succeeded
        self.failed = failed
    }
}

/// The answer of `GET /jobs/{jobId}/taskcounts`.
public struct BatchTaskCountsResult: Codable, Sendable, Hashable {
    public var odataMetadata: String?
    public var taskCounts: BatchTaskCounts
    public var taskSlotCounts: BatchTaskCounts?

    enum CodingKeys: String, CodingKey {
        case odataMetadata = "odata.metadata"
        case taskCounts
        case taskSlotCounts
    }

    public init(odataMetadata: String? = nil, taskCounts: BatchTaskCounts, taskSlotCounts: BatchTaskCounts? = nil) {
        self.odataMetadata = odataMetadata
        self.taskCounts = taskCounts
        self.taskSlotCounts = taskSlotCounts
    }
}
