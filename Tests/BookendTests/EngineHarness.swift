import Bookend
import Foundation
import TestSupport
import Testing

/// A fresh data directory and engine per test, removed afterwards.
struct EngineHarness {
    let directory: String
    let engine: Engine

    static func make(_ name: String = #function, configuration: EngineConfiguration = EngineConfiguration(tickInterval: .milliseconds(100))) async throws -> EngineHarness {
        let base = ProcessInfo.processInfo.environment["BOOKEND_TEST_TMP"] ?? NSTemporaryDirectory()
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let directory = (base as NSString).appendingPathComponent("bookend-\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Tasks run as an unprivileged account when the tests run as root: let it reach the folder.
        chmod(directory, 0o755)
        let engine = try await Engine.open(dataDirectory: directory, configuration: configuration)
        return EngineHarness(directory: directory, engine: engine)
    }

    /// Reopens the engine on the same directory (after `shutdown`), as a restarted daemon would.
    func reopened() async throws -> EngineHarness {
        let engine = try await Engine.open(dataDirectory: directory, configuration: EngineConfiguration(tickInterval: .milliseconds(100)))
        return EngineHarness(directory: directory, engine: engine)
    }

    func finish() async {
        await engine.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A folder tasks can write side effects into (mode 0777), outside any node: counting lines there
    /// counts real runs, independent of what the database says.
    func sideEffects() throws -> String {
        let path = (directory as NSString).appendingPathComponent("effects")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o777)
        return path
    }

    /// Creates a pool and waits until every node is idle.
    @discardableResult
    func pool(_ id: String = "pool", nodes: Int = 1, slots: Int = 1, fill: String? = nil, startTask: StartTask? = nil) async throws -> [Node] {
        try await engine.createPool(PoolSpec(id: id, targetDedicatedNodes: nodes, taskSlotsPerNode: slots, nodeFillType: fill, startTask: startTask))
        try await engine.wait(timeout: .seconds(60)) { engine in
            let nodes = try engine.nodes(poolID: id)
            return nodes.count == nodes.filter { [NodeState.idle, .starttaskfailed].contains($0.state) }.count
        }
        return try await engine.nodes(poolID: id)
    }

    /// Proof that the scheduler has dispatched since the call: a task of a job of its own (no
    /// preparation) on `pool`, run to completion. A check that something was *not* dispatched (a
    /// task still active, a release not rerun) made after this cannot pass just because no pass ran
    /// yet, as one made after a fixed sleep can on a loaded machine.
    func dispatchSentinel(pool: String = "pool") async throws {
        let job = "sentinel-\(UUID().uuidString.prefix(8))"
        try await engine.createJob(JobSpec(id: job, poolID: pool))
        try await engine.addTask(jobID: job, TaskSpec(id: "sentinel", commandLine: "/bin/true"))
        try await engine.waitForTasks(jobID: job, timeout: .seconds(60))
    }

    /// Waits (polling, up to 60 s) until `condition` holds, for conditions that need no engine (one
    /// that is shut down, say).
    static func waitUntil(_ what: String, _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while try !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("not within 60 s: \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The time `sql` (one row, one column, a stored timestamp) names, parsed.
    func storedTime(_ query: String) async throws -> Date {
        let text = try #require(try await sql(query).first?.first)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return try #require(formatter.date(from: text), "not a stored time: \(text)")
    }

    /// Reboots `node` of `pool` and waits until it is idle again after a new boot.
    func reboot(_ node: Node, pool: String = "pool") async throws {
        try await engine.rebootNode(poolID: pool, nodeID: node.id)
        try await engine.wait(timeout: .seconds(60)) { engine in
            let now = try engine.node(poolID: pool, nodeID: node.id)
            return now.state == .idle && now.lastBootTime != node.lastBootTime
        }
    }

    /// Adds a task that sleeps for ten minutes and waits until its command runs: the task that the tests
    /// of ending a job or a task end. (A minute was not always enough: loaded CI runs have taken most
    /// of one between two steps of a test.)
    func addRunningSleep(job: String, task: String) async throws {
        try await engine.addTask(jobID: job, TaskSpec(id: task, commandLine: "/bin/sleep 600"))
        try await engine.wait(timeout: .seconds(60)) { try $0.task(jobID: job, taskID: task).state == .running }
    }

    func waitForTasks(_ job: String) async throws {
        try await engine.waitForTasks(jobID: job, timeout: .seconds(60))
    }

    func waitForJob(_ job: String, _ state: JobState) async throws {
        try await engine.waitForJob(id: job, state: state, timeout: .seconds(60))
    }

    func waitForJobDeletion(_ job: String) async throws {
        try await engine.waitForJobDeletion(id: job, timeout: .seconds(60))
    }

    /// Lines in a side-effect file (0 when it does not exist).
    static func lines(_ path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init)
    }

    /// The most `start` lines without a matching `end` at any point of a log tasks append to.
    static func peakConcurrency(_ path: String) -> Int {
        var running = 0
        var peak = 0
        for line in lines(path) {
            running += line == "start" ? 1 : -1
            peak = max(peak, running)
        }
        return peak
    }

    /// Runs SQL on the database file through a separate read-only connection (the sqlite3 program), as
    /// a user would; the program is waited for on a thread of its own.
    func sql(_ query: String) async throws -> [[String]] {
        let directory = directory
        return try await onOwnThread { try EngineHarness.sqlite3(directory: directory, query) }
    }

    /// `sql` on the calling thread: for a condition `Engine.wait` checks on the engine's own queue.
    func sqlOnCallingThread(_ query: String) throws -> [[String]] {
        try EngineHarness.sqlite3(directory: directory, query)
    }

    private static func sqlite3(directory: String, _ query: String) throws -> [[String]] {
        let result = try spawnAndWait("/usr/bin/sqlite3", ["-readonly", "-separator", "|", (directory as NSString).appendingPathComponent("bookend.db"), query])
        let data = Data(result.stdout.utf8)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
    }
}

/// `sh -c '<script>'` with the script's single quotes escaped.
func sh(_ script: String) -> String {
    "/bin/sh -c '" + script.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
