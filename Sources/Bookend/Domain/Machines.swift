// The state machines of the engine as pure values: which event may move which state where. Nothing
// here reads or writes SQL; the stores (Sources/Bookend/Store) ask a machine for the next state
// before they write it, so an illegal transition is a thrown BookendError and never a row.
//
// A transition to the same state is either a real step that writes (a preparation retried, a node
// that has left for good) or an idempotent API call the caller answers without writing (disabling a
// disabled job); the caller decides, knowing which.

/// A machine: its states, its events, and the one function that says where an event leads.
public protocol StateMachine {
    associatedtype State: RawRepresentable, CaseIterable, Hashable, Sendable where State.RawValue == String
    associatedtype Event: RawRepresentable, CaseIterable, Hashable, Sendable where Event.RawValue == String
    /// The heading of this machine's table in docs/state-machines.md.
    static var name: String { get }
    /// The state `event` leads to from `state`; throws the Batch error for an illegal pair.
    static func next(from state: State, on event: Event) throws -> State
}

public struct StateEdge<State: Hashable & Sendable, Event: Hashable & Sendable>: Hashable, Sendable {
    public var from: State
    public var event: Event
    public var to: State
}

extension StateMachine {
    /// Every legal (state, event) pair and where it leads, in declaration order.
    public static var edges: [StateEdge<State, Event>] {
        State.allCases.flatMap { state in
            Event.allCases.compactMap { event in
                (try? next(from: state, on: event)).map { StateEdge(from: state, event: event, to: $0) }
            }
        }
    }

    /// The conflict for an illegal pair. No details: the API's error bodies for these stay as they were.
    static func illegal(_ code: String, _ state: State, _ event: Event, _ message: String? = nil) -> BookendError {
        BookendError(.conflict, code, message ?? "\(name): \(event.rawValue) is not allowed in state \(state.rawValue)")
    }
}

/// The one retry rule of tasks, preparation tasks and start tasks: `-1` retries without limit.
public enum RetryRule {
    public static func allowsAnother(retryCount: Int, maxRetryCount: Int) -> Bool {
        maxRetryCount == -1 || retryCount < maxRetryCount
    }
}

// MARK: - Task

public enum TaskEvent: String, CaseIterable, Sendable, Hashable {
    /// Assigned to a node whose preparation (waitForSuccess) has not succeeded yet.
    case waitForPreparation
    /// Assigned with nothing to wait for, or its node's preparation succeeded.
    case start
    /// Let go of its node without counting: the preparation failed for good there, or the job ends.
    case unassign
    /// Its node rebooted or left, or its process vanished: it runs again (requeueCount + 1).
    case requeue
    /// Exited non-zero with retries left (retryCount + 1).
    case retry
    /// Ended with a result: exit, no retries left, pre-processing error, timeout, terminate.
    case complete
    /// reactivateTask on a failed task.
    case reactivate
}

public enum TaskMachine: StateMachine {
    public static let name = "Task"

    public static func next(from state: TaskState, on event: TaskEvent) throws -> TaskState {
        switch (state, event) {
        case (.active, .waitForPreparation): return .preparing
        case (.active, .start), (.preparing, .start): return .running
        case (.preparing, .unassign): return .active
        case (.preparing, .requeue), (.running, .requeue): return .active
        case (.running, .retry): return .active
        case (.active, .complete), (.preparing, .complete), (.running, .complete): return .completed
        case (.completed, .reactivate): return .active
        case (.active, .reactivate), (.preparing, .reactivate), (.running, .reactivate):
            throw illegal("TaskNotCompleted", state, event, "The specified task is not completed")
        case (.completed, .waitForPreparation), (.completed, .start), (.completed, .unassign), (.completed, .requeue),
            (.completed, .retry), (.completed, .complete):
            throw illegal("TaskCompleted", state, event, "The specified task is already completed")
        case (.active, .unassign), (.active, .requeue), (.active, .retry),
            (.preparing, .waitForPreparation), (.preparing, .retry),
            (.running, .waitForPreparation), (.running, .start), (.running, .unassign):
            throw illegal("OperationInvalidForCurrentState", state, event)
        }
    }
}

