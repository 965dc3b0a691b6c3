import Bookend
import Foundation
import Testing

/// Every (state, event) pair of every machine: the legal ones lead where this file says, written out
/// by hand and independently of the machines; every other pair throws a conflict and leads nowhere.
@Suite struct StateMachineTests {
    static let task: [TaskState: [TaskEvent: TaskState]] = [
        .active: [.waitForPreparation: .preparing, .start: .running, .complete: .completed],
        .preparing: [.start: .running, .unassign: .active, .requeue: .active, .complete: .completed],
        .running: [.requeue: .active, .retry: .active, .complete: .completed],
        .completed: [.reactivate: .active],
    ]

    static let job: [JobState: [JobEvent: JobState]] = [
        .active: [.disable: .disabling, .enable: .active, .terminate: .terminating, .delete: .deleting],
        .disabling: [.disable: .disabling, .tasksStopped: .disabled, .enable: .enabling, .terminate: .terminating, .delete: .deleting],
        .disabled: [.disable: .disabled, .enable: .enabling, .terminate: .terminating, .delete: .deleting],
        .enabling: [.enable: .enabling, .resume: .active, .terminate: .terminating, .delete: .deleting],
        .terminating: [.terminate: .terminating, .complete: .completed, .delete: .deleting],
        .completed: [.delete: .deleting],
        .deleting: [:],
    ]

    static let pool: [PoolState: [PoolEvent: PoolState]] = [
        .active: [.resize: .active, .delete: .deleting],
        .deleting: [:],
    ]

    static let allocation: [AllocationState: [AllocationEvent: AllocationState]] = [
        .steady: [.resize: .resizing],
        .resizing: [.settle: .steady],
    ]

    static let node: [NodeState: [NodeEvent: NodeState]] = {
        var table: [NodeState: [NodeEvent: NodeState]] = [:]
        for state in NodeState.allCases where state != .leavingpool { table[state, default: [:]][.leave] = .leavingpool }
        table[.creating, default: [:]][.boot] = .starting
        table[.starting, default: [:]][.awaitStartTask] = .waitingforstarttask
        table[.starting, default: [:]][.ready] = .idle
        table[.waitingforstarttask, default: [:]][.ready] = .idle
        table[.waitingforstarttask, default: [:]][.startTaskFailed] = .starttaskfailed
        table[.idle, default: [:]][.busy] = .running
        table[.running, default: [:]][.free] = .idle
        for state in [NodeState.idle, .running] { table[state, default: [:]][.reboot] = .rebooting }
        table[.rebooting, default: [:]][.rebooted] = .creating
        table[.leavingpool, default: [:]][.removed] = .leavingpool
        return table
    }()

    static let execution: [ExecutionState: [ExecutionEvent: ExecutionState]] = [
        .starting: [.recordProcess: .running, .complete: .completed],
        .running: [.complete: .completed],
    ]

    static let jobNode: [JobNodePhase: [JobNodeEvent: JobNodePhase]] = [
        .preparationRunning: [.runPreparation: .preparationRunning, .retryPreparation: .preparationRunning, .completePreparation: .preparationCompleted],
        .preparationCompleted: [.runPreparation: .preparationRunning, .oweRelease: .releasePending],
        .releasePending: [.startRelease: .releaseRunning],
        .releaseRunning: [.interruptRelease: .releasePending, .completeRelease: .releaseCompleted],
    ]

