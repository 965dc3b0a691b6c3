// What users ask for: the Azure Batch create/update shapes, with the wire's property names, so the
// daemon decodes request bodies straight into these and the library takes the same values.
// Optional properties are optional here; defaults are applied by the engine (see `Defaults`).

// The sub-shapes the engine stores verbatim and that the wire declares identically are the wire's own
// (`BatchModels`), re-exported so that `import Bookend` alone still names and uses them; see
// docs/decisions.md ("Module boundaries"). Bookend's own declarations of a same-named wire type
// (`UserIdentity`, `ExitOptions`, `AllocationState`) shadow the wire's for code that imports only
// Bookend.
@_exported import BatchModels

/// Limits on one task execution (`constraints`); durations are ISO 8601 strings on the wire.
public typealias TaskConstraints = BatchTaskConstraints
/// An inclusive range of integer task ids (`dependsOn.taskIdRanges`).
public typealias TaskIDRange = BatchTaskIdRange
/// The tasks a task waits for (`dependsOn`).
public typealias TaskDependencies = BatchTaskDependencies

/// A file to place in an execution's working directory before its command runs.
public struct ResourceFile: Codable, Sendable, Hashable {
    public var httpUrl: String?
    public var storageContainerUrl: String?
    public var autoStorageContainerName: String?
    public var blobPrefix: String?
    public var filePath: String?
    public var fileMode: String?
    public init(
        httpUrl: String? = nil, storageContainerUrl: String? = nil, autoStorageContainerName: String? = nil,
        blobPrefix: String? = nil, filePath: String? = nil, fileMode: String? = nil
    ) {
        self.httpUrl = httpUrl
        self.storageContainerUrl = storageContainerUrl
        self.autoStorageContainerName = autoStorageContainerName
        self.blobPrefix = blobPrefix
        self.filePath = filePath
        self.fileMode = fileMode
    }
}

/// Who an execution runs as: exactly one of a named user or the automatic user.
public struct UserIdentity: Codable, Sendable, Hashable {
    public struct AutoUser: Codable, Sendable, Hashable {
        /// `task` or `pool` (default `pool`).
        public var scope: String?
        /// `nonadmin` (default) or `admin`.
        public var elevationLevel: String?
        public init(scope: String? = nil, elevationLevel: String? = nil) {
            self.scope = scope
            self.elevationLevel = elevationLevel
        }
    }
    /// Lowercase `n` on the wire.
    public var username: String?
    public var autoUser: AutoUser?
    public init(username: String? = nil, autoUser: AutoUser? = nil) {
        self.username = username
        self.autoUser = autoUser
    }

    public static let admin = UserIdentity(autoUser: AutoUser(scope: "pool", elevationLevel: "admin"))
    public static let nonAdmin = UserIdentity(autoUser: AutoUser(scope: "pool", elevationLevel: "nonadmin"))

    var isAdmin: Bool { autoUser?.elevationLevel?.lowercased() == "admin" }
    /// Scope `task`: the work gets an account of its own instead of sharing its pool's.
    var isTaskScope: Bool { autoUser?.scope?.lowercased() == "task" }
}

/// What happens to the job and to dependants when a task ends a certain way.
public struct ExitOptions: Codable, Sendable, Hashable {
    /// `none`, `disable` or `terminate`.
    public var jobAction: String?
    /// `satisfy` or `block`.
    public var dependencyAction: String?
    public init(jobAction: String? = nil, dependencyAction: String? = nil) {
        self.jobAction = jobAction
        self.dependencyAction = dependencyAction
    }
}

public struct ExitCodeMapping: Codable, Sendable, Hashable {
    public var code: Int
    public var exitOptions: ExitOptions
    public init(code: Int, exitOptions: ExitOptions) {
        self.code = code
        self.exitOptions = exitOptions
    }
}

public struct ExitCodeRangeMapping: Codable, Sendable, Hashable {
    public var start: Int
    public var end: Int
    public var exitOptions: ExitOptions
    public init(start: Int, end: Int, exitOptions: ExitOptions) {
        self.start = start
        self.end = end
        self.exitOptions = exitOptions
    }
}

public struct ExitConditions: Codable, Sendable, Hashable {
    public var exitCodes: [ExitCodeMapping]?
    public var exitCodeRanges: [ExitCodeRangeMapping]?
    public var preProcessingError: ExitOptions?
    public var fileUploadError: ExitOptions?
    public var `default`: ExitOptions?
    public init(
        exitCodes: [ExitCodeMapping]? = nil, exitCodeRanges: [ExitCodeRangeMapping]? = nil,
        preProcessingError: ExitOptions? = nil, fileUploadError: ExitOptions? = nil, default: ExitOptions? = nil
    ) {
        self.exitCodes = exitCodes
        self.exitCodeRanges = exitCodeRanges
        self.preProcessingError = preProcessingError
        self.fileUploadError = fileUploadError
        self.default = `default`
    }
}

