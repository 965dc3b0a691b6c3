@testable import Bookend
import Foundation
import Testing

/// The scheduler's decisions as tables: no database, no processes, the clock given.
@Suite struct DecisionTests {
    // MARK: Placement

    struct PlacementCase: Sendable, CustomTestStringConvertible {
        var name: String
        var needs: [Int]
        var slots: [(pk: Int64, free: Int)]
        var ineligible: Set<Int64> = []
        var fill: NodeFill
        var budget: Int
        /// The node pk each placed task gets, by task index.
        var expected: [Int: Int64]
        var testDescription: String { name }
    }

    static let placements: [PlacementCase] = [
        PlacementCase(name: "spread takes the node with most free slots", needs: [1, 1, 1], slots: [(1, 1), (2, 3)], fill: .spread,
            budget: 10, expected: [0: 2, 1: 2, 2: 1]),
        PlacementCase(name: "spread breaks ties toward the older node", needs: [1, 1], slots: [(2, 2), (1, 2)], fill: .spread, budget: 10,
            expected: [0: 1, 1: 2]),
        PlacementCase(name: "pack fills the fullest node that fits", needs: [1, 1, 1], slots: [(1, 3), (2, 1)], fill: .pack, budget: 10,
            expected: [0: 2, 1: 1, 2: 1]),
        PlacementCase(name: "pack breaks ties toward the older node", needs: [2], slots: [(3, 2), (2, 2)], fill: .pack, budget: 10,
            expected: [0: 2]),
        PlacementCase(name: "an ineligible node gets nothing", needs: [1, 1], slots: [(1, 5), (2, 1)], ineligible: [1], fill: .spread,
            budget: 10, expected: [0: 2]),
        PlacementCase(name: "a task that fits no node now is skipped, the next is placed", needs: [3, 1], slots: [(1, 2)], fill: .spread,
            budget: 10, expected: [1: 1]),
        PlacementCase(name: "the budget stops placement", needs: [1, 1, 1], slots: [(1, 5)], fill: .spread, budget: 2,
            expected: [0: 1, 1: 1]),
        PlacementCase(name: "no budget, nothing placed", needs: [1], slots: [(1, 5)], fill: .pack, budget: 0, expected: [:]),
    ]

    @Test(arguments: placements)
    func placement(_ c: PlacementCase) {
        var slots = c.slots.map { NodeSlots(pk: $0.pk, free: $0.free, bootCount: 1) }
        let before = slots.reduce(0) { $0 + $1.free }
        let placed = Placement.place(c.needs, on: &slots, ineligible: c.ineligible, fill: c.fill, budget: c.budget)
        #expect(Dictionary(uniqueKeysWithValues: placed.map { ($0.task, $0.node.pk) }) == c.expected)
        // The slots handed out are taken from the nodes.
        #expect(slots.reduce(0) { $0 + $1.free } == before - placed.map { c.needs[$0.task] }.reduce(0, +))
        #expect(slots.allSatisfy { $0.free >= 0 })
    }

    @Test(arguments: [
        (5, nil as Int?, 0, 5), (5, -1, 3, 5), (5, 2, 0, 2), (5, 2, 1, 1), (5, 2, 2, 0), (5, 2, 3, -1), (1, 10, 0, 1),
    ])
    func budget(_ free: Int, _ cap: Int?, _ running: Int, _ expected: Int) {
        #expect(Placement.budget(freeSlots: free, maxParallelTasks: cap, running: running) == expected)
    }

    @Test func largestFitIgnoresIneligibleNodes() {
        let slots = [NodeSlots(pk: 1, free: 4, bootCount: 1), NodeSlots(pk: 2, free: 2, bootCount: 1)]
        #expect(Placement.largestFit(slots, ineligible: []) == 4)
        #expect(Placement.largestFit(slots, ineligible: [1]) == 2)
        #expect(Placement.largestFit(slots, ineligible: [1, 2]) == 0)
    }

