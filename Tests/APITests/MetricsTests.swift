import Bookend
import Foundation
import Observability
import Testing

/// `GET /metrics`: what a scrape shows after a small job, read directly and through a real Prometheus
/// server scraping the live daemon.
@Suite struct MetricsTests {
    /// Samples of a Prometheus text exposition, keyed by `name{label="value",…}` with the labels
    /// sorted, so a test names a sample without caring about the order the registry printed them in.
    static func samples(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            result[canonical(String(line[..<space]))] = value
        }
        return result
    }

    static func canonical(_ series: String) -> String {
        guard let open = series.firstIndex(of: "{"), series.hasSuffix("}") else { return series }
        let labels = series[series.index(after: open)..<series.index(before: series.endIndex)]
            .split(separator: ",").map(String.init).sorted()
        return String(series[..<open]) + "{" + labels.joined(separator: ",") + "}"
    }

    static func key(_ name: String, _ labels: [String: String] = [:]) -> String {
        labels.isEmpty ? name : name + "{" + labels.map { "\($0.key)=\"\($0.value)\"" }.sorted().joined(separator: ",") + "}"
    }

    /// A pool of one node, a job, and tasks that succeed or fail as `commands` say; returns when all
    /// of them have completed and the node is idle again.
    static func runJob(_ server: LiveServer, pool: String, job: String, commands: [String]) async throws {
        #expect(try await server.send(.post, "/pools", body: #"{"id":"\#(pool)","vmSize":"small","targetDedicatedNodes":1}"#).status == 201)
        #expect(try await server.send(.post, "/jobs", body: #"{"id":"\#(job)","poolInfo":{"poolId":"\#(pool)"}}"#).status == 201)
        for (index, command) in commands.enumerated() {
            let body = #"{"id":"t\#(index)","commandLine":"\#(command)"}"#
            #expect(try await server.send(.post, "/jobs/\(job)/tasks", body: body).status == 201)
        }
        let engine = server.engine
        #expect(try await eventually(120) {
            try await engine.lookup { try $0.taskCounts(jobID: job) }.taskCounts.completed == commands.count
        })
        // The node goes back to idle in the pass after the last exit; the scrape must not race it.
        #expect(try await eventually(60) {
            let nodes = try await server.send(.get, "/pools/\(pool)/nodes").json["value"] as? [[String: Any]] ?? []
            return !nodes.isEmpty && nodes.allSatisfy { $0["state"] as? String == "idle" }
        })
    }

    @Test func scrapeShowsTheJobWithoutTheKeyOnLoopback() async throws {
        let metrics = BookendMetrics()
        try await withServer(metrics: metrics) { server in
            try await MetricsTests.runJob(server, pool: "mp", job: "mj", commands: ["/bin/true", "/bin/true", "/bin/sh -c 'exit 3'"])
            // Unsigned, no api-version: a Prometheus server on this machine sends neither.
            let reply = try await server.send(.get, "/metrics", apiVersion: nil, sign: false)
            #expect(reply.status == 200)
            #expect(reply.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
            let samples = MetricsTests.samples(reply.text)
            let counts = try server.engine.taskCounts(jobID: "mj").taskCounts
            #expect(samples[MetricsTests.key("bookend_tasks_completed_total", ["result": "success"])] == Double(counts.succeeded))
            #expect(samples[MetricsTests.key("bookend_tasks_completed_total", ["result": "failure"])] == Double(counts.failed))
            #expect(counts.succeeded == 2 && counts.failed == 1)
            #expect(samples[MetricsTests.key("bookend_executions_completed_total", ["kind": "task", "result": "success"])] == 2)
            #expect(samples[MetricsTests.key("bookend_executions_completed_total", ["kind": "task", "result": "failure"])] == 1)
            #expect(samples[MetricsTests.key("bookend_jobs", ["state": "active"])] == 1)
            #expect(samples[MetricsTests.key("bookend_tasks_active")] == 0)
            let nodes = try await server.send(.get, "/pools/mp/nodes").json["value"] as? [[String: Any]] ?? []
            for state in Set(nodes.compactMap { $0["state"] as? String }) {
                let expected = nodes.filter { $0["state"] as? String == state }.count
                #expect(samples[MetricsTests.key("bookend_nodes", ["pool": "mp", "state": state])] == Double(expected), "\(reply.text)")
            }
            #expect(samples[MetricsTests.key("bookend_task_start_latency_seconds_count")] == 3)
            #expect((samples[MetricsTests.key("bookend_scheduler_pass_duration_seconds_count")] ?? 0) > 0)
            #expect((samples[MetricsTests.key("bookend_sqlite_commit_duration_seconds_count")] ?? 0) > 0)
            #expect((samples[MetricsTests.key("bookend_launch_duration_seconds_count")] ?? 0) > 0)
            #expect((samples[MetricsTests.key("bookend_sqlite_database_bytes")] ?? 0) > 0)
            #expect(samples[MetricsTests.key("bookend_sqlite_wal_bytes")] != nil)
            // Housekeeping: no --min-free-disk here, so never under pressure, and nothing deleted yet.
            #expect(samples[MetricsTests.key("bookend_disk_pressure")] == 0)
            #expect(samples[MetricsTests.key("bookend_folders_deleted", ["reason": "retention"])] == 0)
            #expect(samples[MetricsTests.key("bookend_folders_deleted", ["reason": "disk-pressure"])] == 0)
            #expect((samples[MetricsTests.key("bookend_nodes_filesystem_available_bytes")] ?? 0) > 0)
            // Requests by route pattern (never the ids in the path) and status.
            #expect(samples[MetricsTests.key("bookend_http_requests_total", ["method": "POST", "route": "/jobs/{jobID}/tasks", "status": "201"])] == 3)
            #expect(samples[MetricsTests.key("bookend_http_requests_total", ["method": "POST", "route": "/pools", "status": "201"])] == 1)

            // Signed, it answers too (what a client off this machine must do).
            #expect(try await server.send(.get, "/metrics").status == 200)
        }
    }

    @Test func aDeletedPoolLeavesNoStaleGauge() async throws {
        let metrics = BookendMetrics()
        try await withServer(metrics: metrics) { (server: LiveServer) async throws in
            let scrape = { () async throws -> String in try await server.engine.lookup { try metrics.exposition(engine: $0) } }
            #expect(try await server.send(.post, "/pools", body: #"{"id":"gone","vmSize":"small","targetDedicatedNodes":1}"#).status == 201)
            #expect(try await eventually(60) {
                MetricsTests.samples(try await scrape())[MetricsTests.key("bookend_nodes", ["pool": "gone", "state": "idle"])] == 1
            })
            #expect(try await server.send(.delete, "/pools/gone").status == 202)
            #expect(try await eventually(60) {
                !(try await scrape()).contains(#"pool="gone""#)
            })
        }
    }
}