/// A JSON value kept verbatim (options Bookend stores and echoes but does not act on).
public enum JSONValue: Codable, Sendable, Hashable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if value == value.rounded(), abs(value) < 1e15 { try container.encode(Int64(value)) } else { try container.encode(value) }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// A pool's start task: runs on each node when it joins the pool and after every reboot.
public struct StartTask: Codable, Sendable, Hashable {
    public var commandLine: String
    public var resourceFiles: [ResourceFile]?
    public var environmentSettings: [EnvironmentSetting]?
    public var userIdentity: UserIdentity?
    public var maxTaskRetryCount: Int?
    public var waitForSuccess: Bool?
    public var containerSettings: JSONValue?
    public init(
        commandLine: String, resourceFiles: [ResourceFile]? = nil, environmentSettings: [EnvironmentSetting]? = nil,
        userIdentity: UserIdentity? = nil, maxTaskRetryCount: Int? = nil, waitForSuccess: Bool? = nil
    ) {
        self.commandLine = commandLine
        self.resourceFiles = resourceFiles
        self.environmentSettings = environmentSettings
        self.userIdentity = userIdentity
        self.maxTaskRetryCount = maxTaskRetryCount
        self.waitForSuccess = waitForSuccess
    }
}

public struct TaskSchedulingPolicy: Codable, Sendable, Hashable {
    /// `spread` or `pack`.
    public var nodeFillType: String
    public init(nodeFillType: String) { self.nodeFillType = nodeFillType }
}

/// What a pool is created from (`BatchPoolCreateOptions`).
public struct PoolSpec: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var vmSize: String?
    public var virtualMachineConfiguration: JSONValue?
    public var resizeTimeout: String?
    public var targetDedicatedNodes: Int?
    public var targetLowPriorityNodes: Int?
    public var enableAutoScale: Bool?
    public var enableInterNodeCommunication: Bool?
    public var startTask: StartTask?
    public var taskSlotsPerNode: Int?
    public var taskSchedulingPolicy: TaskSchedulingPolicy?
    public var metadata: [MetadataItem]?
    public init(
        id: String, vmSize: String? = "standard_d1_v2", targetDedicatedNodes: Int? = nil,
        taskSlotsPerNode: Int? = nil, nodeFillType: String? = nil, startTask: StartTask? = nil
    ) {
        self.id = id
        self.vmSize = vmSize
        self.targetDedicatedNodes = targetDedicatedNodes
        self.taskSlotsPerNode = taskSlotsPerNode
        self.taskSchedulingPolicy = nodeFillType.map(TaskSchedulingPolicy.init(nodeFillType:))
        self.startTask = startTask
    }
}

public struct PoolInfo: Codable, Sendable, Hashable {
    public var poolId: String?
    public var autoPoolSpecification: JSONValue?
    public init(poolId: String) { self.poolId = poolId }
}

public struct JobConstraints: Codable, Sendable, Hashable {
    public var maxWallClockTime: String?
    public var maxTaskRetryCount: Int?
    public init(maxWallClockTime: String? = nil, maxTaskRetryCount: Int? = nil) {
        self.maxWallClockTime = maxWallClockTime
        self.maxTaskRetryCount = maxTaskRetryCount
    }
}

/// The job preparation task: runs on a node before the first task of the job lands there.
public struct JobPreparationTask: Codable, Sendable, Hashable {
    public var id: String?
    public var commandLine: String
    public var resourceFiles: [ResourceFile]?
    public var environmentSettings: [EnvironmentSetting]?
    public var constraints: TaskConstraints?
    public var waitForSuccess: Bool?
    public var userIdentity: UserIdentity?
    public var rerunOnNodeRebootAfterSuccess: Bool?
    public var containerSettings: JSONValue?
    public init(
        id: String? = nil, commandLine: String, resourceFiles: [ResourceFile]? = nil,
        environmentSettings: [EnvironmentSetting]? = nil, constraints: TaskConstraints? = nil,
        waitForSuccess: Bool? = nil, userIdentity: UserIdentity? = nil, rerunOnNodeRebootAfterSuccess: Bool? = nil
    ) {
        self.id = id
        self.commandLine = commandLine
        self.resourceFiles = resourceFiles
        self.environmentSettings = environmentSettings
        self.constraints = constraints
        self.waitForSuccess = waitForSuccess
        self.userIdentity = userIdentity
        self.rerunOnNodeRebootAfterSuccess = rerunOnNodeRebootAfterSuccess
    }
}

