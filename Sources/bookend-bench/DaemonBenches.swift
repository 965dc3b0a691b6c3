import Bookend
import Foundation
import SQLite

/// Runs `body(index)` on `count` OS threads at once and waits for all of them (each thread owns its
/// blocking connection, as separate client processes would).
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            body(index)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
}

/// Collects per-thread results without data races.
final class Collector<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    private var failures: [String] = []
    func add(_ values: [T]) { lock.lock(); items += values; lock.unlock() }
    func fail(_ message: String) { lock.lock(); failures.append(message); lock.unlock() }
    func result() throws -> [T] {
        lock.lock()
        defer { lock.unlock() }
        if let first = failures.first { throw BenchError(first) }
        return items
    }
}

func jsonObject(_ response: LoopbackHTTP.Response) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
}

/// Benchmarks against a `bookend serve` process on loopback, signed with Shared Key like any client.
struct DaemonBenches {
    let root: String
    let binary: String

    func freshDirectory(_ name: String) throws -> String { try emptyDirectory(name, under: root) }

    /// Seconds from starting `bookend serve` on an empty data directory until `/health` answers.
    func coldStart() throws -> Double {
        let directory = try freshDirectory("cold")
        let daemon = try Daemon(binary: binary, dataDirectory: directory, port: Daemon.freePort())
        let seconds = daemon.readyAfter
        daemon.stop()
        discardScratch(directory)
        return seconds
    }