    @Test(arguments: [(nil as String?, NodeFill.spread), ("spread", .spread), ("pack", .pack)])
    func nodeFill(_ stored: String?, _ fill: NodeFill) { #expect(NodeFill(stored) == fill) }

    // MARK: Preparation

    struct PreparationCase: Sendable, CustomTestStringConvertible {
        var name: String
        var record: (phase: JobNodePhase, result: ExecutionResult?, bootCount: Int)?
        var nodeBootCount = 1
        var liveAttempt = false
        var rerun: Bool? = nil
        var wait: Bool? = nil
        var run: Bool
        var taskWaits: Bool
        var testDescription: String { name }
    }

    static let preparations: [PreparationCase] = [
        PreparationCase(name: "first task on the node: prepare, the task waits", record: nil, run: true, taskWaits: true),
        PreparationCase(name: "first task, waitForSuccess false: prepare, the task starts", record: nil, wait: false, run: true, taskWaits: false),
        PreparationCase(name: "succeeded on this boot: the task starts", record: (.preparationCompleted, .success, 1), run: false, taskWaits: false),
        PreparationCase(name: "still running with a live attempt: the task waits", record: (.preparationRunning, nil, 1), liveAttempt: true,
            run: false, taskWaits: true),
        PreparationCase(name: "running but its attempt was lost: run again", record: (.preparationRunning, nil, 1), run: true, taskWaits: true),
        PreparationCase(name: "succeeded before a reboot: rerun by default", record: (.preparationCompleted, .success, 1), nodeBootCount: 2,
            run: true, taskWaits: true),
        PreparationCase(name: "succeeded before a reboot, rerunOnNodeRebootAfterSuccess false: no rerun",
            record: (.preparationCompleted, .success, 1), nodeBootCount: 2, rerun: false, run: false, taskWaits: false),
        PreparationCase(name: "failed before a reboot: always rerun", record: (.preparationCompleted, .failure, 1), nodeBootCount: 2,
            rerun: false, run: true, taskWaits: true),
        PreparationCase(name: "failed on this boot, waitForSuccess false: the task starts", record: (.preparationCompleted, .failure, 1),
            wait: false, run: false, taskWaits: false),
    ]

    @Test(arguments: preparations)
    func preparation(_ c: PreparationCase) {
        let answer = PreparationDecision.decide(record: c.record, nodeBootCount: c.nodeBootCount, liveAttempt: c.liveAttempt,
            rerunOnNodeRebootAfterSuccess: c.rerun, waitForSuccess: c.wait)
        #expect(answer == PreparationDecision.Answer(runPreparation: c.run, taskWaits: c.taskWaits))
    }

    // MARK: A task's exit

    @Test(arguments: [
        (Outcome.interrupted, 0, 0, JobState.active, TaskExitDecision.requeue),
        (.exited(0), 0, 3, .active, .complete),
        (.exited(2), 0, 3, .active, .retry(exitCode: 2)),
        (.exited(2), 3, 3, .active, .complete),
        (.exited(2), 99, -1, .disabled, .retry(exitCode: 2)),
        (.exited(2), 0, 3, .terminating, .complete),
        (.exited(2), 0, 3, .deleting, .complete),
        (.ended(reason: "UserTerminate", exitCode: 137), 0, 3, .active, .complete),
        (.preProcessing(FailureInfo(code: "CommandProgramNotFound", message: nil)), 0, 3, .active, .complete),
        (.fault(FailureInfo(category: "servererror", code: "ExitStatusNotRecorded", message: nil)), 0, 3, .active, .complete),
    ])
    func taskExit(_ outcome: Outcome, _ retries: Int, _ max: Int, _ job: JobState, _ expected: TaskExitDecision) {
        #expect(TaskExitDecision.decide(outcome, retryCount: retries, maxRetryCount: max, job: job) == expected)
    }

    // MARK: A job's own end

    static let created = Date(timeIntervalSince1970: 1_800_000_000)

    @Test(arguments: [
        (nil as Int64?, false, 0, 3_600.0, nil as String?),
        (60_000, false, 5, 59.999, nil),
        (60_000, false, 5, 60.0, "MaxWallClockTimeExpiry"),
        (60_000, true, 0, 61.0, "MaxWallClockTimeExpiry"),
        (nil, true, 0, 1.0, "AllTasksComplete"),
        (nil, true, 1, 1.0, nil),
        (nil, false, 0, 1.0, nil),
    ])
    func jobEnd(_ wallClock: Int64?, _ whenAllComplete: Bool, _ unfinished: Int, _ elapsed: Double, _ expected: String?) {
        let reason = JobEndDecision.terminateReason(created: Self.created, maxWallClockMilliseconds: wallClock,
            terminateWhenAllComplete: whenAllComplete, unfinishedTasks: { unfinished }, now: Self.created.addingTimeInterval(elapsed))
        #expect(reason == expected)
    }
}
