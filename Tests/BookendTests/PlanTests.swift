@testable import Bookend
import Foundation
import SQLite
import Testing

/// The pass's plan as tables (no database, no processes, the clock given), and what its apply
/// transaction does when a guard finds the world moved (a real migrated database, no processes).
/// A task's retry versus its final failure is `DecisionTests.taskExit`; its table is the pass's too.
@Suite struct PlanTests {
    // MARK: Placement with preparation

    struct DispatchCase: Sendable, CustomTestStringConvertible {
        var name: String
        var needs: [Int]
        var slots: [(pk: Int64, free: Int, boot: Int)]
        var ineligible: Set<Int64> = []
        var preparation: DispatchPlan.Preparation? = DispatchPlan.Preparation()
        var records: [Int64: DispatchPlan.NodeRecord] = [:]
        var expected: [DispatchPlan.Assignment]
        var testDescription: String { name }
    }

    static func node(_ pk: Int64, _ free: Int, boot: Int = 1) -> NodeSlots { NodeSlots(pk: pk, free: free, bootCount: boot) }

    static let dispatches: [DispatchCase] = [
        DispatchCase(name: "preparation first on a fresh node, the task waits for it", needs: [1], slots: [(1, 2, 1)],
            expected: [.init(task: 0, node: node(1, 2), preparation: .first, taskWaits: true)]),
        DispatchCase(name: "preparation begins once per node in a pass; the next task there waits for the same one", needs: [1, 1],
            slots: [(1, 2, 1)],
            expected: [.init(task: 0, node: node(1, 2), preparation: .first, taskWaits: true),
                .init(task: 1, node: node(1, 1), preparation: nil, taskWaits: true)]),
        DispatchCase(name: "waitForSuccess false: preparation begins and the task starts beside it", needs: [1], slots: [(1, 1, 1)],
            preparation: .init(waitForSuccess: false),
            expected: [.init(task: 0, node: node(1, 1), preparation: .first, taskWaits: false)]),
        DispatchCase(name: "a node prepared on this boot runs the task at once", needs: [1], slots: [(1, 1, 2)],
            records: [1: .init(phase: .preparationCompleted, result: .success, bootCount: 2, liveAttempt: false)],
            expected: [.init(task: 0, node: node(1, 1, boot: 2), preparation: nil, taskWaits: false)]),
        DispatchCase(name: "a failed preparation (waitForSuccess) made its node ineligible: the task goes to a fresh node",
            needs: [1], slots: [(1, 4, 1), (2, 1, 1)], ineligible: [1],
            records: [1: .init(phase: .preparationCompleted, result: .failure, bootCount: 1, liveAttempt: false)],
            expected: [.init(task: 0, node: node(2, 1), preparation: .first, taskWaits: true)]),
        DispatchCase(name: "a failed preparation without waitForSuccess leaves the node eligible and is not rerun", needs: [1],
            slots: [(1, 1, 1)], preparation: .init(waitForSuccess: false),
            records: [1: .init(phase: .preparationCompleted, result: .failure, bootCount: 1, liveAttempt: false)],
            expected: [.init(task: 0, node: node(1, 1), preparation: nil, taskWaits: false)]),
        DispatchCase(name: "rebooted since a success: preparation reruns by default", needs: [1], slots: [(1, 1, 3)],
            records: [1: .init(phase: .preparationCompleted, result: .success, bootCount: 2, liveAttempt: false)],
            expected: [.init(task: 0, node: node(1, 1, boot: 3), preparation: .rerun(from: .preparationCompleted), taskWaits: true)]),
        DispatchCase(name: "rebooted since a success, rerunOnNodeRebootAfterSuccess false: no rerun", needs: [1], slots: [(1, 1, 3)],
            preparation: .init(rerunOnNodeRebootAfterSuccess: false),
            records: [1: .init(phase: .preparationCompleted, result: .success, bootCount: 2, liveAttempt: false)],
            expected: [.init(task: 0, node: node(1, 1, boot: 3), preparation: nil, taskWaits: false)]),
        DispatchCase(name: "a preparation running with a live attempt: the task waits, nothing begins", needs: [1], slots: [(1, 1, 1)],
            records: [1: .init(phase: .preparationRunning, result: nil, bootCount: 1, liveAttempt: true)],
            expected: [.init(task: 0, node: node(1, 1), preparation: nil, taskWaits: true)]),
        DispatchCase(name: "a preparation left running with no live attempt (lost) runs again", needs: [1], slots: [(1, 1, 1)],
            records: [1: .init(phase: .preparationRunning, result: nil, bootCount: 1, liveAttempt: false)],
            expected: [.init(task: 0, node: node(1, 1), preparation: .rerun(from: .preparationRunning), taskWaits: true)]),
        DispatchCase(name: "no preparation task: tasks start", needs: [1, 1], slots: [(1, 1, 1), (2, 1, 1)], preparation: nil,
            expected: [.init(task: 0, node: node(1, 1), preparation: nil, taskWaits: false),
                .init(task: 1, node: node(2, 1), preparation: nil, taskWaits: false)]),
        DispatchCase(name: "only ineligible nodes: nothing is placed", needs: [1], slots: [(1, 3, 1)], ineligible: [1], expected: []),
    ]

