// What users get back: the Azure Batch entity shapes with the wire's property names. URLs are left
// to the daemon, which knows the endpoint the client used.

/// Why an execution failed (`failureInfo`).
public struct FailureInfo: Codable, Sendable, Hashable {
    /// `usererror` or `servererror`.
    public var category: String
    public var code: String
    public var message: String?
    public var details: [NameValuePair]?
    public init(category: String = "usererror", code: String, message: String?, details: [NameValuePair]? = nil) {
        self.category = category
        self.code = code
        self.message = message
        self.details = details
    }
}

/// A job's scheduling error: Azure gives it the same `{category, code, message, details}` as a
/// task's `failureInfo`, and the engine stores and builds both the same way.
public typealias SchedulingError = FailureInfo

public struct Pool: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var eTag: String
    public var lastModified: String
    public var creationTime: String
    public var state: PoolState
    public var stateTransitionTime: String
    public var allocationState: AllocationState
    public var allocationStateTransitionTime: String
    public var vmSize: String
    public var virtualMachineConfiguration: JSONValue?
    public var resizeTimeout: String
    public var currentDedicatedNodes: Int
    public var currentLowPriorityNodes: Int
    public var targetDedicatedNodes: Int
    public var targetLowPriorityNodes: Int
    public var enableAutoScale: Bool
    public var enableInterNodeCommunication: Bool
    public var startTask: StartTask?
    public var taskSlotsPerNode: Int
    public var taskSchedulingPolicy: TaskSchedulingPolicy
    public var metadata: [MetadataItem]?
}

public struct StartTaskInfo: Codable, Sendable, Hashable {
    public var state: String
    public var startTime: String
    public var endTime: String?
    public var exitCode: Int?
    public var failureInfo: FailureInfo?
    public var retryCount: Int
    public var lastRetryTime: String?
    public var result: String?
}

public struct Node: Codable, Sendable, Hashable {
    public var id: String
    /// Not on Azure's node object; Bookend adds it because a node id alone does not name its pool.
    public var poolId: String
    public var state: NodeState
    public var schedulingState: String
    public var stateTransitionTime: String
    public var lastBootTime: String?
    public var allocationTime: String
    public var ipAddress: String
    public var affinityId: String
    public var vmSize: String
    public var totalTasksRun: Int
    public var totalTasksSucceeded: Int
    public var runningTasksCount: Int
    public var runningTaskSlotsCount: Int
    public var isDedicated: Bool
    public var startTask: StartTask?
    public var startTaskInfo: StartTaskInfo?
    /// The node's root directory on this machine (`AZ_BATCH_NODE_ROOT_DIR`). Bookend addition.
    public var rootDirectory: String
    /// What is wrong with the node now (Azure's `errors`), e.g. `SlurmUnavailable` while the Slurm
    /// cluster its allocation lives on does not answer. nil when nothing is.
    public var errors: [NodeError]? = nil
}

/// Something wrong with a node (Azure's `BatchNodeError`).
public struct NodeError: Codable, Sendable, Hashable {
    public var code: String
    public var message: String
}

public struct JobExecutionInfo: Codable, Sendable, Hashable {
    public var startTime: String
    public var endTime: String?
    public var poolId: String
    public var schedulingError: SchedulingError?
    public var terminateReason: String?
}

public struct Job: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var usesTaskDependencies: Bool
    public var eTag: String
    public var lastModified: String
    public var creationTime: String
    public var state: JobState
    public var stateTransitionTime: String
    public var previousState: JobState?
    public var previousStateTransitionTime: String?
    public var priority: Int
    public var allowTaskPreemption: Bool
    public var maxParallelTasks: Int
    public var constraints: JobConstraints
    public var jobManagerTask: JobManagerTask?
    public var jobPreparationTask: JobPreparationTask?
    public var jobReleaseTask: JobReleaseTask?
    public var commonEnvironmentSettings: [EnvironmentSetting]?
    public var poolInfo: PoolInfo
    public var onAllTasksComplete: String
    public var onTaskFailure: String
    public var networkConfiguration: JSONValue?
    public var metadata: [MetadataItem]?
    public var executionInfo: JobExecutionInfo
}

