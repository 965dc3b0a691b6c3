import Foundation

// The parts of a scheduler pass's plan that are not already in Decisions.swift: pure functions of
// what the pass read and the clock it was given (no SQL, no processes, no Date()). The pass's apply
// transaction asks them and hands their answers to the stores; PlanTests drives them as tables.

/// Which nodes the active tasks of one job go to, and what each assignment does about the job's
/// preparation task: `Placement` picks the node, `PreparationDecision` says whether preparation runs
/// there first and whether the task waits for it.
enum DispatchPlan {
    /// The job's preparation task, as far as placement cares.
    struct Preparation: Equatable, Sendable {
        var rerunOnNodeRebootAfterSuccess: Bool?
        var waitForSuccess: Bool?
    }

    /// A (job, node) record as placement sees it: `job_node` plus whether a preparation execution on
    /// the node has not completed.
    struct NodeRecord: Equatable, Sendable {
        var phase: JobNodePhase
        var result: ExecutionResult?
        var bootCount: Int
        var liveAttempt: Bool
    }

    /// How preparation begins on the node before the task, if it does.
    enum PreparationStart: Equatable, Sendable {
        /// The first task of the job on the node: the record is created, running.
        case first
        /// The record exists (from an earlier boot, or its attempt was lost): preparation runs again.
        case rerun(from: JobNodePhase)
    }

    struct Assignment: Equatable, Sendable {
        /// Index into the tasks given.
        var task: Int
        var node: NodeSlots
        var preparation: PreparationStart?
        /// The task waits `preparing` for the preparation; otherwise it starts now.
        var taskWaits: Bool
    }

    /// Places tasks (in dispatch order, each needing `needs[i]` slots) on `slots`, at most `budget`,
    /// and decides preparation per assignment. Preparation begun by one assignment is seen by the next
    /// on the same node, so it begins once per node in a pass.
    static func assign(
        _ needs: [Int], on slots: inout [NodeSlots], ineligible: Set<Int64>, fill: NodeFill, budget: Int,
        preparation: Preparation?, records: [Int64: NodeRecord]
    ) -> [Assignment] {
        var records = records
        return Placement.place(needs, on: &slots, ineligible: ineligible, fill: fill, budget: budget).map { placed in
            guard let preparation else { return Assignment(task: placed.task, node: placed.node, preparation: nil, taskWaits: false) }
            let record = records[placed.node.pk]
            let answer = PreparationDecision.decide(
                record: record.map { ($0.phase, $0.result, $0.bootCount) }, nodeBootCount: placed.node.bootCount,
                liveAttempt: record?.liveAttempt ?? false,
                rerunOnNodeRebootAfterSuccess: preparation.rerunOnNodeRebootAfterSuccess, waitForSuccess: preparation.waitForSuccess)
            var start: PreparationStart?
            if answer.runPreparation {
                start = record.map { .rerun(from: $0.phase) } ?? .first
                // What the stores write for it: running, result cleared, this boot, an attempt live.
                records[placed.node.pk] = NodeRecord(phase: .preparationRunning, result: nil, bootCount: placed.node.bootCount, liveAttempt: true)
            }
            return Assignment(task: placed.task, node: placed.node, preparation: start, taskWaits: answer.taskWaits)
        }
    }
}

/// Which executions a pass decides to end, and why.
enum KillPlan {
    /// A live execution with a wall clock: its key, its stored `deadline`, and whether a reason to end
    /// it is already recorded (the first decision stands).
    struct Clock: Equatable, Sendable {
        var pk: Int64
        var deadline: String
        var killDecided: Bool
    }

    /// The executions whose wall clock has run out at `now`. Deadlines and `now` are stored timestamps
    /// (`Timestamp.string`, to the millisecond): compared as text, exactly as SQL compares them.
    static func timedOut(_ clocks: [Clock], now: String) -> [Int64] {
        clocks.filter { !$0.killDecided && $0.deadline <= now }.map(\.pk)
    }

    /// What a node that reboots (its `nodeRebootOption`) or leaves its pool (the resize's
    /// `nodeDeallocationOption`; requeue when its pool is deleted) does to the job tasks running on
    /// it: requeue or terminate them, or with taskcompletion or retaineddata let them finish (nil;
    /// retention periods are not awaited, spec §4.3).
    static func taskReason(_ option: NodeRebootOption) -> KillReason? {
        switch option {
        case .requeue: .requeue
        case .terminate: .terminate
        case .taskcompletion, .retaineddata: nil
        }
    }

    /// What disabling a job does to its running tasks (nil: they finish).
    static func disableReason(_ option: DisableJobOption) -> KillReason? {
        switch option {
        case .requeue: .requeue
        case .terminate: .terminate
        case .wait: nil
        }
    }

    /// A job that ends (terminate) or goes (delete) ends its running tasks and preparations.
    static func jobEndReason(deleting: Bool) -> KillReason {
        deleting ? .delete : .terminate
    }
}

/// Release tasks when a job ends (R3, R6): owed exactly on the nodes whose preparation completed,
/// once; started on those that are up.
enum ReleasePlan {
    /// A (job, node) record and the state of its node.
    struct NodeRecord: Equatable, Sendable {
        var nodePK: Int64
        var phase: JobNodePhase
        var node: NodeState
        /// A `leavingpool` node that leaves once its work is done (deallocation option
        /// `taskcompletion` or `retaineddata`), rather than at once.
        var drains: Bool = false
    }

    /// Whether the job's end owes a release on a node in `phase`: its preparation completed and no
    /// release was owed yet. A preparation still running owes none (the job's end killed it); a release
    /// owed, running or done is never owed again.
    static func owes(_ phase: JobNodePhase) -> Bool {
        switch phase {
        case .preparationCompleted: true
        case .preparationRunning, .releasePending, .releaseRunning, .releaseCompleted: false
        }
    }

    /// Whether a node in `state` runs an owed release now: a node that is up does, and so does one
    /// leaving the pool once its work is done (`drains`: it waits for its executions anyway, and the
    /// release is the last of them, R3); one booting, rebooting, leaving at once or gone waits.
    static func runsNow(on state: NodeState, drains: Bool = false) -> Bool {
        switch state {
        case .idle, .running, .starttaskfailed, .waitingforstarttask: true
        case .leavingpool: drains
        case .rebooting, .reimaging, .unusable, .creating, .starting, .unknown, .offline, .preempted, .upgradingos,
            .deallocated, .deallocating:
            false
        }
    }

    /// The nodes whose release starts in this pass: owed now (or owed earlier and still pending) on a
    /// node that is up.
    static func starts(_ records: [NodeRecord]) -> [Int64] {
        records.filter { (owes($0.phase) || $0.phase == .releasePending) && runsNow(on: $0.node, drains: $0.drains) }.map(\.nodePK)
    }

    /// Whether the job still waits for releases (owed or running) before it completes or goes.
    static func waits(_ phases: [JobNodePhase]) -> Bool {
        phases.contains { phase in
            switch phase {
            case .releasePending, .releaseRunning: true
            case .preparationRunning, .preparationCompleted, .releaseCompleted: false
            }
        }
    }
}
