// Compute nodes as on the wire.

/// How a node's start task went (`startTaskInfo`).
public struct BatchStartTaskInfo: Codable, Sendable, Hashable {
    public var state: BatchStartTaskState
    public var startTime: String?
    public var endTime: String?
    public var exitCode: Int?
    public var containerInfo: OpaqueJSON?
    public var failureInfo: BatchTaskFailureInfo?
    public var retryCount: Int?
    public var lastRetryTime: String?
    public var result: BatchTaskExecutionResult?

    public init(
        state: BatchStartTaskState,
        startTime: String? = nil,
        endTime: String? = nil,
        exitCode: Int? = nil,
        containerInfo: OpaqueJSON? = nil,
        failureInfo: BatchTaskFailureInfo? = nil,
        retryCount: Int? = nil,
        lastRetryTime: String? = nil,
        result: BatchTaskExecutionResult? = nil
    ) {
        self.state = state
        self.startTime = startTime
        self.endTime = endTime
        self.exitCode = exitCode
        self.containerInfo = containerInfo
        self.failureInfo = failureInfo
        self.retryCount = retryCount
        self.lastRetryTime = lastRetryTime
        self.result = result
    }
}

/// A task that ran on a node lately (`recentTasks`).
public struct BatchTaskInfo: Codable, Sendable, Hashable {
    public var taskUrl: String?
    public var jobId: String?
    public var taskId: String?
    public var subtaskId: Int?
    public var taskState: BatchTaskState?
    public var executionInfo: BatchTaskExecutionInfo?

    public init(
        taskUrl: String? = nil,
        jobId: String? = nil,
        taskId: String? = nil,
        subtaskId: Int? = nil,
        taskState: BatchTaskState? = nil,
        executionInfo: BatchTaskExecutionInfo? = nil
    ) {
        self.taskUrl = taskUrl
        self.jobId = jobId
        self.taskId = taskId
        self.subtaskId = subtaskId
        self.taskState = taskState
        self.executionInfo = executionInfo
    }
}

/// Something wrong with a node (`errors`).
public struct BatchNodeError: Codable, Sendable, Hashable {
    public var code: String?
    public var message: String?
    public var errorDetails: [NameValuePair]?

    public init(code: String? = nil, message: String? = nil, errorDetails: [NameValuePair]? = nil) {
        self.code = code
        self.message = message
        self.errorDetails = errorDetails
    }
}

/// The agent on a node (`nodeAgentInfo`).
public struct BatchNodeAgentInfo: Codable, Sendable, Hashable {
    public var version: String?
    public var lastUpdateTime: String?

    public init(version: String? = nil, lastUpdateTime: String? = nil) {
        self.version = version
        self.lastUpdateTime = lastUpdateTime
    }
}

/// The image a node runs (`virtualMachineInfo`): the pool's image reference.
public struct VirtualMachineInfo: Codable, Sendable, Hashable {
    public var imageReference: OpaqueJSON?
    public var scaleSetVmResourceId: String?

    public init(imageReference: OpaqueJSON? = nil, scaleSetVmResourceId: String? = nil) {
        self.imageReference = imageReference
        self.scaleSetVmResourceId = scaleSetVmResourceId
    }
}

/// A compute node of a pool (`GET /pools/{poolId}/nodes/{nodeId}`).
public struct BatchNode: Codable, Sendable, Hashable {
    public var odataMetadata: String?
    public var id: String
    public var url: String?
    public var state: BatchNodeState?
    public var schedulingState: SchedulingState?
    public var stateTransitionTime: String?
    public var lastBootTime: String?
    public var allocationTime: String?
    public var ipAddress: String?
    public var affinityId: String?
    public var vmSize: String?
    public var totalTasksRun: Int?
    public var totalTasksSucceeded: Int?
    public var runningTasksCount: Int?
    public var runningTaskSlotsCount: Int?
    public var isDedicated: Bool?
    public var startTask: BatchStartTask?
    public var startTaskInfo: BatchStartTaskInfo?
    public var recentTasks: [BatchTaskInfo]?
    public var errors: [BatchNodeError]?
    public var nodeAgentInfo: BatchNodeAgentInfo?
    public var virtualMachineInfo: VirtualMachineInfo?
    public var endpointConfiguration: OpaqueJSON?

