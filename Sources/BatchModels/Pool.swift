// Pools as on the wire: the entity, the create and resize bodies, and the start task.

/// The task every node of a pool runs when it boots (`startTask`).
public struct BatchStartTask: Codable, Sendable, Hashable {
    public var commandLine: String
    public var resourceFiles: [ResourceFile]?
    public var environmentSettings: [EnvironmentSetting]?
    public var userIdentity: UserIdentity?
    public var maxTaskRetryCount: Int?
    public var waitForSuccess: Bool?
    public var containerSettings: OpaqueJSONObject?

    public init(
        commandLine: String,
        resourceFiles: [ResourceFile]? = nil,
        environmentSettings: [EnvironmentSetting]? = nil,
        userIdentity: UserIdentity? = nil,
        maxTaskRetryCount: Int? = nil,
        waitForSuccess: Bool? = nil,
        containerSettings: OpaqueJSONObject? = nil
    ) {
        self.commandLine = commandLine
        self.resourceFiles = resourceFiles
        self.environmentSettings = environmentSettings
        self.userIdentity = userIdentity
        self.maxTaskRetryCount = maxTaskRetryCount
        self.waitForSuccess = waitForSuccess
        self.containerSettings = containerSettings
    }
}

/// Why a resize did not reach its target (`resizeErrors`).
public struct BatchPoolResizeError: Codable, Sendable, Hashable {
    public var code: String?
    public var message: String?
    public var values: [NameValuePair]?

    public init(code: String? = nil, message: String? = nil, values: [NameValuePair]? = nil) {
        self.code = code
        self.message = message
        self.values = values
    }
}

/// A pool (`GET /pools/{poolId}`).
public struct BatchPool: Codable, Sendable, Hashable {
    public var odataMetadata: String?
    public var id: String
    public var displayName: String?
    public var url: String?
    public var eTag: String?
    public var lastModified: String?
    public var creationTime: String?
    public var state: BatchPoolState?
    public var stateTransitionTime: String?
    public var allocationState: AllocationState?
    public var allocationStateTransitionTime: String?
    public var vmSize: String?
    public var virtualMachineConfiguration: OpaqueJSON?
    public var resizeTimeout: String?
    public var resizeErrors: [BatchPoolResizeError]?
    public var currentDedicatedNodes: Int?
    public var currentLowPriorityNodes: Int?
    public var targetDedicatedNodes: Int?
    public var targetLowPriorityNodes: Int?
    public var enableAutoScale: Bool?
    public var enableInterNodeCommunication: Bool?
    public var startTask: BatchStartTask?
    public var taskSlotsPerNode: Int?
    public var taskSchedulingPolicy: BatchTaskSchedulingPolicy?
    public var metadata: [MetadataItem]?
    public var stats: OpaqueJSON?

    enum CodingKeys: String, CodingKey {
        case odataMetadata = "odata.metadata"
        case id
        case displayName
        case url
        case eTag
        case lastModified
        case creationTime
        case state
        case stateTransitionTime
        case allocationState
        case allocationStateTransitionTime
        case vmSize
        case virtualMachineConfiguration
        case resizeTimeout
        case resizeErrors
        case currentDedicatedNodes
        case currentLowPriorityNodes
        case targetDedicatedNodes
        case targetLowPriorityNodes
        case enableAutoScale
        case enableInterNodeCommunication
        case startTask
        case taskSlotsPerNode
        case taskSchedulingPolicy
        case metadata
        case stats
    }

    /// An entity as the service answers with it. The service sets the other properties by name
    /// (each is optional on the wire); a client reads them.
    public init(id: String) {
        self.id = id
    }
}

