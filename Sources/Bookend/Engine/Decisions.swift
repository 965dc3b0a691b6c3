import Foundation

// The scheduler's decisions as pure functions of what it read and the clock it was given: no SQL,
// no processes, no Date(). The scheduler reads, calls these, and hands their answers to the stores;
// DecisionTests drives them as tables.

/// A node that can take work now, with its free slots.
struct NodeSlots: Equatable, Sendable {
    var pk: Int64
    var free: Int
    var bootCount: Int
}

/// `taskSchedulingPolicy.nodeFillType`.
enum NodeFill: Equatable, Sendable {
    /// The node with the most free slots (ties: the older node).
    case spread
    /// The fullest node that still fits (ties: the older node).
    case pack

    init(_ stored: String?) {
        self = stored == "pack" ? .pack : .spread
    }
}

enum Placement {
    /// How many tasks of a job may start in this pass: the free slots, capped by `maxParallelTasks`
    /// (`-1` or absent: no cap) less the tasks already preparing or running.
    static func budget(freeSlots: Int, maxParallelTasks: Int?, running: Int) -> Int {
        guard let cap = maxParallelTasks, cap > 0 else { return freeSlots }
        return min(freeSlots, cap - running)
    }

    /// The most slots one node the job may use has free: only tasks needing at most this many are
    /// worth reading, so a task that fits no node never holds back the ones queued behind it.
    static func largestFit(_ slots: [NodeSlots], ineligible: Set<Int64>) -> Int {
        slots.filter { !ineligible.contains($0.pk) }.map(\.free).max() ?? 0
    }

    /// Places tasks, in order, each needing `needs[i]` slots, on `slots` (which it updates), at most
    /// `budget` of them. Returns (index into `needs`, node pk) per placed task; a task that fits no
    /// eligible node now is skipped and the next is tried.
    static func place(_ needs: [Int], on slots: inout [NodeSlots], ineligible: Set<Int64>, fill: NodeFill, budget: Int)
        -> [(task: Int, node: NodeSlots)]
    {
        var budget = budget
        var placed: [(task: Int, node: NodeSlots)] = []
        for (index, need) in needs.enumerated() {
            guard budget > 0 else { break }
            let fitting = slots.indices.filter { slots[$0].free >= need && !ineligible.contains(slots[$0].pk) }
            let chosen: Int?
            switch fill {
            case .pack: chosen = fitting.min { (slots[$0].free, slots[$0].pk) < (slots[$1].free, slots[$1].pk) }
            case .spread: chosen = fitting.max { (slots[$0].free, -slots[$0].pk) < (slots[$1].free, -slots[$1].pk) }
            }
            guard let chosen else { continue }
            placed.append((index, slots[chosen]))
            slots[chosen].free -= need
            budget -= 1
        }
        return placed
    }
}

/// Whether an assigned task's node must run the job's preparation first, and whether the task waits.
enum PreparationDecision {
    struct Answer: Equatable, Sendable {
        /// Run (or rerun) the preparation on the node now.
        var runPreparation: Bool
        /// The task waits `preparing` for it (waitForSuccess); otherwise it starts now.
        var taskWaits: Bool
    }

    /// - Parameters:
    ///   - record: the (job, node) record, nil when preparation never ran there.
    ///   - nodeBootCount: the node's current boot; a record from an earlier boot may have to run again.
    ///   - liveAttempt: a preparation execution on the node has not completed.
    static func decide(
        record: (phase: JobNodePhase, result: ExecutionResult?, bootCount: Int)?, nodeBootCount: Int, liveAttempt: Bool,
        rerunOnNodeRebootAfterSuccess: Bool?, waitForSuccess: Bool?
    ) -> Answer {
        let succeeded = record?.result == .success
        let staleBoot = (record?.bootCount ?? nodeBootCount) < nodeBootCount
        // A record left running with no live attempt lost its process (the engine stopped between
        // commit and spawn, or the attempt vanished): it runs again.
        let lost = record?.phase == .preparationRunning && !liveAttempt
        let run = record == nil || (staleBoot && (!succeeded || rerunOnNodeRebootAfterSuccess != false)) || lost
        let ready = !run && (succeeded || record?.phase.preparation == .completed)
        return Answer(runPreparation: run, taskWaits: waitForSuccess != false && !ready)
    }
}

/// What a task's ended execution does to the task.
enum TaskExitDecision: Equatable, Sendable {
    /// Interrupted without a result of its own: it runs again (requeueCount + 1).
    case requeue
    /// Non-zero exit with retries left while the job is live (retryCount + 1).
    case retry(exitCode: Int32)
    /// Anything else ends it.
    case complete

    static func decide(_ outcome: Outcome, retryCount: Int, maxRetryCount: Int, job: JobState) -> TaskExitDecision {
        switch outcome {
        case .interrupted:
            return .requeue
        case .exited(let code) where code != 0:
            return RetryRule.allowsAnother(retryCount: retryCount, maxRetryCount: maxRetryCount) && job.isLive ? .retry(exitCode: code) : .complete
        case .exited, .ended, .preProcessing, .fault:
            return .complete
        }
    }
}

/// Why an active job ends on its own in this pass, if it does.
enum JobEndDecision {
    /// `MaxWallClockTimeExpiry` once `maxWallClockTime` has passed since creation (`now` is the pass's
    /// clock); else `AllTasksComplete` when onAllTasksComplete is terminatejob and no task is active
    /// or running; else nil.
    static func terminateReason(
        created: Date?, maxWallClockMilliseconds: Int64?, terminateWhenAllComplete: Bool, unfinishedTasks: () throws -> Int, now: Date
    ) rethrows -> String? {
        if let limit = maxWallClockMilliseconds, let created, created.addingTimeInterval(Double(limit) / 1000) <= now {
            return "MaxWallClockTimeExpiry"
        }
        if terminateWhenAllComplete, try unfinishedTasks() == 0 { return "AllTasksComplete" }
        return nil
    }
}
