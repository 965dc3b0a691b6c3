// Property groups shared by pools, jobs and tasks, with the Azure Batch property names.

/// A name and value in error details (`details`, `values`).
public struct NameValuePair: Codable, Sendable, Hashable {
    public var name: String
    public var value: String?

    public init(name: String, value: String? = nil) {
        self.name = name
        self.value = value
    }
}

/// A user's name/value pair on a pool or job (`metadata`).
public struct MetadataItem: Codable, Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// An environment variable for a task (`environmentSettings`).
public struct EnvironmentSetting: Codable, Sendable, Hashable {
    public var name: String
    public var value: String?

    public init(name: String, value: String? = nil) {
        self.name = name
        self.value = value
    }
}

/// A file downloaded before a task runs (`resourceFiles`).
public struct ResourceFile: Codable, Sendable, Hashable {
    public var httpUrl: String?
    public var storageContainerUrl: String?
    public var autoStorageContainerName: String?
    public var blobPrefix: String?
    public var filePath: String?
    public var fileMode: String?
    public var identityReference: OpaqueJSONObject?

    public init(
        httpUrl: String? = nil,
        storageContainerUrl: String? = nil,
        autoStorageContainerName: String? = nil,
        blobPrefix: String? = nil,
        filePath: String? = nil,
        fileMode: String? = nil,
        identityReference: OpaqueJSONObject? = nil
    ) {
        self.httpUrl = httpUrl
        self.storageContainerUrl = storageContainerUrl
        self.autoStorageContainerName = autoStorageContainerName
        self.blobPrefix = blobPrefix
        self.filePath = filePath
        self.fileMode = fileMode
        self.identityReference = identityReference
    }
}

/// The auto-user account a task runs as (`userIdentity.autoUser`).
public struct AutoUserSpecification: Codable, Sendable, Hashable {
    public var scope: AutoUserScope?
    public var elevationLevel: ElevationLevel?

    public init(scope: AutoUserScope? = nil, elevationLevel: ElevationLevel? = nil) {
        self.scope = scope
        self.elevationLevel = elevationLevel
    }
}

/// Who a task runs as: a named user (`username`, lowercase n on the wire) or an auto-user.
public struct UserIdentity: Codable, Sendable, Hashable {
    public var username: String?
    public var autoUser: AutoUserSpecification?

    public init(username: String? = nil, autoUser: AutoUserSpecification? = nil) {
        self.username = username
        self.autoUser = autoUser
    }
}

/// Limits of a task (`constraints`): durations are ISO 8601 strings.
public struct BatchTaskConstraints: Codable, Sendable, Hashable {
    public var maxWallClockTime: String?
    public var retentionTime: String?
    public var maxTaskRetryCount: Int?

    public init(maxWallClockTime: String? = nil, retentionTime: String? = nil, maxTaskRetryCount: Int? = nil) {
        self.maxWallClockTime = maxWallClockTime
        self.retentionTime = retentionTime
        self.maxTaskRetryCount = maxTaskRetryCount
    }
}

/// What an exit condition does (`exitOptions`).
public struct ExitOptions: Codable, Sendable, Hashable {
    public var jobAction: BatchJobAction?
    public var dependencyAction: DependencyAction?

    public init(jobAction: BatchJobAction? = nil, dependencyAction: DependencyAction? = nil) {
        self.jobAction = jobAction
        self.dependencyAction = dependencyAction
    }
}

/// Exit options for one exit code.
public struct ExitCodeMapping: Codable, Sendable, Hashable {
    public var code: Int
    public var exitOptions: ExitOptions

    public init(code: Int, exitOptions: ExitOptions) {
        self.code = code
        self.exitOptions = exitOptions
    }
}

/// Exit options for an inclusive range of exit codes.
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

/// How a task's exit decides its job's and its dependants' fate (`exitConditions`).
public struct ExitConditions: Codable, Sendable, Hashable {
    public var exitCodes: [ExitCodeMapping]?
    public var exitCodeRanges: [ExitCodeRangeMapping]?
    public var preProcessingError: ExitOptions?
    public var fileUploadError: ExitOptions?
    public var `default`: ExitOptions?

    public init(
        exitCodes: [ExitCodeMapping]? = nil,
        exitCodeRanges: [ExitCodeRangeMapping]? = nil,
        preProcessingError: ExitOptions? = nil,
        fileUploadError: ExitOptions? = nil,
        `default`: ExitOptions? = nil
    ) {
        self.exitCodes = exitCodes
        self.exitCodeRanges = exitCodeRanges
        self.preProcessingError = preProcessingError
        self.fileUploadError = fileUploadError
        self.default = `default`
    }
}

/// An inclusive range of integer task ids (`dependsOn.taskIdRanges`).
public struct BatchTaskIdRange: Codable, Sendable, Hashable {
    public var start: Int
    public var end: Int

    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }
}

/// The tasks a task waits for (`dependsOn`).
public struct BatchTaskDependencies: Codable, Sendable, Hashable {
    public var taskIds: [String]?
    public var taskIdRanges: [BatchTaskIdRange]?

    public init(taskIds: [String]? = nil, taskIdRanges: [BatchTaskIdRange]? = nil) {
        self.taskIds = taskIds
        self.taskIdRanges = taskIdRanges
    }
}

/// A hint to run a task on the node with this `affinityId`.
public struct AffinityInfo: Codable, Sendable, Hashable {
    public var affinityId: String

    public init(affinityId: String) {
        self.affinityId = affinityId
    }
}

/// Why an execution failed (`failureInfo`).
public struct BatchTaskFailureInfo: Codable, Sendable, Hashable {
    public var category: ErrorCategory?
    public var code: String?
    public var message: String?
    public var details: [NameValuePair]?

    public init(category: ErrorCategory? = nil, code: String? = nil, message: String? = nil, details: [NameValuePair]? = nil) {
        self.category = category
        self.code = code
        self.message = message
        self.details = details
    }
}

/// How a pool places tasks on its nodes (`taskSchedulingPolicy`).
public struct BatchTaskSchedulingPolicy: Codable, Sendable, Hashable {
    public var nodeFillType: BatchNodeFillType?
    public var jobDefaultOrder: String?

    public init(nodeFillType: BatchNodeFillType? = nil, jobDefaultOrder: String? = nil) {
        self.nodeFillType = nodeFillType
        self.jobDefaultOrder = jobDefaultOrder
    }
}
