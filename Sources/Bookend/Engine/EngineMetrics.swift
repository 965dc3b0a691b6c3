import CoreMetrics
import Foundation

/// The engine's counters and histograms, made through a swift-metrics factory
/// (`EngineConfiguration.metricsFactory`, else whatever `MetricsSystem` was bootstrapped with, which is
/// a no-op unless the embedding program chose a backend). Gauges of stored state (nodes by state, jobs
/// by state, waiting tasks) are not here: they are read from the database when scraped
/// (`Engine.operationalState()`), so they cannot drift from what the tables say.
///
/// The engine feeds this from few places: the committed events of each transaction (task
/// completions), what a transaction queued for after its commit (execution completions, task
/// starts), the pass loop, the launch batch and the reconciler. Names follow Prometheus conventions;
/// docs/operations.md lists every metric.
final class EngineMetrics: Sendable {
    let factory: any MetricsFactory
    let passDuration: CoreMetrics.Timer
    let commitDuration: CoreMetrics.Timer
    let launchDuration: CoreMetrics.Timer
    let startLatency: CoreMetrics.Timer

    init(factory: (any MetricsFactory)?) {
        let factory = factory ?? MetricsSystem.factory
        self.factory = factory
        passDuration = Timer(label: "bookend_scheduler_pass_duration_seconds", dimensions: [], factory: factory)
        commitDuration = Timer(label: "bookend_sqlite_commit_duration_seconds", dimensions: [], factory: factory)
        launchDuration = Timer(label: "bookend_launch_duration_seconds", dimensions: [], factory: factory)
        startLatency = Timer(label: "bookend_task_start_latency_seconds", dimensions: [], factory: factory)
    }

    /// What a write transaction leaves to be counted once it has committed (a rolled-back one
    /// counts nothing).
    enum Observation {
        case executionCompleted(kind: ExecutionKind, result: String)
        case taskStarted(submitted: Date, started: Date)
    }

    func record(_ observation: Observation) {
        switch observation {
        case .executionCompleted(let kind, let result):
            Counter(label: "bookend_executions_completed_total", dimensions: [("kind", kind.rawValue), ("result", result)], factory: factory)
                .increment()
        case .taskStarted(let submitted, let started):
            startLatency.recordNanoseconds(Int64(max(0, started.timeIntervalSince(submitted)) * 1_000_000_000))
        }
    }

    /// Counts what the committed events say: tasks completed by result (`detail` of `task.completed`).
    func record(committed events: [EngineEvent]) {
        for event in events where event.kind == "task.completed" {
            Counter(label: "bookend_tasks_completed_total", dimensions: [("result", EngineMetrics.result(fromDetail: event.detail))], factory: factory)
                .increment()
        }
    }

    /// What the reconciler did with an execution a previous engine left running.
    enum Recovery: String {
        /// Still running: watched again.
        case adopted
        /// Vanished without an exit status: treated like a lost node.
        case lost
        /// Ended while no engine watched: its exit file is recorded now.
        case collected
        /// Committed as starting but never spawned: started now.
        case respawned
    }

    func record(_ recovery: Recovery, count: Int) {
        guard count > 0 else { return }
        Counter(label: "bookend_recovered_executions_total", dimensions: [("outcome", recovery.rawValue)], factory: factory)
            .increment(by: Int64(count))
    }

    func record(_ timer: CoreMetrics.Timer, since start: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// `success` or `failure` from a `task.completed` event's `{"result":…}`.
    static func result(fromDetail detail: String?) -> String {
        // The engine writes exactly these two (TaskStore.transition's `.complete`); anything else is parsed.
        switch detail {
        case #"{"result":"success"}"#: return "success"
        case #"{"result":"failure"}"#: return "failure"
        default: break
        }
        guard let data = detail?.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let result = object["result"] as? String
        else { return "unknown" }
        return result
    }
}
