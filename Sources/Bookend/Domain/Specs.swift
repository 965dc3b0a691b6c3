// What users ask for: the Azure Batch create/update shapes, with the wire's property names, so the
// daemon decodes request bodies straight into these and the library takes the same values.
// Optional properties are optional here; defaults are applied by the engine (see `Defaults`).

// The sub-shapes the engine stores verbatim are the wire's own (`BatchModels`), re-exported so that
// `import Bookend` alone still names and uses them, under their library names where those differ; see
// docs/decisions.md ("Module boundaries"). The engine keeps its own type only where it needs a
// different one: the create shapes below (their initialisers and string options are the library's
// API) and `TaskSchedulingPolicy`. The daemon decodes the wire's create bodies and converts them in
// API/Conversion. `AllocationState`, declared by both modules, is the engine's for code that imports
// only Bookend.
@_exported import BatchModels

/// Limits on one task execution (`constraints`); durations are ISO 8601 strings on the wire.
public typealias TaskConstraints = BatchTaskConstraints
/// An inclusive range of integer task ids (`dependsOn.taskIdRanges`).
public typealias TaskIDRange = BatchTaskIdRange
/// The tasks a task waits for (`dependsOn`).
public typealias TaskDependencies = BatchTaskDependencies

// `ResourceFile`, `UserIdentity` and the exit conditions (`ExitConditions`, `ExitCodeMapping`,
// `ExitCodeRangeMapping`, `ExitOptions`) are the wire's under the same names. A task's user identity
// and exit options hold the wire's enums (`ElevationLevel`, `BatchJobAction`, …): a value the enum
// does not know decodes as `.unrecognized` and validation refuses it, naming the property.

/// A JSON value kept verbatim (options Bookend stores and echoes but does not act on).
public typealias JSONValue = OpaqueJSON
/// A pool's start task: runs on each node when it joins the pool and after every reboot.
public typealias StartTask = BatchStartTask
/// Where a job's tasks run (`poolInfo`): Bookend takes a `poolId` only.
public typealias PoolInfo = BatchPoolInfo
public typealias JobConstraints = BatchJobConstraints
/// The job preparation task: runs on a node before the first task of the job lands there.
public typealias JobPreparationTask = BatchJobPreparationTask
/// The job release task: runs once on every node that ran preparation, when the job ends.
public typealias JobReleaseTask = BatchJobReleaseTask
/// The job manager task: a task created with the job and scheduled before its other tasks.
public typealias JobManagerTask = BatchJobManagerTask

extension UserIdentity {
    /// The library's name for `autoUser`'s shape before it became the wire's.
    public typealias AutoUser = AutoUserSpecification

    public static let admin = UserIdentity(autoUser: AutoUser(scope: .pool, elevationLevel: .admin))
    public static let nonAdmin = UserIdentity(autoUser: AutoUser(scope: .pool, elevationLevel: .nonAdmin))

    var isAdmin: Bool { autoUser?.elevationLevel == .admin }
    /// Scope `task`: the work gets an account of its own instead of sharing its pool's.
    var isTaskScope: Bool { autoUser?.scope == .task }
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
