// Tasks as on the wire: the entity, its create body and add-collection result, and node files.

/// How a task's latest execution went (`executionInfo`).
public struct BatchTaskExecutionInfo: Codable, Sendable, Hashable {
    public var startTime: String?
    public var endTime: String?
    public var exitCode: Int?
    public var containerInfo: OpaqueJSON?
    public var failureInfo: BatchTaskFailureInfo?
    public var retryCount: Int?
    public var lastRetryTime: String?
    public var requeueCount: Int?
    public var lastRequeueTime: String?
    public var result: BatchTaskExecutionResult?

    public init(
        startTime: String? = nil,
        endTime: String? = nil,
        exitCode: Int? = nil,
        containerInfo: OpaqueJSON? = nil,
        failureInfo: BatchTaskFailureInfo? = nil,
        retryCount: Int? = nil,
        lastRetryTime: String? = nil,
        requeueCount: Int? = nil,
        lastRequeueTime: String? = nil,
        result: BatchTaskExecutionResult? = nil
    ) {
        self.startTime = startTime
        self.endTime = endTime
        self.exitCode = exitCode
        self.containerInfo = containerInfo
        self.failureInfo = failureInfo
        self.retryCount = retryCount
        self.lastRetryTime = lastRetryTime
        self.requeueCount = requeueCount
        self.lastRequeueTime = lastRequeueTime
        self.result = result
    }
}

/// The node a task ran on (`nodeInfo`).
public struct BatchNodeInfo: Codable, Sendable, Hashable {
    public var affinityId: String?
    public var nodeUrl: String?
    public var poolId: String?
    public var nodeId: String?
    public var taskRootDirectory: String?
    public var taskRootDirectoryUrl: String?

    public init(
        affinityId: String? = nil,
        nodeUrl: String? = nil,
        poolId: String? = nil,
        nodeId: String? = nil,
        taskRootDirectory: String? = nil,
        taskRootDirectoryUrl: String? = nil
    ) {
        self.affinityId = affinityId
        self.nodeUrl = nodeUrl
        self.poolId = poolId
        self.nodeId = nodeId
        self.taskRootDirectory = taskRootDirectory
        self.taskRootDirectoryUrl = taskRootDirectoryUrl
    }
}

/// A task (`GET /jobs/{jobId}/tasks/{taskId}`).
public struct BatchTask: Codable, Sendable, Hashable {
    public var odataMetadata: String?
    public var id: String
    public var displayName: String?
    public var url: String?
    public var eTag: String?
    public var lastModified: String?
    public var creationTime: String?
    public var exitConditions: ExitConditions?
    public var state: BatchTaskState?
    public var stateTransitionTime: String?
    public var previousState: BatchTaskState?
    public var previousStateTransitionTime: String?
    public var commandLine: String?
    public var containerSettings: OpaqueJSON?
    public var resourceFiles: [ResourceFile]?
    public var outputFiles: OpaqueJSON?
    public var environmentSettings: [EnvironmentSetting]?
    public var affinityInfo: AffinityInfo?
    public var constraints: BatchTaskConstraints?
    public var requiredSlots: Int?
    public var userIdentity: UserIdentity?
    public var multiInstanceSettings: OpaqueJSON?
    public var executionInfo: BatchTaskExecutionInfo?
    public var nodeInfo: BatchNodeInfo?
    public var dependsOn: BatchTaskDependencies?
    public var applicationPackageReferences: OpaqueJSON?
    public var stats: OpaqueJSON?
    public var bookendWaitReason: BookendWaitReason?

    enum CodingKeys: String, CodingKey {
        case odataMetadata = "odata.metadata"
        case id
        case displayName
        case url
        case eTag
        case lastModified
        case creationTime
        case exitConditions
        case state
        case stateTransitionTime
        case previousState
        case previousStateTransitionTime
        case commandLine
        case containerSettings
        case resourceFiles
        case outputFiles
        case environmentSettings
        case affinityInfo
        case constraints
        case requiredSlots
        case userIdentity
        case multiInstanceSettings
        case executionInfo
        case nodeInfo
        case dependsOn
        case applicationPackageReferences
        case stats
        case bookendWaitReason
    }

    /// An entity as the service answers with it. The service sets the other properties by name
    /// (each is optional on the wire); a client reads them.
    public init(id: String) {
        self.id = id
    }
}