// MARK: - Job

public enum JobEvent: String, CaseIterable, Sendable, Hashable {
    /// disableJob, or a failed task's exit option `disable`.
    case disable
    /// No task of a disabling job is preparing or running any more.
    case tasksStopped
    /// enableJob.
    case enable
    /// The scheduler pass after enableJob.
    case resume
    /// terminateJob, maxWallClockTime, onAllTasksComplete, the job manager's end, an exit option.
    case terminate
    /// No task or preparation runs and every owed release has ended.
    case complete
    /// deleteJob.
    case delete
}

public enum JobMachine: StateMachine {
    public static let name = "Job"

    public static func next(from state: JobState, on event: JobEvent) throws -> JobState {
        switch (state, event) {
        case (.active, .disable): return .disabling
        case (.disabling, .disable), (.disabled, .disable): return state
        case (.disabling, .tasksStopped): return .disabled
        case (.disabling, .enable), (.disabled, .enable): return .enabling
        case (.active, .enable), (.enabling, .enable): return state
        case (.enabling, .resume): return .active
        case (.active, .terminate), (.disabling, .terminate), (.disabled, .terminate), (.enabling, .terminate): return .terminating
        case (.terminating, .terminate): return .terminating
        case (.terminating, .complete): return .completed
        case (.active, .delete), (.disabling, .delete), (.disabled, .delete), (.enabling, .delete), (.terminating, .delete),
            (.completed, .delete):
            return .deleting
        case (.completed, .disable), (.completed, .tasksStopped), (.completed, .enable), (.completed, .resume),
            (.completed, .terminate), (.completed, .complete):
            throw illegal("JobCompleted", state, event, "The specified job is already in a completed state")
        case (.deleting, .disable), (.deleting, .tasksStopped), (.deleting, .enable), (.deleting, .resume),
            (.deleting, .terminate), (.deleting, .complete), (.deleting, .delete):
            // A second DELETE too (§4.2: every mutation of a job being deleted), as Batch answers it.
            throw illegal("JobBeingDeleted", state, event, "The specified job has been marked for deletion and is being garbage collected")
        case (.terminating, .disable), (.terminating, .tasksStopped), (.terminating, .enable), (.terminating, .resume):
            throw illegal("JobBeingTerminated", state, event, "The specified job is being terminated")
        case (.enabling, .disable):
            throw illegal("OperationInvalidForCurrentState", state, event, "The job cannot be disabled in state \(state.rawValue)")
        case (.active, .tasksStopped), (.active, .resume), (.active, .complete),
            (.disabling, .resume), (.disabling, .complete),
            (.disabled, .tasksStopped), (.disabled, .resume), (.disabled, .complete),
            (.enabling, .tasksStopped), (.enabling, .complete):
            throw illegal("OperationInvalidForCurrentState", state, event)
        }
    }

    /// Throws the Batch error for a job that no longer accepts changes (update, add task, ...).
    public static func requireModifiable(_ state: JobState) throws {
        switch state {
        case .completed: throw BookendError.conflict("JobCompleted", "The specified job is already in a completed state")
        case .deleting:
            throw BookendError.conflict("JobBeingDeleted", "The specified job has been marked for deletion and is being garbage collected")
        case .terminating: throw BookendError.conflict("JobBeingTerminated", "The specified job is being terminated")
        case .active, .disabling, .disabled, .enabling: return
        }
    }
}

// MARK: - Pool

public enum PoolEvent: String, CaseIterable, Sendable, Hashable {
    /// resizePool: allowed only while the pool is not being deleted.
    case resize
    /// deletePool.
    case delete
}

public enum PoolMachine: StateMachine {
    public static let name = "Pool"

    public static func next(from state: PoolState, on event: PoolEvent) throws -> PoolState {
        switch (state, event) {
        case (.active, .resize): return .active
        case (.active, .delete): return .deleting
        // A second DELETE too (§5: any update, resize or delete while deleting), as Batch answers it.
        case (.deleting, .delete), (.deleting, .resize): throw illegal("PoolBeingDeleted", state, event, "The pool is being deleted")
        }
    }
}