    @Test(arguments: dispatches)
    func dispatch(_ c: DispatchCase) {
        var slots = c.slots.map { NodeSlots(pk: $0.pk, free: $0.free, bootCount: $0.boot) }
        let assignments = DispatchPlan.assign(c.needs, on: &slots, ineligible: c.ineligible, fill: .spread, budget: 10,
            preparation: c.preparation, records: c.records)
        #expect(assignments == c.expected)
    }

    // MARK: Kills due

    @Test(arguments: [
        ("2026-11-30T10:00:00.000Z", false, true),   // passed
        ("2026-11-30T10:00:00.500Z", false, true),   // this very millisecond
        ("2026-11-30T10:00:00.501Z", false, false),  // not yet
        ("2026-11-30T09:00:00.000Z", true, false),   // passed, but a reason is recorded already: the first decision stands
    ])
    func wallClock(_ deadline: String, _ killDecided: Bool, _ due: Bool) {
        let clocks = [KillPlan.Clock(pk: 7, deadline: deadline, killDecided: killDecided)]
        #expect(KillPlan.timedOut(clocks, now: "2026-11-30T10:00:00.500Z") == (due ? [7] : []))
    }

    @Test(arguments: [
        (NodeRebootOption.requeue, KillReason?.some(.requeue)),
        (.terminate, .terminate),
        (.taskcompletion, nil),
        (.retaineddata, nil),
    ])
    func nodeKills(_ option: NodeRebootOption, _ expected: KillReason?) {
        #expect(KillPlan.taskReason(option) == expected)
    }

    @Test func jobKills() {
        #expect(KillPlan.disableReason(.requeue) == .requeue)
        #expect(KillPlan.disableReason(.terminate) == .terminate)
        #expect(KillPlan.disableReason(.wait) == nil)
        #expect(KillPlan.jobEndReason(deleting: false) == .terminate)
        #expect(KillPlan.jobEndReason(deleting: true) == .delete)
    }

    // MARK: Releases when a job ends

    struct ReleaseCase: Sendable, CustomTestStringConvertible {
        var name: String
        var records: [ReleasePlan.NodeRecord]
        var starts: [Int64]
        var waitsAfterwards: Bool
        var testDescription: String { name }
    }