    static func check<M: StateMachine>(_ machine: M.Type, _ table: [M.State: [M.Event: M.State]], _ state: M.State, _ event: M.Event) {
        if let expected = table[state]?[event] {
            #expect(throws: Never.self) { try M.next(from: state, on: event) }
            #expect((try? M.next(from: state, on: event)) == expected, "\(M.name): \(state.rawValue) on \(event.rawValue)")
        } else {
            let error = #expect(throws: BookendError.self, "\(M.name): \(state.rawValue) on \(event.rawValue) must be illegal") {
                try M.next(from: state, on: event)
            }
            #expect(error?.kind == .conflict)
        }
    }

    @Test(arguments: TaskState.allCases, TaskEvent.allCases)
    func task(_ state: TaskState, _ event: TaskEvent) { Self.check(TaskMachine.self, Self.task, state, event) }

    @Test(arguments: JobState.allCases, JobEvent.allCases)
    func job(_ state: JobState, _ event: JobEvent) { Self.check(JobMachine.self, Self.job, state, event) }

    @Test(arguments: PoolState.allCases, PoolEvent.allCases)
    func pool(_ state: PoolState, _ event: PoolEvent) { Self.check(PoolMachine.self, Self.pool, state, event) }

    @Test(arguments: AllocationState.allCases, AllocationEvent.allCases)
    func allocation(_ state: AllocationState, _ event: AllocationEvent) {
        Self.check(AllocationMachine.self, Self.allocation, state, event)
    }

    @Test(arguments: NodeState.allCases, NodeEvent.allCases)
    func node(_ state: NodeState, _ event: NodeEvent) { Self.check(NodeMachine.self, Self.node, state, event) }

    @Test(arguments: ExecutionState.allCases, ExecutionEvent.allCases)
    func execution(_ state: ExecutionState, _ event: ExecutionEvent) {
        Self.check(ExecutionMachine.self, Self.execution, state, event)
    }

    @Test(arguments: JobNodePhase.allCases, JobNodeEvent.allCases)
    func jobNode(_ state: JobNodePhase, _ event: JobNodeEvent) { Self.check(JobNodeMachine.self, Self.jobNode, state, event) }

    /// The API's answers for calls on a job or node in the wrong state keep their Batch codes.
    @Test(arguments: [
        (JobState.completed, JobEvent.terminate, "JobCompleted"), (.deleting, .terminate, "JobBeingDeleted"),
        (.deleting, .delete, "JobBeingDeleted"),
        (.terminating, .disable, "JobBeingTerminated"), (.terminating, .enable, "JobBeingTerminated"),
        (.enabling, .disable, "OperationInvalidForCurrentState"),
    ])
    func jobConflictCodes(_ state: JobState, _ event: JobEvent, _ code: String) {
        #expect(throws: BookendError.self) { try JobMachine.next(from: state, on: event) }
        #expect(Self.code { try JobMachine.next(from: state, on: event) } == code)
    }

    @Test(arguments: [
        (NodeState.rebooting, "NodeBeingRebooted"), (.creating, "NodeBeingCreated"), (.starting, "NodeBeingStarted"),
        (.leavingpool, "OperationInvalidForCurrentState"),
    ])
    func rebootConflictCodes(_ state: NodeState, _ code: String) {
        #expect(Self.code { try NodeMachine.next(from: state, on: .reboot) } == code)
    }

    @Test(arguments: [
        (TaskState.completed, TaskEvent.complete, "TaskCompleted"), (.running, .reactivate, "TaskNotCompleted"),
        (.active, .retry, "OperationInvalidForCurrentState"),
    ])
    func taskConflictCodes(_ state: TaskState, _ event: TaskEvent, _ code: String) {
        #expect(Self.code { try TaskMachine.next(from: state, on: event) } == code)
    }

    static func code(_ body: () throws -> Any) -> String? {
        do {
            _ = try body()
            return nil
        } catch let error as BookendError {
            return error.code
        } catch {
            return "\(error)"
        }
    }

    @Test(arguments: [
        (0, 0, false), (0, 1, true), (1, 1, false), (2, 3, true), (0, -1, true), (1_000_000, -1, true),
    ])
    func retryRule(_ retries: Int, _ max: Int, _ allowed: Bool) {
        #expect(RetryRule.allowsAnother(retryCount: retries, maxRetryCount: max) == allowed)
    }

    @Test(arguments: JobNodePhase.allCases)
    func jobNodePhaseRoundTripsThroughItsColumns(_ phase: JobNodePhase) throws {
        #expect(try JobNodePhase(preparation: phase.preparation, release: phase.release) == phase)
    }

    @Test func aReleaseBeforePreparationEndedIsACorruptRecord() {
        for release in ReleaseState.allCases {
            #expect(throws: BookendError.self) { try JobNodePhase(preparation: .running, release: release) }
        }
    }

    @Test func liveJobStatesAreTheOnesBeforeTheJobEnds() {
        #expect(JobState.allCases.filter(\.isLive) == [.active, .disabling, .disabled, .enabling])
    }
}

/// docs/state-machines.md has one `| from | event | to |` table per machine; it must list exactly the
/// machine's legal edges, so the document cannot drift from the code (nor the code from it).
@Suite struct StateMachineDocumentTests {
    static let document: String = (try? String(contentsOfFile: Repository.path("docs/state-machines.md"), encoding: .utf8)) ?? ""

    /// The rows of the table under `## <name>`: a `from` cell may list several states, comma-separated.
    static func edges(under name: String) -> Set<String> {
        var edges: Set<String> = []
        var inSection = false
        for line in document.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("## ") {
                inSection = line.dropFirst(3).trimmingCharacters(in: .whitespaces) == name
                continue
            }
            guard inSection, line.hasPrefix("|") else { continue }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "") }
            guard cells.count >= 3, cells[0] != "from", !cells[0].hasPrefix("-") else { continue }
            for from in cells[0].split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                // "(same state)": an event that leaves each listed state where it is.
                edges.insert("\(from) --\(cells[1])--> \(cells[2] == "(same state)" ? from : cells[2])")
            }
        }
        return edges
    }

    static func check<M: StateMachine>(_ machine: M.Type) {
        let code = Set(M.edges.map { "\($0.from.rawValue) --\($0.event.rawValue)--> \($0.to.rawValue)" })
        let documented = edges(under: M.name)
        #expect(!documented.isEmpty, "docs/state-machines.md has no table under ## \(M.name)")
        #expect(code.subtracting(documented).sorted() == [], "in the code, missing from docs/state-machines.md (## \(M.name))")
        #expect(documented.subtracting(code).sorted() == [], "in docs/state-machines.md (## \(M.name)), not in the code")
    }

    @Test func task() { Self.check(TaskMachine.self) }
    @Test func job() { Self.check(JobMachine.self) }
    @Test func pool() { Self.check(PoolMachine.self) }
    @Test func allocation() { Self.check(AllocationMachine.self) }
    @Test func node() { Self.check(NodeMachine.self) }
    @Test func execution() { Self.check(ExecutionMachine.self) }
    @Test func jobNode() { Self.check(JobNodeMachine.self) }
}
