import Bookend
import CoreMetrics
import Foundation
import Prometheus

/// The Prometheus registry behind `GET /metrics`, and the swift-metrics factory that feeds it.
///
/// `bookend serve` makes one, hands `factory` to the engine (`EngineConfiguration.metricsFactory`)
/// and to the HTTP middleware, and answers `/metrics` with `exposition(engine:)`. A program that embeds
/// the library does the same to get the same metrics:
///
/// ```swift
/// let metrics = BookendMetrics()
/// let engine = try await Engine.open(dataDirectory: dir, configuration: .init(metricsFactory: metrics.factory))
/// let text = try metrics.exposition(engine: engine)   // Prometheus text format
/// ```
///
/// Counters and histograms come from the engine's code paths; gauges of stored state (nodes, jobs,
/// live executions, waiting tasks, database and WAL size) are read from the database at each scrape.
/// Other parts of Bookend add their own metrics with `counter(_:help:labels:)` and `gauge(_:help:labels:)`.
public final class BookendMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory
    private let scraped: ScrapedGauges

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Passes, commits and launches take microseconds to milliseconds: the default buckets
        // (5 ms up) would put nearly everything in the first one.
        let fast: [Duration] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2_500),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .seconds(1),
        ].sorted()
        for name in ["bookend_scheduler_pass_duration_seconds", "bookend_sqlite_commit_duration_seconds", "bookend_launch_duration_seconds",
            "bookend_http_request_duration_seconds"]
        {
            factory.durationHistogramBuckets[name] = fast
        }
        factory.durationHistogramBuckets["bookend_task_start_latency_seconds"] = [
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(5), .seconds(30), .seconds(60), .seconds(300), .seconds(1800), .seconds(3600),
        ]
        self.factory = factory
        scraped = ScrapedGauges(registry: registry)
    }

    /// A counter in this registry (the same one for the same name and labels), for code outside the
    /// engine that wants to count something, e.g. deletions under disk pressure. Give a name the same
    /// help text every time, and never a name the engine already records (docs/operations.md lists
    /// them): swift-prometheus stops the process on two help texts for one name.
    public func counter(_ name: String, help: String, labels: [(String, String)] = []) -> Prometheus.Counter {
        registry.makeCounter(descriptor: BookendMetrics.descriptor(name, help), labels: labels)
    }

    /// A gauge in this registry (the same one for the same name and labels); the same rule about
    /// names and help texts as `counter`.
    public func gauge(_ name: String, help: String, labels: [(String, String)] = []) -> Prometheus.Gauge {
        registry.makeGauge(descriptor: BookendMetrics.descriptor(name, help), labels: labels)
    }

    /// The whole registry in the Prometheus text format (0.0.4), after reading the gauges of stored
    /// state from `engine`. Blocks on SQLite for a few grouped counts: call it off the cooperative
    /// pool (`engine.lookup { _ in try metrics.exposition(engine: engine) }`).
    public func exposition(engine: Engine) throws -> String {
        try scraped.update(with: engine.operationalState(), housekeeping: engine.housekeepingReport())
        return registry.emitToString()
    }

    /// A whole metric name (its unit already in it, as in `bookend_nodes` or `…_seconds`) with its help.
    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// The Prometheus text format's content type.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// Gauges set from an `OperationalState` at each scrape. A label set that no longer occurs (a pool
/// deleted, a state left empty) is unregistered, so the exposition never shows a stale value.
final class ScrapedGauges: @unchecked Sendable {
    // @unchecked: `current` is only touched under `lock`; the registry is Sendable itself.
    private let lock = NSLock()
    private let registry: PrometheusCollectorRegistry
    private var current: [String: Prometheus.Gauge] = [:]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    private struct Reading {
        var name: String
        var help: String
        var labels: [(String, String)]
        var value: Double
        var key: String { name + "|" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") }
    }

    func update(with state: OperationalState, housekeeping: HousekeepingReport? = nil) {
        var readings: [Reading] = []
        if let housekeeping { readings += Self.readings(housekeeping) }
        for (key, count) in state.liveExecutions {
            readings.append(Reading(name: "bookend_executions_live", help: "Executions starting or running, by kind and state.",
                labels: [("kind", key.first), ("state", key.second)], value: Double(count)))
        }
        readings.append(Reading(name: "bookend_tasks_active", help: "Tasks waiting to run (state active).", labels: [],
            value: Double(state.activeTasks)))
        for (key, count) in state.nodes {
            readings.append(Reading(name: "bookend_nodes", help: "Nodes in a pool, by pool and node state.",
                labels: [("pool", key.first), ("state", key.second)], value: Double(count)))
        }
        for (jobState, count) in state.jobs {
            readings.append(Reading(name: "bookend_jobs", help: "Jobs by state.", labels: [("state", jobState)], value: Double(count)))
        }
        readings.append(Reading(name: "bookend_sqlite_database_bytes", help: "Size of bookend.db in bytes.", labels: [],
            value: Double(state.databaseBytes)))
        readings.append(Reading(name: "bookend_sqlite_wal_bytes", help: "Size of the write-ahead log bookend.db-wal in bytes.", labels: [],
            value: Double(state.walBytes)))

        lock.lock()
        defer { lock.unlock() }
        var next: [String: Prometheus.Gauge] = [:]
        for reading in readings {
            let gauge = current[reading.key] ?? registry.makeGauge(descriptor: BookendMetrics.descriptor(reading.name, reading.help), labels: reading.labels)
            gauge.set(reading.value)
            next[reading.key] = gauge
        }
        for (key, gauge) in current where next[key] == nil { registry.unregisterGauge(gauge) }
        current = next
    }

    /// Disk and history housekeeping (`Engine.housekeepingReport()`): what the node folders' file system
    /// has left, whether the engine is deleting early because of it, and what it deleted and pruned.
    /// The deletion counts are since the engine opened, so they are gauges, not `_total` counters.
    private static func readings(_ report: HousekeepingReport) -> [Reading] {
        var readings: [Reading] = [
            Reading(name: "bookend_disk_pressure", help: "1 while free space on the node folders' file system is below --min-free-disk, else 0.",
                labels: [], value: report.underDiskPressure ? 1 : 0),
            Reading(name: "bookend_sqlite_free_pages", help: "Pages of bookend.db that hold nothing (PRAGMA freelist_count).",
                labels: [], value: Double(report.freePages)),
            Reading(name: "bookend_folders_deleted", help: "Execution folders deleted since the engine opened, by reason (retention or disk-pressure).",
                labels: [("reason", "retention")], value: Double(report.filesDeletedByRetention)),
            Reading(name: "bookend_folders_deleted", help: "Execution folders deleted since the engine opened, by reason (retention or disk-pressure).",
                labels: [("reason", "disk-pressure")], value: Double(report.filesDeletedUnderDiskPressure)),
            Reading(name: "bookend_history_events_pruned", help: "Events of deleted jobs pruned by --history-retention since the engine opened.",
                labels: [], value: Double(report.historyEventsPruned)),
        ]
        if let space = report.nodesFileSystem {
            readings.append(Reading(name: "bookend_nodes_filesystem_available_bytes", help: "Bytes tasks may still write on the node folders' file system.",
                labels: [], value: Double(space.availableBytes)))
            readings.append(Reading(name: "bookend_nodes_filesystem_available_inodes", help: "Inodes still free on the node folders' file system.",
                labels: [], value: Double(space.availableInodes)))
        }
        return readings
    }
}