/// The body of `POST /jobs/{jobId}/tasks`, and an item of an add-task collection.
public struct BatchTaskCreateOptions: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var exitConditions: ExitConditions?
    public var commandLine: String
    public var containerSettings: OpaqueJSONObject?
    public var resourceFiles: [ResourceFile]?
    public var outputFiles: OpaqueJSONArray?
    public var environmentSettings: [EnvironmentSetting]?
    public var affinityInfo: AffinityInfo?
    public var constraints: BatchTaskConstraints?
    public var requiredSlots: Int?
    public var userIdentity: UserIdentity?
    public var multiInstanceSettings: OpaqueJSONObject?
    public var dependsOn: BatchTaskDependencies?
    public var applicationPackageReferences: OpaqueJSONArray?

    public init(
        id: String,
        displayName: String? = nil,
        exitConditions: ExitConditions? = nil,
        commandLine: String,
        containerSettings: OpaqueJSONObject? = nil,
        resourceFiles: [ResourceFile]? = nil,
        outputFiles: OpaqueJSONArray? = nil,
        environmentSettings: [EnvironmentSetting]? = nil,
        affinityInfo: AffinityInfo? = nil,
        constraints: BatchTaskConstraints? = nil,
        requiredSlots: Int? = nil,
        userIdentity: UserIdentity? = nil,
        multiInstanceSettings: OpaqueJSONObject? = nil,
        dependsOn: BatchTaskDependencies? = nil,
        applicationPackageReferences: OpaqueJSONArray? = nil
    ) {
        self.id = id
        self.displayName = displayName
        self.exitConditions = exitConditions
        self.commandLine = commandLine
        self.containerSettings = containerSettings
        self.resourceFiles = resourceFiles
        self.outputFiles = outputFiles
        self.environmentSettings = environmentSettings
        self.affinityInfo = affinityInfo
        self.constraints = constraints
        self.requiredSlots = requiredSlots
        self.userIdentity = userIdentity
        self.multiInstanceSettings = multiInstanceSettings
        self.dependsOn = dependsOn
        self.applicationPackageReferences = applicationPackageReferences
    }
}

/// The body of `PUT /jobs/{jobId}/tasks/{taskId}`: the task's constraints (absent: the defaults).
public struct BatchTaskUpdateOptions: Codable, Sendable, Hashable {
    public var constraints: BatchTaskConstraints?

    public init(constraints: BatchTaskConstraints? = nil) {
        self.constraints = constraints
    }
}

/// The body of `POST /jobs/{jobId}/addtaskcollection` (1 to 100 tasks).
public struct BatchTaskGroup: Codable, Sendable, Hashable {
    public var value: [BatchTaskCreateOptions]

    public init(value: [BatchTaskCreateOptions]) {
        self.value = value
    }
}

/// How adding one task of a collection went.
public struct BatchTaskAddResult: Codable, Sendable, Hashable {
    public var status: BatchTaskAddStatus
    public var taskId: String
    public var eTag: String?
    public var lastModified: String?
    public var location: String?
    public var error: BatchError?

    public init(
        status: BatchTaskAddStatus,
        taskId: String,
        eTag: String? = nil,
        lastModified: String? = nil,
        location: String? = nil,
        error: BatchError? = nil
    ) {
        self.status = status
        self.taskId = taskId
        self.eTag = eTag
        self.lastModified = lastModified
        self.location = location
        self.error = error
    }
}

/// The answer of `POST /jobs/{jobId}/addtaskcollection`.
public struct BatchTaskAddCollectionResult: Codable, Sendable, Hashable {
    public var odataMetadata: String?
    public var value: [BatchTaskAddResult]

    enum CodingKeys: String, CodingKey {
        case odataMetadata = "odata.metadata"
        case value
    }

    public init(odataMetadata: String? = nil, value: [BatchTaskAddResult]) {
        self.odataMetadata = odataMetadata
        self.value = value
    }
}

/// A file's size and times (`properties` of a node file; absent for folders).
public struct FileProperties: Codable, Sendable, Hashable {
    public var creationTime: String?
    public var lastModified: String?
    public var contentLength: String?
    public var contentType: String?
    public var fileMode: String?

    public init(
        creationTime: String? = nil,
        lastModified: String? = nil,
        contentLength: String? = nil,
        contentType: String? = nil,
        fileMode: String? = nil
    ) {
        self.creationTime = creationTime
        self.lastModified = lastModified
        self.contentLength = contentLength
        self.contentType = contentType
        self.fileMode = fileMode
    }
}

/// A file or folder of a task or node (`GET …/files` item).
public struct BatchNodeFile: Codable, Sendable, Hashable {
    public var name: String
    public var url: String?
    public var isDirectory: Bool?
    public var properties: FileProperties?

    public init(name: String, url: String? = nil, isDirectory: Bool? = nil, properties: FileProperties? = nil) {
        self.name = name
        self.url = url
        self.isDirectory = isDirectory
        self.properties = properties
    }
}