/// The job release task: runs once on every node that ran preparation, when the job ends.
public struct JobReleaseTask: Codable, Sendable, Hashable {
    public var id: String?
    public var commandLine: String
    public var resourceFiles: [ResourceFile]?
    public var environmentSettings: [EnvironmentSetting]?
    public var maxWallClockTime: String?
    public var retentionTime: String?
    public var userIdentity: UserIdentity?
    public var containerSettings: JSONValue?
    public init(
        id: String? = nil, commandLine: String, resourceFiles: [ResourceFile]? = nil,
        environmentSettings: [EnvironmentSetting]? = nil, maxWallClockTime: String? = nil,
        retentionTime: String? = nil, userIdentity: UserIdentity? = nil
    ) {
        self.id = id
        self.commandLine = commandLine
        self.resourceFiles = resourceFiles
        self.environmentSettings = environmentSettings
        self.maxWallClockTime = maxWallClockTime
        self.retentionTime = retentionTime
        self.userIdentity = userIdentity
    }
}

/// The job manager task: a task created with the job and scheduled before its other tasks.
public struct JobManagerTask: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var commandLine: String
    public var resourceFiles: [ResourceFile]?
    public var outputFiles: JSONValue?
    public var environmentSettings: [EnvironmentSetting]?
    public var constraints: TaskConstraints?
    public var requiredSlots: Int?
    public var killJobOnCompletion: Bool?
    public var userIdentity: UserIdentity?
    public var runExclusive: Bool?
    public var allowLowPriorityNode: Bool?
    public init(id: String, commandLine: String, killJobOnCompletion: Bool? = nil) {
        self.id = id
        self.commandLine = commandLine
        self.killJobOnCompletion = killJobOnCompletion
    }
}

/// What a job is created from (`BatchJobCreateOptions`).
public struct JobSpec: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var usesTaskDependencies: Bool?
    public var priority: Int?
    public var allowTaskPreemption: Bool?
    public var maxParallelTasks: Int?
    public var constraints: JobConstraints?
    public var jobManagerTask: JobManagerTask?
    public var jobPreparationTask: JobPreparationTask?
    public var jobReleaseTask: JobReleaseTask?
    public var commonEnvironmentSettings: [EnvironmentSetting]?
    public var poolInfo: PoolInfo
    public var onAllTasksComplete: String?
    public var onTaskFailure: String?
    public var networkConfiguration: JSONValue?
    public var metadata: [MetadataItem]?
    public init(
        id: String, poolID: String, jobPreparationTask: JobPreparationTask? = nil,
        jobReleaseTask: JobReleaseTask? = nil, priority: Int? = nil, onAllTasksComplete: String? = nil
    ) {
        self.id = id
        self.poolInfo = PoolInfo(poolId: poolID)
        self.jobPreparationTask = jobPreparationTask
        self.jobReleaseTask = jobReleaseTask
        self.priority = priority
        self.onAllTasksComplete = onAllTasksComplete
    }
}

/// What a task is created from (`BatchTaskCreateOptions`).
public struct TaskSpec: Codable, Sendable, Hashable {
    public var id: String
    public var displayName: String?
    public var exitConditions: ExitConditions?
    public var commandLine: String
    public var containerSettings: JSONValue?
    public var resourceFiles: [ResourceFile]?
    public var outputFiles: JSONValue?
    public var environmentSettings: [EnvironmentSetting]?
    public var affinityInfo: AffinityInfo?
    public var constraints: TaskConstraints?
    public var requiredSlots: Int?
    public var userIdentity: UserIdentity?
    public var multiInstanceSettings: JSONValue?
    public var dependsOn: TaskDependencies?
    public var applicationPackageReferences: JSONValue?
    public init(
        id: String, commandLine: String, environmentSettings: [EnvironmentSetting]? = nil,
        resourceFiles: [ResourceFile]? = nil, constraints: TaskConstraints? = nil, requiredSlots: Int? = nil,
        userIdentity: UserIdentity? = nil, dependsOn: TaskDependencies? = nil, exitConditions: ExitConditions? = nil
    ) {
        self.id = id
        self.commandLine = commandLine
        self.environmentSettings = environmentSettings
        self.resourceFiles = resourceFiles
        self.constraints = constraints
        self.requiredSlots = requiredSlots
        self.userIdentity = userIdentity
        self.dependsOn = dependsOn
        self.exitConditions = exitConditions
    }
}