    enum CodingKeys: String, CodingKey {
        case odataMetadata = "odata.metadata"
        case id
        case url
        case state
        case schedulingState
        case stateTransitionTime
        case lastBootTime
        case allocationTime
        case ipAddress
        case affinityId
        case vmSize
        case totalTasksRun
        case totalTasksSucceeded
        case runningTasksCount
        case runningTaskSlotsCount
        case isDedicated
        case startTask
        case startTaskInfo
        case recentTasks
        case errors
        case nodeAgentInfo
        case virtualMachineInfo
        case endpointConfiguration
    }

    /// An entity as the service answers with it. The service sets the other properties by name
    /// (each is optional on the wire); a client reads them.
    public init(id: String) {
        self.id = id
    }
}

/// The body of `POST /pools/{poolId}/nodes/{nodeId}/reboot`.
public struct BatchNodeRebootOptions: Codable, Sendable, Hashable {
    public var nodeRebootOption: BatchNodeRebootOption?

    public init(nodeRebootOption: BatchNodeRebootOption? = nil) {
        self.nodeRebootOption = nodeRebootOption
    }
}

/// How many nodes of a pool are in each state (`dedicated` or `lowPriority` of `GET /nodecounts`).
/// One property per `BatchNodeState`: `add` switches over the states, so a state added to the enum
/// does not compile until it has its count here.
public struct BatchNodeCounts: Codable, Sendable, Hashable {
    public var creating = 0
    public var idle = 0
    public var offline = 0
    public var preempted = 0
    public var rebooting = 0
    public var reimaging = 0
    public var running = 0
    public var starting = 0
    public var startTaskFailed = 0
    public var leavingPool = 0
    public var unknown = 0
    public var unusable = 0
    public var waitingForStartTask = 0
    public var deallocated = 0
    public var deallocating = 0
    public var upgradingOS = 0
    public var total = 0

    public init() {}

    /// Counts one node: in its state's property and in `total` (only there for a state this
    /// version does not know).
    public mutating func add(_ state: BatchNodeState) {
        total += 1
        switch state {
        case .creating: creating += 1
        case .idle: idle += 1
        case .offline: offline += 1
        case .preempted: preempted += 1
        case .rebooting: rebooting += 1
        case .reimaging: reimaging += 1
        case .running: running += 1
        case .starting: starting += 1
        case .startTaskFailed: startTaskFailed += 1
        case .leavingPool: leavingPool += 1
        case .unknown: unknown += 1
        case .unusable: unusable += 1
        case .waitingForStartTask: waitingForStartTask += 1
        case .deallocated: deallocated += 1
        case .deallocating: deallocating += 1
        case .upgradingOS: upgradingOS += 1
        case .unrecognized: break
        }
    }

    enum CodingKeys: String, CodingKey {
        case creating, idle, offline, preempted, rebooting, reimaging, running, starting, startTaskFailed, leavingPool, unknown
        case unusable, waitingForStartTask, deallocated, deallocating, upgradingOS, total
    }

    /// A count an older server does not send is zero.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func count(_ key: CodingKeys) throws -> Int { try container.decodeIfPresent(Int.self, forKey: key) ?? 0 }
        creating = try count(.creating)
        idle = try count(.idle)
        offline = try count(.offline)
        preempted = try count(.preempted)
        rebooting = try count(.rebooting)
        reimaging = try count(.reimaging)
        running = try count(.running)
        starting = try count(.starting)
        startTaskFailed = try count(.startTaskFailed)
        leavingPool = try count(.leavingPool)
        unknown = try count(.unknown)
        unusable = try count(.unusable)
        waitingForStartTask = try count(.waitingForStartTask)
        deallocated = try count(.deallocated)
        deallocating = try count(.deallocating)
        upgradingOS = try count(.upgradingOS)
        total = try count(.total)
    }
}

/// One pool's node counts (`GET /nodecounts` item).
public struct BatchPoolNodeCounts: Codable, Sendable, Hashable {
    public var poolId: String
    public var dedicated: BatchNodeCounts?
    public var lowPriority: BatchNodeCounts?

    public init(poolId: String, dedicated: BatchNodeCounts? = nil, lowPriority: BatchNodeCounts? = nil) {
        self.poolId = poolId
        self.dedicated = dedicated
        self.lowPriority = lowPriority
    }
}

/// The body of `POST /pools/{poolId}/nodes/{nodeId}/disablescheduling`.
public struct BatchNodeDisableSchedulingOptions: Codable, Sendable, Hashable {
    public var nodeDisableSchedulingOption: BatchNodeDisableSchedulingOption?

    public init(nodeDisableSchedulingOption: BatchNodeDisableSchedulingOption? = nil) {
        self.nodeDisableSchedulingOption = nodeDisableSchedulingOption
    }
}
