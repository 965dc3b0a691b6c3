// The states of every entity, one enum per state column. Raw values are the Azure Batch wire values
// and exactly the lists in the schema's CHECK constraints (SchemaStateTests compares them both ways),
// so a value read from SQL either decodes to a case or is a corrupt row, never a silent default.

/// `pool.state`.
public enum PoolState: String, CaseIterable, Sendable, Hashable, Codable {
    case active, deleting
}

/// `pool.allocation_state`. `stopping` exists on the wire and in the schema; Bookend never enters it
/// (it has no autoscale or stop-resize), so no event leaves it.
public enum AllocationState: String, CaseIterable, Sendable, Hashable, Codable {
    case steady, resizing, stopping
}

/// `node.state`. Bookend enters only creating, starting, waitingforstarttask, starttaskfailed, idle,
/// running, rebooting and leavingpool; the rest are Azure states kept so that every wire value decodes.
public enum NodeState: String, CaseIterable, Sendable, Hashable, Codable {
    case idle, rebooting, reimaging, running, unusable, creating, starting, waitingforstarttask
    case starttaskfailed, unknown, leavingpool, offline, preempted, upgradingos, deallocated, deallocating
}

/// `job.state` and `job.previous_state`.
public enum JobState: String, CaseIterable, Sendable, Hashable, Codable {
    case active, disabling, disabled, enabling, terminating, completed, deleting

    /// The states in which a job's tasks may still retry and its preparation may rerun: it has not
    /// begun to end.
    public var isLive: Bool {
        switch self {
        case .active, .disabling, .disabled, .enabling: true
        case .terminating, .completed, .deleting: false
        }
    }
}

/// `task.state` and `task.previous_state`.
public enum TaskState: String, CaseIterable, Sendable, Hashable, Codable {
    case active, preparing, running, completed

    /// Holding slots on a node (`task.node_pk` is set).
    public var holdsNode: Bool {
        switch self {
        case .preparing, .running: true
        case .active, .completed: false
        }
    }
}

/// `execution.state`: committed as `starting` before the process is spawned.
public enum ExecutionState: String, CaseIterable, Sendable, Hashable, Codable {
    case starting, running, completed
}

/// `execution.kind`: what an execution runs.
public enum ExecutionKind: String, CaseIterable, Sendable, Hashable, Codable {
    case task, preparation, release, start
}

/// `execution.kill_reason`: why Bookend signalled a process, recorded before the signal is sent.
/// `shutdown` is in the schema but never written: an engine that stops leaves its processes running.
public enum KillReason: String, CaseIterable, Sendable, Hashable, Codable {
    case timeout, terminate, requeue, delete, shutdown
}

/// The result of a completed task, execution, preparation or release (`result` columns).
public enum ExecutionResult: String, CaseIterable, Sendable, Hashable, Codable {
    case success, failure
}

/// `job_node.prep_state`: the preparation task on one node for one job.
public enum PreparationState: String, CaseIterable, Sendable, Hashable, Codable {
    case running, completed
}

/// `job_node.release_state` (NULL: no release owed yet).
public enum ReleaseState: String, CaseIterable, Sendable, Hashable, Codable {
    case pending, running, completed
}

/// `job.disable_tasks`, `disableJob`'s option: what happens to the job's running tasks.
public enum DisableJobOption: String, CaseIterable, Sendable, Hashable, Codable {
    case requeue, terminate, wait
}

/// `node.reboot_option`: what a pending reboot (or leaving the pool) does to running tasks.
public enum NodeRebootOption: String, CaseIterable, Sendable, Hashable, Codable {
    case requeue, terminate, taskcompletion, retaineddata
}

extension KillReason {
    /// The `Reason` of the `TaskEnded` failure of a process Bookend ended for this reason, or nil when
    /// the process was interrupted to run again (requeue; `shutdown`, never written, reads the same).
    public var endedReason: String? {
        switch self {
        case .timeout: "MaxWallClockTimeExpiry"
        case .terminate: "UserTerminate"
        case .delete: "JobDeleted"
        case .requeue, .shutdown: nil
        }
    }
}