/// The body of `POST /pools`.
public struct BatchPoolCreateOptions: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var vmSize: String?
    public var virtualMachineConfiguration: OpaqueJSON?
    public var resizeTimeout: String?
    public var targetDedicatedNodes: Int?
    public var targetLowPriorityNodes: Int?
    public var enableAutoScale: Bool?
    public var enableInterNodeCommunication: Bool?
    public var startTask: BatchStartTask?
    public var taskSlotsPerNode: Int?
    public var taskSchedulingPolicy: BatchTaskSchedulingPolicy?
    public var metadata: [MetadataItem]?

    public init(
        id: String,
        displayName: String? = nil,
        vmSize: String? = nil,
        virtualMachineConfiguration: OpaqueJSON? = nil,
        resizeTimeout: String? = nil,
        targetDedicatedNodes: Int? = nil,
        targetLowPriorityNodes: Int? = nil,
        enableAutoScale: Bool? = nil,
        enableInterNodeCommunication: Bool? = nil,
        startTask: BatchStartTask? = nil,
        taskSlotsPerNode: Int? = nil,
        taskSchedulingPolicy: BatchTaskSchedulingPolicy? = nil,
        metadata: [MetadataItem]? = nil
    ) {
        self.id = id
        self.displayName = displayName
        self.vmSize = vmSize
        self.virtualMachineConfiguration = virtualMachineConfiguration
        self.resizeTimeout = resizeTimeout
        self.targetDedicatedNodes = targetDedicatedNodes
        self.targetLowPriorityNodes = targetLowPriorityNodes
        self.enableAutoScale = enableAutoScale
        self.enableInterNodeCommunication = enableInterNodeCommunication
        self.startTask = startTask
        self.taskSlotsPerNode = taskSlotsPerNode
        self.taskSchedulingPolicy = taskSchedulingPolicy
        self.metadata = metadata
    }
}

/// The body of `POST /pools/{poolId}/resize`.
/// `POST /pools/{id}/removenodes`: the nodes to take out of the pool, and what happens to their work.
public struct BatchNodeRemoveOptions: Codable, Sendable, Hashable {
    public var nodeList: [String]
    public var resizeTimeout: String?
    public var nodeDeallocationOption: BatchNodeDeallocationOption?

    public init(nodeList: [String], resizeTimeout: String? = nil, nodeDeallocationOption: BatchNodeDeallocationOption? = nil) {
        self.nodeList = nodeList
        self.resizeTimeout = resizeTimeout
        self.nodeDeallocationOption = nodeDeallocationOption
    }
}

public struct BatchPoolResizeOptions: Codable, Sendable, Hashable {
    public var targetDedicatedNodes: Int?
    public var targetLowPriorityNodes: Int?
    public var resizeTimeout: String?
    public var nodeDeallocationOption: BatchNodeDeallocationOption?

    public init(
        targetDedicatedNodes: Int? = nil,
        targetLowPriorityNodes: Int? = nil,
        resizeTimeout: String? = nil,
        nodeDeallocationOption: BatchNodeDeallocationOption? = nil
    ) {
        self.targetDedicatedNodes = targetDedicatedNodes
        self.targetLowPriorityNodes = targetLowPriorityNodes
        self.resizeTimeout = resizeTimeout
        self.nodeDeallocationOption = nodeDeallocationOption
    }
}

/// The body of `PATCH /pools/{poolId}`: only the properties sent change.
/// The body of `POST /pools/{id}/updateproperties`: replaces what it names, all of it (a start task
/// left out is removed). `applicationPackageReferences` and `metadata` are required, as in Batch;
/// Bookend installs no certificates or application packages and does not act on them, as on create.
public struct BatchPoolReplaceOptions: Codable, Sendable, Hashable {
    public var startTask: BatchStartTask?
    /// Required by older API versions, gone from newer ones (certificates are retired).
    public var certificateReferences: [OpaqueJSON]?
    public var applicationPackageReferences: [OpaqueJSON]
    public var metadata: [MetadataItem]

    public init(startTask: BatchStartTask? = nil, certificateReferences: [OpaqueJSON]? = nil, applicationPackageReferences: [OpaqueJSON] = [],
                metadata: [MetadataItem] = []) {
        self.startTask = startTask
        self.certificateReferences = certificateReferences
        self.applicationPackageReferences = applicationPackageReferences
        self.metadata = metadata
    }
}

public struct BatchPoolUpdateOptions: Codable, Sendable, Hashable {
    public var startTask: BatchStartTask?
    public var metadata: [MetadataItem]?

    public init(startTask: BatchStartTask? = nil, metadata: [MetadataItem]? = nil) {
        self.startTask = startTask
        self.metadata = metadata
    }
}