    /// 3a. `addtaskcollection` with 100 tasks per call, from `clients` connections at once.
    func ingest(tasks: Int, clients: Int) throws -> Double {
        let directory = try freshDirectory("ingest-rest")
        let daemon = try Daemon(binary: binary, dataDirectory: directory, port: Daemon.freePort())
        defer { daemon.stop(); discardScratch(directory) }
        let setup = try daemon.client()
        try setup.expect([201], "POST", "/pools", json: #"{"id":"ingest","vmSize":"standard_d1_v2","targetDedicatedNodes":0}"#)
        try setup.expect([201], "POST", "/jobs", json: #"{"id":"ingest","poolInfo":{"poolId":"ingest"}}"#)
        let calls = (tasks + 99) / 100
        let failures = Collector<Int>()
        let seconds = elapsed {
            onThreads(clients) { client in
                do {
                    let http = try daemon.client()
                    for call in stride(from: client, to: calls, by: clients) {
                        let ids = (call * 100)..<min(call * 100 + 100, tasks)
                        let body = #"{"value":["# + ids.map { #"{"id":"task-\#($0)","commandLine":"/bin/true"}"# }.joined(separator: ",") + "]}"
                        let response = try http.expect([200], "POST", "/jobs/ingest/addtaskcollection", json: body)
                        if response.bodyContains("clienterror") || response.bodyContains("servererror") {
                            failures.fail("addtaskcollection: \(response.text.prefix(300))")
                            return
                        }
                    }
                } catch {
                    failures.fail("\(error)")
                }
            }
        }
        _ = try failures.result()
        let counts = jsonObject(try setup.expect([200], "GET", "/jobs/ingest/taskcounts"))
        let active = (counts["taskCounts"] as? [String: Any])?["active"] as? Int ?? -1
        guard active == tasks else { throw BenchError("REST ingest stored \(active) of \(tasks) tasks") }
        return Double(tasks) / seconds
    }

    struct ScalePoint {
        var tasks: Int
        var readySeconds: Double
        var rssBytes: Int
        var taskCountsMs: Double
        var firstPageMs: Double
        var prepReleaseMs: Double
    }

    /// Times `count` requests, milliseconds each.
    /// `clients` keep-alive connections, each on a thread of its own, `GET` every one of `paths` in
    /// turn for `seconds`: the milliseconds of each request, per path, and the wall time the threads
    /// ran (which ends with the last one). A failed connection or request fails the measurement.
    func timeClients(_ daemon: Daemon, clients: Int, seconds: Double, paths: [String]) throws -> (times: [[Double]], wall: Double) {
        let collectors = paths.map { _ in Collector<Double>() }
        let wall = elapsed {
            onThreads(clients) { _ in
                do {
                    let http = try daemon.client()
                    var mine: [[Double]] = paths.map { _ in [] }
                    let end = monotonicSeconds() + seconds
                    while monotonicSeconds() < end {
                        for (index, path) in paths.enumerated() {
                            let start = monotonicSeconds()
                            try http.expect([200], "GET", path)
                            mine[index].append((monotonicSeconds() - start) * 1000)
                        }
                    }
                    for (collector, times) in zip(collectors, mine) { collector.add(times) }
                } catch {
                    collectors[0].fail("\(error)")
                }
            }
        }
        return (try collectors.map { try $0.result() }, wall)
    }

    func timeRequests(_ http: LoopbackHTTP, _ count: Int, _ path: String) throws -> [Double] {
        try (0..<count).map { _ in
            let start = monotonicSeconds()
            try http.expect([200], "GET", path)
            return (monotonicSeconds() - start) * 1000
        }
    }

    /// 4. With `sizes` tasks stored (filled through the library between daemon runs), the daemon's
    /// RSS and the time of task counts, the first page of the task list and the prep/release status.
    /// Leaves the data directory in place for the load and recovery benchmarks.
    func scale(sizes: [Int], directory: String) async throws -> [ScalePoint] {
        var engine = try await LibraryBenches.open(directory)
        try await engine.createPool(PoolSpec(id: "scale", targetDedicatedNodes: 2, taskSlotsPerNode: 3))
        try await LibraryBenches.waitForIdleNodes(engine, pool: "scale", count: 2)
        try await engine.createJob(JobSpec(
            id: "scale", poolID: "scale",
            jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"), jobReleaseTask: JobReleaseTask(commandLine: "/bin/true")))
        // Two tasks land on the two nodes, so both have a preparation to report; then the job is
        // disabled and the rest of its tasks wait, stored.
        try await LibraryBenches.addTasks(engine, job: "scale", ids: 0..<2, prefix: "warm-", commandLine: "/bin/true")
        try await engine.waitForTasks(jobID: "scale", timeout: .seconds(60))
        try await engine.disableJob(id: "scale", disableTasks: "wait")
        try await engine.waitForJob(id: "scale", state: .disabled, timeout: .seconds(60))
        var stored = 0
        var points: [ScalePoint] = []
        for size in sizes {
            let fill = try await elapsed {
                try await LibraryBenches.addTasks(engine, job: "scale", ids: stored..<size, prefix: "task-", commandLine: "/bin/true")
            }
            print("    stored \(size) tasks (\(size - stored) added through the library in \(String(format: "%.1f", fill)) s)")
            stored = size
            await engine.shutdown()
            // The fill wrote gigabytes at 10M: the kernel finishes writing them back here, before the
            // daemon is timed, so that writeback is not part of what the figures measure.
            sync()
            let daemon = try Daemon(binary: binary, dataDirectory: directory, port: Daemon.freePort())
            let http = try daemon.client()
            let counts = try timeRequests(http, 50, "/jobs/scale/taskcounts")
            let page = try timeRequests(http, 10, "/jobs/scale/tasks")
            let status = try timeRequests(http, 50, "/jobs/scale/jobpreparationandreleasetaskstatus")
            let active = ((jsonObject(try http.expect([200], "GET", "/jobs/scale/taskcounts"))["taskCounts"]) as? [String: Any])?["active"] as? Int
            guard active == size else { throw BenchError("scale: the daemon counts \(active ?? -1) active tasks, expected \(size)") }
            points.append(ScalePoint(tasks: size, readySeconds: daemon.readyAfter, rssBytes: residentBytes(pid: daemon.pid),
                taskCountsMs: median(counts), firstPageMs: median(page), prepReleaseMs: median(status)))
            daemon.stop()
            engine = try await LibraryBenches.open(directory)
        }
        await engine.shutdown()
        return points
    }

    struct LoadResult {
        var requestsPerSecond: Double
        var jobP50: Double, jobP99: Double
        var pageP50: Double, pageP99: Double
        var healthRequestsPerSecond: Double
        var tasksRunDuring: Int
    }

    /// 6. `clients` connections alternate `GET job` and a 100-task page of the task list for `seconds`,
    /// while the job's tasks run; the baseline is `GET /health` (no auth, no database) the same way.
    func load(directory: String, clients: Int, seconds: Double) throws -> LoadResult {
        let daemon = try Daemon(binary: binary, dataDirectory: directory, port: Daemon.freePort())
        defer { daemon.stop() }
        let setup = try daemon.client()
        func completed() throws -> Int {
            ((jsonObject(try setup.expect([200], "GET", "/jobs/scale/taskcounts"))["taskCounts"]) as? [String: Any])?["completed"] as? Int ?? 0
        }
        try setup.expect([202], "POST", "/jobs/scale/enable")
        usleep(500_000)
        let before = try completed()
        let (times, wall) = try timeClients(daemon, clients: clients, seconds: seconds, paths: ["/jobs/scale", "/jobs/scale/tasks?maxresults=100"])
        let ran = try completed() - before
        try setup.expect([202], "POST", "/jobs/scale/disable", json: #"{"disableTasks":"wait"}"#)
        let (jobs, pages) = (times[0], times[1])
        // The same clients against /health: what the HTTP stack alone serves on this machine.
        let healthCount = Collector<Int>()
        // Divided by the time the threads really ran, which ends with the last one.
        let healthWall = elapsed {
            onThreads(clients) { _ in
                var done = 0
                let end = monotonicSeconds() + seconds / 2
                while monotonicSeconds() < end, Daemon.healthy(port: daemon.port) { done += 1 }
                healthCount.add([done])
            }
        }
        let health = Double(try healthCount.result().reduce(0, +)) / healthWall
        return LoadResult(
            requestsPerSecond: Double(jobs.count + pages.count) / wall,
            jobP50: median(jobs), jobP99: quantile(jobs, 0.99), pageP50: median(pages), pageP99: quantile(pages, 0.99),
            healthRequestsPerSecond: health, tasksRunDuring: ran)
    }

    struct APIResult {
        var jobRequestsPerSecond: Double
        var healthRequestsPerSecond: Double
        var jobP50: Double
        var page100P50: Double
        var page1000P50: Double
    }

    /// 6b. Issue 12's API targets, with the job's tasks not running (so the figures are the API's own):
    /// `clients` keep-alive connections doing only `GET job` for `seconds`, against the same
    /// connections doing only `GET /health` (no auth, no database: the HTTP stack's floor); then one
    /// client timing the first page of 100 and of 1,000 tasks.
    func api(directory: String, clients: Int, seconds: Double) throws -> APIResult {
        let daemon = try Daemon(binary: binary, dataDirectory: directory, port: Daemon.freePort())
        defer { daemon.stop() }
        func rate(_ path: String) throws -> (perSecond: Double, times: [Double]) {
            let (times, wall) = try timeClients(daemon, clients: clients, seconds: seconds, paths: [path])
            return (Double(times[0].count) / wall, times[0])
        }
        let job = try rate("/jobs/scale")
        let health = try rate("/health")
        let http = try daemon.client()
        let page100 = try timeRequests(http, 50, "/jobs/scale/tasks?maxresults=100")
        let page1000 = try timeRequests(http, 20, "/jobs/scale/tasks?maxresults=1000")
        return APIResult(jobRequestsPerSecond: job.perSecond, healthRequestsPerSecond: health.perSecond, jobP50: median(job.times),
            page100P50: median(page100), page1000P50: median(page1000))
    }

    struct RecoveryResult {
        var tasksStored: Int
        var readySeconds: Double
        var dispatchSeconds: Double
        var adopted: Bool
    }

    /// 5. With the job's tasks running and four long tasks on the nodes, `kill -9` the daemon, start it
    /// again and time how long until it serves and until it dispatches the next task.
    func recovery(directory: String) throws -> RecoveryResult {
        var daemon = try Daemon(binary: binary, dataDirectory: directory, port: Daemon.freePort())
        var http = try daemon.client()
        try http.expect([201], "POST", "/jobs", json: #"{"id":"hold","poolInfo":{"poolId":"scale"}}"#)
        for i in 0..<4 {
            try http.expect([201], "POST", "/jobs/hold/tasks", json: #"{"id":"sleep-\#(i)","commandLine":"sleep 120"}"#)
        }
        func holdRunning(_ http: LoopbackHTTP) throws -> Int {
            ((jsonObject(try http.expect([200], "GET", "/jobs/hold/taskcounts"))["taskCounts"]) as? [String: Any])?["running"] as? Int ?? 0
        }
        let deadline = monotonicSeconds() + 60
        while try holdRunning(http) < 4 {
            guard monotonicSeconds() < deadline else { throw BenchError("recovery: the four long tasks did not start") }
            usleep(10_000)
        }
        try http.expect([202], "POST", "/jobs/scale/enable")
        let stored = ((jsonObject(try http.expect([200], "GET", "/jobs/scale/taskcounts"))["taskCounts"]) as? [String: Any]).map {
            ($0["active"] as? Int ?? 0) + ($0["completed"] as? Int ?? 0) + ($0["running"] as? Int ?? 0)
        } ?? 0
        usleep(300_000)
        daemon.crash()
        let database = (directory as NSString).appendingPathComponent("bookend.db")
        let reader = try Connection(path: database, options: ConnectionOptions(readOnly: true))
        let lastBefore = try reader.scalar("SELECT max(pk) FROM execution").int64 ?? 0
        var dispatchedAt: Double?
        func lookForDispatch() {
            guard dispatchedAt == nil else { return }
            if (try? reader.scalar("SELECT 1 FROM execution WHERE pk > ? AND kind = 'task' LIMIT 1", [lastBefore])) ?? .null != .null {
                dispatchedAt = monotonicSeconds()
            }
        }
        let restarted = monotonicSeconds()
        daemon = try Daemon(binary: binary, dataDirectory: directory, port: Daemon.freePort(), watch: lookForDispatch)
        let ready = daemon.readyAfter
        let limit = monotonicSeconds() + 60
        while dispatchedAt == nil, monotonicSeconds() < limit {
            lookForDispatch()
            usleep(1_000)
        }
        let dispatched = dispatchedAt.map { $0 - restarted } ?? .nan
        http = try daemon.client()
        let holdExecutions = try reader.scalar(
            "SELECT count(*) FROM execution e JOIN job j ON j.pk = e.job_pk WHERE j.id = 'hold'").int ?? 0
        let adopted = try holdRunning(http) == 4 && holdExecutions == 4
        try http.expect([202], "POST", "/jobs/scale/disable", json: #"{"disableTasks":"wait"}"#)
        try http.expect([202], "POST", "/jobs/hold/terminate")
        let end = monotonicSeconds() + 60
        while try holdRunning(http) > 0, monotonicSeconds() < end { usleep(20_000) }
        daemon.stop()
        return RecoveryResult(tasksStored: stored, readySeconds: ready, dispatchSeconds: dispatched, adopted: adopted)
    }
}