/// `bookend_recovered_executions_total`: a task left running by one engine is adopted by the next, and
/// the next one's metrics say so.
@Suite struct RecoveryMetricsTests {
    @Test func aRestartCountsTheExecutionItAdopted() async throws {
        let directory = NSTemporaryDirectory() + "bookend-recovery-metrics-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await Engine.open(dataDirectory: directory)
        do {
            _ = try await first.createPool(PoolSpec(id: "rp", targetDedicatedNodes: 1))
            _ = try await first.createJob(JobSpec(id: "rj", poolID: "rp"))
            _ = try await first.addTask(jobID: "rj", TaskSpec(id: "long", commandLine: "/bin/sleep 60"))
            // Running: its process is recorded, so the next engine finds it alive.
            try await first.wait(timeout: .seconds(60)) { engine in
                try engine.operationalState().liveExecutions[.init("task", "running")] == 1
            }
        } catch {
            await first.shutdown()
            throw error
        }
        await first.shutdown()

        let metrics = BookendMetrics()
        let second = try await Engine.open(dataDirectory: directory, configuration: EngineConfiguration(metricsFactory: metrics.factory))
        do {
            let samples = MetricsTests.samples(try await second.lookup { try metrics.exposition(engine: $0) })
            #expect(samples[MetricsTests.key("bookend_recovered_executions_total", ["outcome": "adopted"])] == 1)
            #expect(samples[MetricsTests.key("bookend_recovered_executions_total", ["outcome": "lost"])] == nil)
            #expect(samples[MetricsTests.key("bookend_executions_live", ["kind": "task", "state": "running"])] == 1)
            // End the adopted process, so nothing outlives the test.
            try await second.terminateJob(id: "rj")
            try await second.waitForTasks(jobID: "rj", timeout: .seconds(60), failWhenBlocked: false)
        } catch {
            await second.shutdown()
            throw error
        }
        await second.shutdown()
    }
}
