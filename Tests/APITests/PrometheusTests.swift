import Bookend
import Foundation
import Observability
import TestSupport
import Testing

/// A real Prometheus server (Debian's `prometheus`, which `make test` installs when missing) scrapes a
/// live daemon every second while a small job runs; its query API must then answer with what the
/// engine recorded.
@Suite struct PrometheusTests {
    static let binary = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test func prometheusScrapesALiveDaemon() async throws {
        guard let binary = PrometheusTests.binary else {
            print("PrometheusTests skipped: no prometheus binary (make test-deps installs Debian's prometheus; apt-get could not here)")
            return
        }
        let metrics = BookendMetrics()
        try await withServer(metrics: metrics) { server in
            let prometheus = try Prometheus.start(binary: binary, scraping: server.port)
            do {
                try await check(server, prometheus)
            } catch {
                await prometheus.stop()
                throw error
            }
            await prometheus.stop()
        }
    }

    func check(_ server: LiveServer, _ prometheus: Prometheus) async throws {
        do {
            try await MetricsTests.runJob(server, pool: "pp", job: "pj", commands: ["/bin/true", "/bin/true", "/bin/true", "/bin/false"])
            let counts = try server.engine.taskCounts(jobID: "pj").taskCounts
            #expect(counts.succeeded == 3 && counts.failed == 1)
            let nodes = try await server.send(.get, "/pools/pp/nodes").json["value"] as? [[String: Any]] ?? []
            let idle = nodes.filter { $0["state"] as? String == "idle" }.count

            // Scrapes come every second; wait until one taken after the job shows it. Each answer is kept
            // once it matches, so on a loaded machine (a query timing out now and then) the four need not
            // all succeed in the same round.
            let queries = [
                "success": #"bookend_tasks_completed_total{result="success"}"#,
                "failure": #"bookend_tasks_completed_total{result="failure"}"#,
                "idle": #"bookend_nodes{pool="pp",state="idle"}"#,
                "up": #"up{job="bookend"}"#,
            ]
            let expected = ["success": Double(counts.succeeded), "failure": Double(counts.failed), "idle": Double(idle), "up": 1]
            var answered: [String: Double] = [:]
            let seen = try await eventually(180) {
                for (name, query) in queries where answered[name] != expected[name] {
                    answered[name] = try await prometheus.value(query) ?? -1
                }
                return answered == expected
            }
            #expect(seen, "Prometheus answered \(answered); the engine recorded \(counts.succeeded) succeeded, \(counts.failed) failed, \(idle) idle nodes")
            // For the record: what a real Prometheus answered about a live daemon.
            print("Prometheus /api/v1/query answered: \(answered.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))")
            #expect(answered["up"] == 1)
            #expect(idle == 1)
            // A histogram, through PromQL's own function over its buckets; asked again while a query
            // fails (it timed out once under a CI run's load), as the counters above are.
            var latency: Double?
            _ = try await eventually(60) {
                latency = try await prometheus.value(#"histogram_quantile(0.5, bookend_task_start_latency_seconds_bucket)"#)
                return latency != nil
            }
            #expect(latency.map { $0 >= 0 } == true, "histogram_quantile answered \(String(describing: latency))")
        }
    }

    /// The `prometheus` child, tracked by its pid and stopped by it.
    final class Prometheus: @unchecked Sendable {
        // @unchecked: set up in `start`, then only read (`stop` signals the one process it started).
        let process: ChildProcess
        let port: Int
        let directory: String

        private init(process: ChildProcess, port: Int, directory: String) {
            self.process = process
            self.port = port
            self.directory = directory
        }

        static func start(binary: String, scraping target: Int) throws -> Prometheus {
            let directory = NSTemporaryDirectory() + "bookend-prometheus-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
            let config = """
                global:
                  scrape_interval: 1s
                  scrape_timeout: 1s
                scrape_configs:
                  - job_name: bookend
                    metrics_path: /metrics
                    static_configs:
                      - targets: ['127.0.0.1:\(target)']
                """
            try config.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
            let port = try freePort()
            let process = try ChildProcess(
                binary, [
                    "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                    "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
                ], in: directory, output: .file(directory + "/prometheus.log"))
            let prometheus = Prometheus(process: process, port: port, directory: directory)
            return prometheus
        }

        /// The value of an instant query's single sample, or nil while there is none (or Prometheus is not up yet).
        func value(_ query: String) async throws -> Double? {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            let encoded = query.addingPercentEncoding(withAllowedCharacters: allowed) ?? query
            let port = self.port
            let body = try await onOwnThread { () -> Data in
                Data(try spawnAndWait("/usr/bin/curl", ["-s", "--max-time", "20", "http://127.0.0.1:\(port)/api/v1/query?query=\(encoded)"]).stdout.utf8)
            }
            guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
                let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                result.count == 1, let pair = result[0]["value"] as? [Any], pair.count == 2, let text = pair[1] as? String
            else { return nil }
            return Double(text)
        }

        /// SIGTERM to exactly the process this started, waited for on a thread of its own.
        func stop() async {
            let process = process
            let directory = directory
            _ = try? await onOwnThread {
                process.terminate()
                process.waitUntilExit()
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
    }
}