public enum AllocationEvent: String, CaseIterable, Sendable, Hashable {
    /// resizePool.
    case resize
    /// Every node has booted or left.
    case settle
}

public enum AllocationMachine: StateMachine {
    public static let name = "Pool allocation"

    public static func next(from state: AllocationState, on event: AllocationEvent) throws -> AllocationState {
        switch (state, event) {
        case (.steady, .resize): return .resizing
        case (.resizing, .settle): return .steady
        case (.resizing, .resize), (.stopping, .resize): throw illegal("PoolBeingResized", state, event, "The pool is being resized")
        case (.steady, .settle), (.stopping, .settle): throw illegal("OperationInvalidForCurrentState", state, event)
        }
    }
}

// MARK: - Node

public enum NodeEvent: String, CaseIterable, Sendable, Hashable {
    /// Folders made, bootCount + 1.
    case boot
    /// The pool's start task has waitForSuccess.
    case awaitStartTask
    /// No start task to wait for, or the start task succeeded.
    case ready
    /// The start task failed with no retries left.
    case startTaskFailed
    /// A task, preparation or release executes on it.
    case busy
    /// None executes any more.
    case free
    /// rebootNode.
    case reboot
    /// Its executions ended (per nodeRebootOption): it boots again.
    case rebooted
    /// Resize down or pool delete.
    case leave
    /// Its executions ended: it has left (removed_time set; the row stays for history).
    case removed
}

public enum NodeMachine: StateMachine {
    public static let name = "Node"

    public static func next(from state: NodeState, on event: NodeEvent) throws -> NodeState {
        switch (state, event) {
        case (.creating, .boot): return .starting
        case (.starting, .awaitStartTask): return .waitingforstarttask
        case (.starting, .ready), (.waitingforstarttask, .ready): return .idle
        case (.waitingforstarttask, .startTaskFailed): return .starttaskfailed
        case (.idle, .busy): return .running
        case (.running, .free): return .idle
        case (.idle, .reboot), (.running, .reboot): return .rebooting
        case (.rebooting, .reboot): throw illegal("NodeBeingRebooted", state, event, "The node is already rebooting")
        case (.creating, .reboot): throw illegal("NodeBeingCreated", state, event, "The node is being created")
        case (.starting, .reboot): throw illegal("NodeBeingStarted", state, event, "The node is starting")
        case (.rebooting, .rebooted): return .creating
        case (.leavingpool, .removed): return .leavingpool
        case (.leavingpool, .leave): throw illegal("NodeLeavingPool", state, event, "The node is leaving the pool")
        case (_, .leave): return .leavingpool
        // Spec §4.3: a reboot is accepted only from idle or running, as Azure documents for the operation.
        case (.starttaskfailed, .reboot), (.waitingforstarttask, .reboot), (.reimaging, .reboot), (.unusable, .reboot), (.unknown, .reboot), (.leavingpool, .reboot), (.offline, .reboot),
            (.preempted, .reboot), (.upgradingos, .reboot), (.deallocated, .reboot), (.deallocating, .reboot):
            throw illegal("OperationInvalidForCurrentState", state, event, "The node cannot be rebooted in state \(state.rawValue)")
        case (_, .boot), (_, .awaitStartTask), (_, .ready), (_, .startTaskFailed), (_, .busy), (_, .free), (_, .rebooted),
            (_, .removed):
            throw illegal("OperationInvalidForCurrentState", state, event)
        }
    }
}

// MARK: - Execution

public enum ExecutionEvent: String, CaseIterable, Sendable, Hashable {
    /// The spawned process's identity is recorded (or adopted by the reconciler).
    case recordProcess
    /// Its exit (or that it never ran, or was lost) is recorded, exactly once.
    case complete
}

public enum ExecutionMachine: StateMachine {
    public static let name = "Execution"

