// The Azure Batch enums with their wire values (all lowercase on the wire). Every enum keeps a value
// it does not know as `.unrecognized`, so a newer server cannot break an older client.

/// A pool's `state`.
public enum BatchPoolState: WireEnum {
    case active, deleting
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchPoolState] = [.active, .deleting]

    public var rawValue: String {
        switch self {
        case .active: "active"
        case .deleting: "deleting"
        case .unrecognized(let value): value
        }
    }
}

/// Whether a pool is resizing (`allocationState`).
public enum AllocationState: WireEnum {
    case steady, resizing, stopping
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [AllocationState] = [.steady, .resizing, .stopping]

    public var rawValue: String {
        switch self {
        case .steady: "steady"
        case .resizing: "resizing"
        case .stopping: "stopping"
        case .unrecognized(let value): value
        }
    }
}

/// A compute node's `state`.
public enum BatchNodeState: WireEnum {
    case idle, rebooting, reimaging, running, unusable, creating, starting, waitingForStartTask, startTaskFailed, unknown, leavingPool, offline, preempted, upgradingOS, deallocated, deallocating
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchNodeState] = [.idle, .rebooting, .reimaging, .running, .unusable, .creating, .starting, .waitingForStartTask, .startTaskFailed, .unknown, .leavingPool, .offline, .preempted, .upgradingOS, .deallocated, .deallocating]

    public var rawValue: String {
        switch self {
        case .idle: "idle"
        case .rebooting: "rebooting"
        case .reimaging: "reimaging"
        case .running: "running"
        case .unusable: "unusable"
        case .creating: "creating"
        case .starting: "starting"
        case .waitingForStartTask: "waitingforstarttask"
        case .startTaskFailed: "starttaskfailed"
        case .unknown: "unknown"
        case .leavingPool: "leavingpool"
        case .offline: "offline"
        case .preempted: "preempted"
        case .upgradingOS: "upgradingos"
        case .deallocated: "deallocated"
        case .deallocating: "deallocating"
        case .unrecognized(let value): value
        }
    }
}

/// Whether a node accepts new tasks (`schedulingState`).
public enum SchedulingState: WireEnum {
    case enabled, disabled
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [SchedulingState] = [.enabled, .disabled]

    public var rawValue: String {
        switch self {
        case .enabled: "enabled"
        case .disabled: "disabled"
        case .unrecognized(let value): value
        }
    }
}

/// A job's `state`.
public enum BatchJobState: WireEnum {
    case active, disabling, disabled, enabling, terminating, completed, deleting
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchJobState] = [.active, .disabling, .disabled, .enabling, .terminating, .completed, .deleting]

    public var rawValue: String {
        switch self {
        case .active: "active"
        case .disabling: "disabling"
        case .disabled: "disabled"
        case .enabling: "enabling"
        case .terminating: "terminating"
        case .completed: "completed"
        case .deleting: "deleting"
        case .unrecognized(let value): value
        }
    }
}

/// A task's `state`.
public enum BatchTaskState: WireEnum {
    case active, preparing, running, completed
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchTaskState] = [.active, .preparing, .running, .completed]

    public var rawValue: String {
        switch self {
        case .active: "active"
        case .preparing: "preparing"
        case .running: "running"
        case .completed: "completed"
        case .unrecognized(let value): value
        }
    }
}

/// A node's start task (`startTaskInfo.state`).
public enum BatchStartTaskState: WireEnum {
    case running, completed
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchStartTaskState] = [.running, .completed]

    public var rawValue: String {
        switch self {
        case .running: "running"
        case .completed: "completed"
        case .unrecognized(let value): value
        }
    }
}

/// A job preparation task on one node (`jobPreparationTaskExecutionInfo.state`).
public enum BatchJobPreparationTaskState: WireEnum {
    case running, completed
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchJobPreparationTaskState] = [.running, .completed]

    public var rawValue: String {
        switch self {
        case .running: "running"
        case .completed: "completed"
        case .unrecognized(let value): value
        }
    }
}

/// A job release task on one node (`jobReleaseTaskExecutionInfo.state`).
public enum BatchJobReleaseTaskState: WireEnum {
    case running, completed
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchJobReleaseTaskState] = [.running, .completed]

    public var rawValue: String {
        switch self {
        case .running: "running"
        case .completed: "completed"
        case .unrecognized(let value): value
        }
    }
}

/// How a completed execution ended (`result`).
public enum BatchTaskExecutionResult: WireEnum {
    case success, failure
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchTaskExecutionResult] = [.success, .failure]

    public var rawValue: String {
        switch self {
        case .success: "success"
        case .failure: "failure"
        case .unrecognized(let value): value
        }
    }
}

/// Who is to blame for a failure (`failureInfo.category`, `schedulingError.category`).
public enum ErrorCategory: WireEnum {
    case userError, serverError
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [ErrorCategory] = [.userError, .serverError]

    public var rawValue: String {
        switch self {
        case .userError: "usererror"
        case .serverError: "servererror"
        case .unrecognized(let value): value
        }
    }
}

/// One item of an add-task-collection result (`status`).
public enum BatchTaskAddStatus: WireEnum {
    case success, clientError, serverError
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchTaskAddStatus] = [.success, .clientError, .serverError]

    public var rawValue: String {
        switch self {
        case .success: "success"
        case .clientError: "clienterror"
        case .serverError: "servererror"
        case .unrecognized(let value): value
        }
    }
}