public struct TaskExecutionInfo: Codable, Sendable, Hashable {
    public var startTime: String?
    public var endTime: String?
    public var exitCode: Int?
    public var failureInfo: FailureInfo?
    public var retryCount: Int
    public var lastRetryTime: String?
    public var requeueCount: Int
    public var lastRequeueTime: String?
    public var result: String?
}

public struct TaskNodeInfo: Codable, Sendable, Hashable {
    public var affinityId: String
    public var poolId: String
    public var nodeId: String
    public var taskRootDirectory: String
}

public struct JobTask: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var eTag: String
    public var lastModified: String
    public var creationTime: String
    public var exitConditions: ExitConditions?
    public var state: TaskState
    public var stateTransitionTime: String
    public var previousState: TaskState?
    public var previousStateTransitionTime: String?
    public var commandLine: String
    public var containerSettings: JSONValue?
    public var resourceFiles: [ResourceFile]?
    public var outputFiles: JSONValue?
    public var environmentSettings: [EnvironmentSetting]?
    public var affinityInfo: AffinityInfo?
    public var constraints: TaskConstraints
    public var requiredSlots: Int
    public var userIdentity: UserIdentity
    public var executionInfo: TaskExecutionInfo
    public var nodeInfo: TaskNodeInfo?
    public var dependsOn: TaskDependencies?
    public var applicationPackageReferences: JSONValue?
}

public struct PreparationTaskExecutionInfo: Codable, Sendable, Hashable {
    public var startTime: String
    public var endTime: String?
    public var state: PreparationState
    public var taskRootDirectory: String
    public var exitCode: Int?
    public var failureInfo: FailureInfo?
    public var retryCount: Int
    public var lastRetryTime: String?
    public var result: String?
}

public struct ReleaseTaskExecutionInfo: Codable, Sendable, Hashable {
    public var startTime: String
    public var endTime: String?
    public var state: ReleaseState
    public var taskRootDirectory: String
    public var exitCode: Int?
    public var failureInfo: FailureInfo?
    public var result: String?
}

/// One node's preparation and release record for a job.
public struct PrepReleaseStatus: Codable, Sendable, Hashable {
    public var poolId: String
    public var nodeId: String
    public var jobPreparationTaskExecutionInfo: PreparationTaskExecutionInfo
    public var jobReleaseTaskExecutionInfo: ReleaseTaskExecutionInfo?
}

public struct TaskCountsByState: Codable, Sendable, Hashable {
    public var active: Int
    public var running: Int
    public var completed: Int
    public var succeeded: Int
    public var failed: Int
}

public struct TaskCounts: Codable, Sendable, Hashable {
    public var taskCounts: TaskCountsByState
    public var taskSlotCounts: TaskCountsByState
}

/// The outcome of adding one task in a batch (`addtaskcollection` result item).
public struct TaskAddResult: Codable, Sendable, Hashable {
    /// `success`, `clienterror` or `servererror`.
    public var status: String
    public var taskId: String
    public var eTag: String?
    public var lastModified: String?
    public var error: BookendError?
}

extension BookendError: Codable {
    enum CodingKeys: String, CodingKey { case kind, code, message, values }
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            Kind(rawValue: try container.decodeIfPresent(String.self, forKey: .kind) ?? "") ?? .invalidRequest,
            try container.decode(String.self, forKey: .code), try container.decode(String.self, forKey: .message),
            details: try container.decodeIfPresent([Detail].self, forKey: .values) ?? [])
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encode(message, forKey: .message)
        if !details.isEmpty { try container.encode(details, forKey: .values) }
    }
}

/// Something that happened in the engine, for callers awaiting progress (`Engine.events`).
public struct EngineEvent: Sendable, Hashable {
    public var kind: String
    public var poolId: String?
    public var nodeId: String?
    public var jobId: String?
    public var taskId: String?
    public var state: String?
    /// The event row's `detail` (JSON), e.g. `{"result":"success"}` for `task.completed`.
    public var detail: String? = nil
}