    public static func next(from state: ExecutionState, on event: ExecutionEvent) throws -> ExecutionState {
        switch (state, event) {
        case (.starting, .recordProcess): return .running
        case (.starting, .complete), (.running, .complete): return .completed
        case (.running, .recordProcess), (.completed, .recordProcess), (.completed, .complete):
            throw illegal("OperationInvalidForCurrentState", state, event)
        }
    }
}

// MARK: - Preparation and release on a node (job_node)

/// Where the (job, node) record stands: its `prep_state` and `release_state` together.
public enum JobNodePhase: String, CaseIterable, Sendable, Hashable {
    case preparationRunning, preparationCompleted, releasePending, releaseRunning, releaseCompleted

    public init(preparation: PreparationState, release: ReleaseState?) throws {
        switch (preparation, release) {
        case (.running, nil): self = .preparationRunning
        case (.completed, nil): self = .preparationCompleted
        case (.completed, .pending?): self = .releasePending
        case (.completed, .running?): self = .releaseRunning
        case (.completed, .completed?): self = .releaseCompleted
        case (.running, .some(let release)):
            throw BookendError.internalError("job_node: release_state \(release.rawValue) while preparation is running")
        }
    }

    public var preparation: PreparationState {
        switch self {
        case .preparationRunning: .running
        case .preparationCompleted, .releasePending, .releaseRunning, .releaseCompleted: .completed
        }
    }

    public var release: ReleaseState? {
        switch self {
        case .preparationRunning, .preparationCompleted: nil
        case .releasePending: .pending
        case .releaseRunning: .running
        case .releaseCompleted: .completed
        }
    }
}

public enum JobNodeEvent: String, CaseIterable, Sendable, Hashable {
    /// Preparation runs (again): the node rebooted since it last ran and it failed or must rerun, or
    /// its attempt was lost.
    case runPreparation
    /// Non-zero exit with retries left (retryCount + 1).
    case retryPreparation
    /// Exit 0, retries exhausted, pre-processing error, timeout, or killed by the job's end.
    case completePreparation
    /// The job ends: a release is owed here once.
    case oweRelease
    /// The node is up: the release starts.
    case startRelease
    /// The node rebooted mid-release: it starts again later.
    case interruptRelease
    /// Release exited (any code) or hit its 15-minute cap.
    case completeRelease
}

public enum JobNodeMachine: StateMachine {
    public static let name = "Preparation and release on a node"

    public static func next(from state: JobNodePhase, on event: JobNodeEvent) throws -> JobNodePhase {
        switch (state, event) {
        case (.preparationRunning, .runPreparation), (.preparationCompleted, .runPreparation): return .preparationRunning
        case (.preparationRunning, .retryPreparation): return .preparationRunning
        case (.preparationRunning, .completePreparation): return .preparationCompleted
        case (.preparationCompleted, .oweRelease): return .releasePending
        case (.releasePending, .startRelease): return .releaseRunning
        case (.releaseRunning, .interruptRelease): return .releasePending
        case (.releaseRunning, .completeRelease): return .releaseCompleted
        case (.preparationRunning, .oweRelease), (.preparationRunning, .startRelease), (.preparationRunning, .interruptRelease),
            (.preparationRunning, .completeRelease),
            (.preparationCompleted, .retryPreparation), (.preparationCompleted, .completePreparation),
            (.preparationCompleted, .startRelease), (.preparationCompleted, .interruptRelease), (.preparationCompleted, .completeRelease),
            (.releasePending, .runPreparation), (.releasePending, .retryPreparation), (.releasePending, .completePreparation),
            (.releasePending, .oweRelease), (.releasePending, .interruptRelease), (.releasePending, .completeRelease),
            (.releaseRunning, .runPreparation), (.releaseRunning, .retryPreparation), (.releaseRunning, .completePreparation),
            (.releaseRunning, .oweRelease), (.releaseRunning, .startRelease),
            (.releaseCompleted, _):
            throw illegal("OperationInvalidForCurrentState", state, event)
        }
    }
}