/// What a job does when all its tasks have completed (`onAllTasksComplete`).
public enum OnAllBatchTasksComplete: WireEnum {
    case noAction, terminateJob
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [OnAllBatchTasksComplete] = [.noAction, .terminateJob]

    public var rawValue: String {
        switch self {
        case .noAction: "noaction"
        case .terminateJob: "terminatejob"
        case .unrecognized(let value): value
        }
    }
}

/// What a job does when one of its tasks fails (`onTaskFailure`).
public enum OnBatchTaskFailure: WireEnum {
    case noAction, performExitOptionsJobAction
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [OnBatchTaskFailure] = [.noAction, .performExitOptionsJobAction]

    public var rawValue: String {
        switch self {
        case .noAction: "noaction"
        case .performExitOptionsJobAction: "performexitoptionsjobaction"
        case .unrecognized(let value): value
        }
    }
}

/// What a task's exit condition does to its job (`exitOptions.jobAction`).
public enum BatchJobAction: WireEnum {
    case none, disable, terminate
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchJobAction] = [.none, .disable, .terminate]

    public var rawValue: String {
        switch self {
        case .none: "none"
        case .disable: "disable"
        case .terminate: "terminate"
        case .unrecognized(let value): value
        }
    }
}

/// What a task's exit condition does to its dependants (`exitOptions.dependencyAction`).
public enum DependencyAction: WireEnum {
    case satisfy, block
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [DependencyAction] = [.satisfy, .block]

    public var rawValue: String {
        switch self {
        case .satisfy: "satisfy"
        case .block: "block"
        case .unrecognized(let value): value
        }
    }
}

/// What happens to running tasks when a job is disabled (`disableTasks`).
public enum DisableBatchJobOption: WireEnum {
    case requeue, terminate, wait
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [DisableBatchJobOption] = [.requeue, .terminate, .wait]

    public var rawValue: String {
        switch self {
        case .requeue: "requeue"
        case .terminate: "terminate"
        case .wait: "wait"
        case .unrecognized(let value): value
        }
    }
}

/// What happens to a node's running tasks when it reboots (`nodeRebootOption`).
public enum BatchNodeRebootOption: WireEnum {
    case requeue, terminate, taskCompletion, retainedData
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchNodeRebootOption] = [.requeue, .terminate, .taskCompletion, .retainedData]

    public var rawValue: String {
        switch self {
        case .requeue: "requeue"
        case .terminate: "terminate"
        case .taskCompletion: "taskcompletion"
        case .retainedData: "retaineddata"
        case .unrecognized(let value): value
        }
    }
}

/// What happens to running tasks on nodes a resize removes (`nodeDeallocationOption`): the wire
/// gives it the same four values as a reboot's option, so one enum serves both.
public typealias BatchNodeDeallocationOption = BatchNodeRebootOption

/// How tasks are spread over a pool's nodes (`taskSchedulingPolicy.nodeFillType`).
public enum BatchNodeFillType: WireEnum {
    case spread, pack
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchNodeFillType] = [.spread, .pack]

    public var rawValue: String {
        switch self {
        case .spread: "spread"
        case .pack: "pack"
        case .unrecognized(let value): value
        }
    }
}

/// Whether an auto-user account is per task or shared by the pool (`autoUser.scope`).
public enum AutoUserScope: WireEnum {
    case task, pool
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [AutoUserScope] = [.task, .pool]

    public var rawValue: String {
        switch self {
        case .task: "task"
        case .pool: "pool"
        case .unrecognized(let value): value
        }
    }
}

/// Whether an auto-user account is an administrator (`autoUser.elevationLevel`).
public enum ElevationLevel: WireEnum {
    case nonAdmin, admin
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [ElevationLevel] = [.nonAdmin, .admin]

    public var rawValue: String {
        switch self {
        case .nonAdmin: "nonadmin"
        case .admin: "admin"
        case .unrecognized(let value): value
        }
    }
}

/// Bookend's extension `bookendWaitReason.state`: whether work waits, and whether someone must act.
public enum BookendWaitState: WireEnum {
    case blocked, waiting, notWaiting
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BookendWaitState] = [.blocked, .waiting, .notWaiting]

    public var rawValue: String {
        switch self {
        case .blocked: "blocked"
        case .waiting: "waiting"
        case .notWaiting: "notwaiting"
        case .unrecognized(let value): value
        }
    }
}

/// What happens to a node's running tasks when its scheduling is disabled (`nodeDisableSchedulingOption`).
public enum BatchNodeDisableSchedulingOption: WireEnum {
    case requeue, terminate, taskCompletion
    /// A value this version does not know, kept as sent.
    case unrecognized(String)

    public static let known: [BatchNodeDisableSchedulingOption] = [.requeue, .terminate, .taskCompletion]

    public var rawValue: String {
        switch self {
        case .requeue: "requeue"
        case .terminate: "terminate"
        case .taskCompletion: "taskcompletion"
        case .unrecognized(let value): value
        }
    }
}

// The enums of a task's user identity, its exit options and a job update were strings in the library's
// API before they became the wire's; literals keep code written against it
// (`ExitOptions(jobAction: "terminate")`, `JobUpdate(onAllTasksComplete: "terminatejob")`) compiling.
extension AutoUserScope: ExpressibleByStringLiteral {}
extension ElevationLevel: ExpressibleByStringLiteral {}
extension BatchJobAction: ExpressibleByStringLiteral {}
extension DependencyAction: ExpressibleByStringLiteral {}
extension OnAllBatchTasksComplete: ExpressibleByStringLiteral {}