    static let releases: [ReleaseCase] = [
        ReleaseCase(name: "owed on exactly the nodes whose preparation completed, whatever its result",
            records: [.init(nodePK: 1, phase: .preparationCompleted, node: .idle), .init(nodePK: 2, phase: .preparationCompleted, node: .running),
                .init(nodePK: 3, phase: .preparationRunning, node: .idle)],
            starts: [1, 2], waitsAfterwards: true),
        ReleaseCase(name: "never twice: a release running or done is not started again",
            records: [.init(nodePK: 1, phase: .releaseRunning, node: .running), .init(nodePK: 2, phase: .releaseCompleted, node: .idle)],
            starts: [], waitsAfterwards: true),
        ReleaseCase(name: "a node that is not up keeps its release pending",
            records: [.init(nodePK: 1, phase: .releasePending, node: .rebooting), .init(nodePK: 2, phase: .releasePending, node: .starttaskfailed)],
            starts: [2], waitsAfterwards: true),
        ReleaseCase(name: "a node leaving once its work is done runs its release; one leaving at once does not",
            records: [.init(nodePK: 1, phase: .releasePending, node: .leavingpool, drains: true),
                .init(nodePK: 2, phase: .releasePending, node: .leavingpool, drains: false)],
            starts: [1], waitsAfterwards: true),
        ReleaseCase(name: "every release done: the job goes on", records: [.init(nodePK: 1, phase: .releaseCompleted, node: .idle)],
            starts: [], waitsAfterwards: false),
        ReleaseCase(name: "no node prepared: no release, nothing to wait for", records: [], starts: [], waitsAfterwards: false),
    ]

    @Test(arguments: releases)
    func release(_ c: ReleaseCase) throws {
        #expect(ReleasePlan.starts(c.records) == c.starts)
        // What the stores leave: owed ones pending, started ones running.
        let after = c.records.map { record -> JobNodePhase in
            if c.starts.contains(record.nodePK) { return .releaseRunning }
            return ReleasePlan.owes(record.phase) ? .releasePending : record.phase
        }
        #expect(ReleasePlan.waits(after) == c.waitsAfterwards)
    }

    // MARK: A guard that misses

    static let now = "2026-11-30T12:00:00.000Z"

    static func row(_ db: Connection, _ table: String, pk: Int64) throws -> [SQLiteValue] {
        try #require(db.query("SELECT * FROM \(table) WHERE pk = ?", [pk]).first).values
    }

    @Test func aKillDecidedForAnExecutionThatCompletedMeanwhileWritesNothing() throws {
        let data = try StoreTests.sample()
        let db = data.connection
        let before = try Self.row(db, "execution", pk: 3)
        try ExecutionStore.decideKill(db, .timeout, where: "pk = ?", [3])
        #expect(try Self.row(db, "execution", pk: 3) == before)
    }

    @Test func theFirstKillDecisionStands() throws {
        let data = try StoreTests.sample()
        let db = data.connection
        try ExecutionStore.decideKill(db, .terminate, where: "pk = ?", [9])
        try ExecutionStore.decideKill(db, .timeout, where: "pk = ?", [9])
        #expect(try db.values("SELECT kill_reason FROM execution WHERE pk = 9") == [[.text("terminate")]])
    }

    @Test func anExitRecordedTwiceIsRecordedOnce() throws {
        let data = try StoreTests.sample()
        let db = data.connection
        #expect(try ExecutionStore.complete(db, pk: 9, now: Self.now, exitCode: 0, result: .success, failureInfo: nil, interrupted: false))
        let completed = try Self.row(db, "execution", pk: 9)
        #expect(try !ExecutionStore.complete(db, pk: 9, now: Self.now, exitCode: 3, result: .failure, failureInfo: nil, interrupted: false))
        #expect(try Self.row(db, "execution", pk: 9) == completed)
    }

    @Test func aReleaseStartedFromAPhaseItLeftThrowsAndWritesNothing() throws {
        let data = try StoreTests.sample()
        let db = data.connection
        // (job 2, node 3): preparation completed, no release owed: starting one misses the guard.
        let before = try db.values("SELECT * FROM job_node WHERE job_pk = 2 AND node_pk = 3")
        let events = try db.count("event")
        var log: [EngineEvent] = []
        #expect(throws: BookendError.self) {
            try JobNodeStore.startRelease(db, JobNodeKey(jobPK: 2, nodePK: 3, jobID: "etl", poolID: "render", nodeID: nil), now: Self.now,
                log: &log)
        }
        #expect(try db.values("SELECT * FROM job_node WHERE job_pk = 2 AND node_pk = 3") == before)
        #expect(try db.count("event") == events)
        #expect(log.isEmpty)
    }
}
