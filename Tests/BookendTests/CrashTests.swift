import Bookend
import Foundation
import SQLite
import TestSupport
import Testing

/// Crash safety: the `bookend workload run` driver is killed with SIGKILL at named crash points and
/// at random moments, restarted until it finishes, and the end state is checked against a crash-free
/// run: task states and exit codes, runs counted by side effects on disk, preparation at most once
/// and release exactly once per (job, node), task counts, database integrity, no leftover process.
@Suite struct CrashTests {
    /// Crash points hit by the mixed workload. `name#n` crashes on the n-th hit; `a > b` crashes at
    /// `a`, then the restart crashes at `b` (reconciliation itself interrupted). One migration point
    /// per embedded migration, so a new migration is exercised without anyone remembering to add it.
    static let points: [String] = Schema.migrations.map { "migration.\($0.version).before-commit" } + [
        "after-commit:pool.created", "after-commit:node.starting", "after-commit:node.waitingforstarttask", "after-commit:node.idle", "after-commit:job.created", "after-commit:task.added",
        "after-commit:task.preparing", "after-commit:preparation.running", "after-commit:preparation.completed",
        "after-commit:task.running", "after-commit:task.running#6", "after-commit:task.active",
        "after-commit:task.completed", "after-commit:task.completed#8",
        "after-commit:job.terminating", "after-commit:job.terminating#3", "after-commit:job.deleting",
        "after-commit:release.running", "after-commit:release.completed", "after-commit:release.completed#3",
        "after-commit:job.completed", "after-commit:job.deleted",
        "dispatch.after-commit", "dispatch.after-commit#3",
        "spawn.after-fork", "spawn.after-fork#5", "spawn.after-fork#12",
        "launch.after-spawn", "launch.after-spawn#5", "launch.after-record", "launch.after-record#5",
        "exits.before-record", "exits.before-record#4", "exits.after-commit", "exits.after-commit#6",
        "execution.completed", "execution.completed#10",
        "kill.after-decision", "kill.after-signal", "kill.after-signal#2", "kill.after-signal#3",
        "release.after-begin", "release.while-running", "release.while-running#2",
        "delete.before-files", "delete.after-files",
        "retention.before-delete", "retention.before-delete#3", "retention.after-delete", "retention.after-delete#3",
        "exits.before-record#4 > reconcile.after-collect", "launch.after-spawn#5 > reconcile.after-collect",
        "spawn.after-fork#3 > spawn.after-fork#2",
    ]

    @Test func mixedWorkloadWithoutCrashes() async throws {
        let reference = try await Reference.shared.value()
        // Preparation and release really ran (the invariants only loop over the files that exist):
        // jobs A and B prepare on both nodes of their pools (A's nine tasks and B's four fill every
        // slot at once); D prepares where its tasks ran; C and E have no preparation.
        #expect(reference.preparedNodes("A") == 2)
        #expect(reference.preparedNodes("B") == 2)
        #expect(reference.preparedNodes("D") >= 1)
        #expect(reference.preparedNodes("C") == 0 && reference.preparedNodes("E") == 0)
        #expect(reference.jobNodes.count == 4, "A's and B's (job, node) records: \(reference.jobNodes)")
        #expect(reference.jobs == ["A|completed", "B|completed", "C|completed", "E|completed"])
        #expect(reference.tasks.contains("E|e1|completed|4|failure") && reference.taskRuns["E.e1"] == 1)
        #expect(reference.prepReleaseRuns.keys.filter { $0.hasPrefix("start.") }.count == 2)
        #expect(reference.taskRuns["A.retry"] == 3 && reference.taskRuns["A.flaky"] == 2 && reference.taskRuns["A.timeout"] == 1)
        #expect(reference.tasks.contains("A|timeout|completed|143|failure"))
        #expect(reference.tasks.contains("C|long|completed|143|failure"))
        #expect(reference.tasks.contains("A|retry|completed|3|failure"))
    }

    @Test(arguments: points)
    func mixedWorkloadSurvivesACrashAt(_ point: String) async throws {
        let reference = try await Reference.shared.value()
        try await Limiter.shared.run {
            let directory = try Driver.directory("crash-\(point)")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            for step in point.components(separatedBy: " > ") {
                let parts = step.split(separator: "#")
                var environment = ["BOOKEND_CRASH_AT": String(parts[0])]
                if parts.count > 1 { environment["BOOKEND_CRASH_AFTER"] = String(parts[1]) }
                // The shim forked at the crash writes its pid file only after the restart began.
                if parts[0] == "spawn.after-fork" { environment["BOOKEND_TEST_SHIM_DELAY_MS"] = "800" }
                let ended = try await Driver.run(directory, spec: "mixed", environment: environment)
                try #require(ended == .killed, "the driver should die by SIGKILL at \(step), but \(ended)")
            }
            try await Driver.finish(directory, spec: "mixed")
            let outcome = try await Snapshot.read(directory)
            #expect(outcome.tasks == reference.tasks)
            #expect(outcome.jobs == reference.jobs)
            #expect(outcome.taskRuns == reference.taskRuns)
            #expect(outcome.prepReleaseRuns.keys.filter { $0.hasPrefix("start.") }.count == 2, "a start task per pool B node")
            #expect(outcome.preparedNodes("A") == 2)
            #expect(outcome.preparedNodes("B") == 2)
            #expect(outcome.jobNodes.count == 4, "A's and B's (job, node) records: \(outcome.jobNodes)")
            outcome.checkInvariants(deletedJobs: ["D"])
        }
    }

    /// Twenty SIGKILLs at random moments through the mixed workload (terminate, delete, timeout,
    /// failing preparation), then the same comparison with the crash-free run.
    @Test func mixedWorkloadSurvivesRandomKills() async throws {
        let reference = try await Reference.shared.value()
        try await Limiter.shared.run {
            let seed = ProcessInfo.processInfo.environment["BOOKEND_CRASH_SEED"].flatMap { UInt64($0) } ?? 7
            var random = SplitMix64(seed: seed)
            let directory = try Driver.directory("mixed-random")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var finished = false
            for _ in 0..<20 {
                let ended = try await Driver.run(directory, spec: "mixed", killAfter: .milliseconds(Int(random.next() % 400) + 50))
                if ended == .exited(0) { finished = true; break }
                try #require(ended == .killed, "the driver failed: \(ended)")
            }
            if !finished { try await Driver.finish(directory, spec: "mixed") }
            let outcome = try await Snapshot.read(directory)
            #expect(outcome.tasks == reference.tasks)
            #expect(outcome.jobs == reference.jobs)
            #expect(outcome.taskRuns == reference.taskRuns)
            outcome.checkInvariants(deletedJobs: ["D"])
        }
    }

    /// SIGTERM stops the driver gracefully: it exits without killing the running task (a restart
    /// never kills user work by itself), and the next start adopts it and finishes the same way.
    @Test func sigtermLeavesRunningWorkForTheNextStart() async throws {
        let reference = try await Reference.shared.value()
        try await Limiter.shared.run {
            let directory = try Driver.directory("sigterm")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let started = (directory as NSString).appendingPathComponent("effects/A.timeout")
            let ended = try await Driver.run(directory, spec: "mixed", signal: (SIGTERM, { FileManager.default.fileExists(atPath: started) }))
            try #require(ended == .exited(3), "SIGTERM should stop the driver with status 3, but \(ended)")
            let snapshot = try await Snapshot.read(directory)
            #expect(!snapshot.leftoverProcesses().isEmpty, "the running task should outlive the engine")
            try await Driver.finish(directory, spec: "mixed")
            let outcome = try await Snapshot.read(directory)
            #expect(outcome.tasks == reference.tasks)
            #expect(outcome.taskRuns == reference.taskRuns)
            outcome.checkInvariants(deletedJobs: ["D"])
        }
    }

    /// At least 50 SIGKILLs at random moments (seeded) while 500 tasks with preparation and release run.
    @Test func randomKillsDuringALargeWorkload() async throws {
        try await Limiter.shared.run(weight: 1) {
            // BOOKEND_CRASH_SEED explores other kill schedules; the default keeps runs comparable.
            let seed = ProcessInfo.processInfo.environment["BOOKEND_CRASH_SEED"].flatMap { UInt64($0) } ?? 20_261_128
            var random = SplitMix64(seed: seed)
            let directory = try Driver.directory("random")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var kills = 0
            var finished = false
            while kills < 50 {
                let delay = Duration.milliseconds(Int(random.next() % 350) + 30)
                let ended = try await Driver.run(directory, spec: "random", killAfter: delay)
                if ended == .killed { kills += 1 } else {
                    try #require(ended == .exited(0), "the driver failed: \(ended)")
                    finished = true
                    break
                }
            }
            #expect(kills >= 50, "the workload finished after only \(kills) kills")
            if !finished { try await Driver.finish(directory, spec: "random") }
            let outcome = try await Snapshot.read(directory)
            #expect(outcome.jobs == (0..<5).map { "R\($0)|completed" })
            #expect(outcome.tasks.count == 500)
            for i in 0..<500 {
                let job = "R\(i % 5)"
                let (runs, exitCode, result) = i % 10 == 7 ? (2, 5, "failure") : i % 10 == 3 ? (2, 0, "success") : (1, 0, "success")
                #expect(outcome.taskRuns["\(job).t\(i)"] == runs, "runs of \(job).t\(i)")
                #expect(outcome.tasks.contains("\(job)|t\(i)|completed|\(exitCode)|\(result)"), "end of \(job).t\(i)")
            }
            outcome.checkInvariants(deletedJobs: [])
        }
    }
}

/// The crash-free run of the mixed workload, computed once and shared by the tests.
actor Reference {
    static let shared = Reference()
    private var task: Task<Snapshot, any Error>?

    func value() async throws -> Snapshot {
        if task == nil {
            task = Task {
                try await Limiter.shared.run {
                    let directory = try Driver.directory("reference")
                    defer { try? FileManager.default.removeItem(atPath: directory) }
                    let ended = try await Driver.run(directory, spec: "mixed", environment: [:])
                    try #require(ended == .exited(0), "the crash-free run failed: \(ended)")
                    let snapshot = try await Snapshot.read(directory)
                    snapshot.checkInvariants(deletedJobs: ["D"])
                    return snapshot
                }
            }
        }
        return try await task!.value
    }
}

/// Runs at most two drivers at once: the machine has two cores shared with other builds, and the
/// rest of the suite has timing-sensitive tests running alongside.
actor Limiter {
    static let shared = Limiter(capacity: 2)
    private let capacity: Int
    private var used = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(capacity: Int) { self.capacity = capacity }

    func run<T: Sendable>(weight: Int = 1, _ body: @Sendable () async throws -> T) async throws -> T {
        while used + weight > capacity {
            await withCheckedContinuation { waiting.append($0) }
        }
        used += weight
        defer {
            used -= weight
            let woken = waiting
            waiting.removeAll()
            for continuation in woken { continuation.resume() }
        }
        return try await body()
    }
}

enum Driver {
    enum Ended: Equatable, CustomStringConvertible {
        case exited(Int32), killed, signaled(Int32)
        var description: String {
            switch self {
            case .exited(let code): return "exit \(code)"
            case .killed: return "SIGKILL"
            case .signaled(let signal): return "signal \(signal)"
            }
        }
    }

    static let binary = Repository.path(".build/debug/bookend")

    static func directory(_ name: String) throws -> String {
        let base = ProcessInfo.processInfo.environment["BOOKEND_TEST_TMP"] ?? NSTemporaryDirectory()
        let safe = name.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        let directory = (base as NSString).appendingPathComponent("bookend-\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        return directory
    }

    /// Runs the driver once (SIGKILLed after `killAfter` if given) and says how it ended.
    static func run(
        _ directory: String, spec: String, environment: [String: String] = [:], killAfter: Duration? = nil,
        signal: (Int32, @Sendable () -> Bool)? = nil
    ) async throws -> Ended {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("BOOKEND_CRASH") }
        env.merge(environment) { $1 }
        let ended = AsyncStream<ChildProcess.Termination>.makeStream()
        let process = try ChildProcess(
            binary, ["workload", "run", "--data-dir", directory, "--spec", spec, "--timeout", "120"], environment: env,
            output: .file((directory as NSString).appendingPathComponent("driver.log"))
        ) { termination in
            ended.continuation.yield(termination)
            ended.continuation.finish()
        }
        // A dispatch timer, not a Task: when the whole suite loads the cooperative pool, a sleeping
        // Task wakes late and the driver can finish before it is killed.
        let killer: DispatchWorkItem? = killAfter.map { delay in
            let item = DispatchWorkItem { process.signal(SIGKILL) }
            let (seconds, attoseconds) = delay.components
            DispatchQueue.global().asyncAfter(
                deadline: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)), execute: item)
            return item
        }
        // Sends `signal` once its condition holds (polled), unless the driver ended first.
        let signaller: Task<Void, Never>? = signal.map { signal in
            Task {
                while !Task.isCancelled, !signal.1() { try? await Task.sleep(for: .milliseconds(20)) }
                if !Task.isCancelled { process.signal(signal.0) }
            }
        }
        var termination = ChildProcess.Termination.exited(-1)
        for await ending in ended.stream { termination = ending }
        killer?.cancel()
        signaller?.cancel()
        switch termination {
        case .signaled(let number): return number == SIGKILL ? .killed : .signaled(number)
        case .exited(let code): return .exited(code)
        }
    }

    /// Restarts the driver (no crash point) until it reports the workload complete.
    static func finish(_ directory: String, spec: String) async throws {
        for _ in 0..<3 {
            let ended = try await run(directory, spec: spec)
            if ended == .exited(0) { return }
            Issue.record("restarted driver ended with \(ended); log: \(tail(directory))")
        }
        throw CancellationError()
    }

    static func tail(_ directory: String) -> String {
        let text = (try? String(contentsOfFile: (directory as NSString).appendingPathComponent("driver.log"), encoding: .utf8)) ?? ""
        return String(text.suffix(2000))
    }
}

/// The end state of a workload, read from the database (through sqlite3) and from side-effect files.
struct Snapshot: Sendable {
    let directory: String
    /// `job|task|state|exitCode|result`, sorted.
    let tasks: [String]
    /// `job|state`, sorted.
    let jobs: [String]
    /// Runs of each task command, by side-effect file (`<job>.<task>`).
    let taskRuns: [String: Int]
    /// Runs of preparation and release, by `<job>.prep.<node>` / `<job>.release.<node>`.
    let prepReleaseRuns: [String: Int]
    /// `job|node|prep_state|release_state` for jobs that still exist.
    let jobNodes: [String]
    let integrity: [String]
    let taskCountsStored: [String]
    let taskCountsCounted: [String]
    let nodeRoots: [String]

    /// Reads the snapshot on a thread of its own (it runs sqlite3 and reads files).
    static func read(_ directory: String) async throws -> Snapshot {
        try await onOwnThread { try Snapshot(directory) }
    }

    init(_ directory: String) throws {
        self.directory = directory
        func sql(_ query: String) throws -> [String] {
            let result = try runOnCallingThread("/usr/bin/sqlite3", ["-readonly", (directory as NSString).appendingPathComponent("bookend.db"), query])
            return result.stdout.split(separator: "\n").map(String.init)
        }
        tasks = try sql("SELECT j.id, t.id, t.state, t.exit_code, t.result FROM task t JOIN job j ON j.pk = t.job_pk").sorted()
        jobs = try sql("SELECT id, state FROM job").sorted()
        jobNodes = try sql(
            "SELECT j.id, n.id, r.prep_state, r.release_state FROM job_node r JOIN job j ON j.pk = r.job_pk JOIN node n ON n.pk = r.node_pk").sorted()
        integrity = try sql("PRAGMA integrity_check")
        taskCountsStored = try sql("SELECT job_pk, bucket, tasks FROM task_count WHERE tasks <> 0").sorted()
        taskCountsCounted = try sql(
            """
            SELECT job_pk, CASE state WHEN 'active' THEN 'active' WHEN 'completed' THEN CASE result WHEN 'success' THEN 'succeeded'
                ELSE 'failed' END ELSE 'running' END AS bucket, count(*) FROM task GROUP BY job_pk, bucket
            """).sorted()
        nodeRoots = try sql("SELECT root_dir FROM node")
        let effects = (directory as NSString).appendingPathComponent("effects")
        var taskRuns: [String: Int] = [:]
        var prepRelease: [String: Int] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: effects) {
            let text = (try? String(contentsOfFile: (effects as NSString).appendingPathComponent(name), encoding: .utf8)) ?? ""
            let count = text.split(separator: "\n").count
            if name.contains(".prep.") || name.contains(".release.") || name.hasPrefix("start.") { prepRelease[name] = count } else { taskRuns[name] = count }
        }
        self.taskRuns = taskRuns
        prepReleaseRuns = prepRelease
    }

    /// Nodes on which `job`'s preparation left its side-effect file.
    func preparedNodes(_ job: String) -> Int {
        prepReleaseRuns.keys.filter { $0.hasPrefix("\(job).prep.") }.count
    }

    /// What must hold after any run, crashed or not.
    func checkInvariants(deletedJobs: [String]) {
        #expect(integrity == ["ok"])
        #expect(taskCountsStored == taskCountsCounted, "task counts")
        #expect(jobs.allSatisfy { $0.hasSuffix("|completed") }, "every job ended: \(jobs)")
        #expect(tasks.allSatisfy { $0.split(separator: "|", omittingEmptySubsequences: false)[2] == "completed" }, "every task completed")
        // Preparation at most once per (job, node) (no preparation retries in these workloads);
        // release exactly once on every node where preparation ran, and nowhere else.
        for (name, runs) in prepReleaseRuns where name.contains(".prep.") {
            #expect(runs == 1, "\(name) ran \(runs) times")
            let release = name.replacingOccurrences(of: ".prep.", with: ".release.")
            #expect(prepReleaseRuns[release] == 1, "\(release) ran \(prepReleaseRuns[release] ?? 0) times")
        }
        // Start tasks ran once per node boot (no reboots here).
        for (name, runs) in prepReleaseRuns where name.hasPrefix("start.") {
            #expect(runs == 1, "\(name) ran \(runs) times")
        }
        for name in prepReleaseRuns.keys where name.contains(".release.") {
            #expect(prepReleaseRuns[name.replacingOccurrences(of: ".release.", with: ".prep.")] != nil, "\(name) without preparation")
        }
        // The stored records agree: every (job, node) that prepared has its release completed.
        for row in jobNodes {
            let fields = row.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            #expect(fields[2] == "completed" && fields[3] == "completed", "job_node \(row)")
            #expect(prepReleaseRuns["\(fields[0]).prep.\(fields[1])"] == 1, "\(row): preparation ran once")
        }
        // A deleted job's folders are gone from every node.
        for job in deletedJobs {
            for root in nodeRoots {
                #expect(!FileManager.default.fileExists(atPath: (root as NSString).appendingPathComponent("workitems/\(job)")), "\(job) files on \(root)")
            }
        }
        // Every execution has completed, so no status folder is needed any more: none is left, whether
        // its execution was retired or deleted with its job.
        for root in nodeRoots {
            let left = (try? FileManager.default.contentsOfDirectory(atPath: (root as NSString).appendingPathComponent("volatile/executions"))) ?? []
            #expect(left.isEmpty, "status folders left on \(root): \(left)")
        }
        #expect(leftoverProcesses().isEmpty, "processes of the workload still running: \(leftoverProcesses())")
    }

    /// Live (non-zombie) processes whose command line or environment mentions the data directory:
    /// shims carry it in their command line, user commands in their AZ_BATCH_* environment.
    func leftoverProcesses() -> [String] {
        var found: [String] = []
        let needle = Array(directory.utf8)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != getpid() else { continue }
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] != "Z"
            else { continue }
            for file in ["cmdline", "environ"] {
                guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/\(file)") else { continue }
                let bytes = Array(data)
                if bytes.count >= needle.count, (0...(bytes.count - needle.count)).contains(where: { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }) {
                    found.append("\(pid): \(String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).prefix(200))")
                    break
                }
            }
        }
        return found
    }
}

/// Recovery rules that need a process tree to vanish or a clock to run out while the engine is down.
extension CrashTests {
    /// `date` as the engine stores times (ISO 8601, UTC, milliseconds), for comparing in SQL.
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    /// Kills a live execution's whole process group (shim included), as losing the machine would,
    /// and reaps the shim (a child of this test process since the engine that spawned it is gone).
    static func loseProcessTree(_ h: EngineHarness, kind: String) async throws {
        let rows = try await h.sql("SELECT pid FROM execution WHERE kind = '\(kind)' AND state = 'running'")
        let pid = try #require(rows.first.flatMap { Int32($0[0]) })
        kill(-pid, SIGKILL)
        _ = try await onOwnThread { waitpid(pid, nil, 0) }
    }

    /// Only the shim is killed, while the engine runs and while it is down: its command survives it
    /// (in the shim's session, reparented). The work is requeued, so that copy is killed first: the
    /// task's two runs never overlap, and the first never reaches its end.
    @Test(arguments: [false, true])
    func aKilledShimsCommandIsEndedBeforeTheWorkRunsAgain(whileDown: Bool) async throws {
        let h = try await EngineHarness.make("killedShim\(whileDown)")
        let effects = try h.sideEffects()
        try await h.pool()
        try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
        // The command runs in a group of its own (as a shell with job control would put it), still in
        // the shim's session, and ends only once the test says `go` (at most 5 min, so that a machine slowed by the whole suite does not end it first).
        let go = "\(effects)/go"
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("""
            echo start >> \(effects)/runs; perl -e 'setpgrp(0, 0); exec @ARGV' sh -c \
              'i=0; while [ ! -e \(go) ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done; echo end >> \(effects)/runs'
            """)))
        // Its pid is stored by the pass after its launch: wait for that too.
        let query = "SELECT pid FROM execution WHERE kind = 'task' AND state = 'running' AND pid IS NOT NULL"
        try await h.engine.wait(timeout: .seconds(60)) { _ in
            try !EngineHarness.lines("\(effects)/runs").isEmpty && !h.sqlOnCallingThread(query).isEmpty
        }
        // Still running: it ends only after `go`.
        let rows = try await h.sql(query)
        var engine = h
        if whileDown { await h.engine.shutdown() }
        let shim = try #require(rows.first.flatMap { Int32($0[0]) })
        kill(shim, SIGKILL)
        if whileDown {
            _ = try await onOwnThread { waitpid(shim, nil, 0) }
            engine = try await h.reopened()
        }
        try await withCleanup({ await engine.finish() }) {
            // The work runs again; only then may the commands end.
            try await engine.engine.wait(timeout: .seconds(60)) { _ in EngineHarness.lines("\(effects)/runs").count >= 2 }
            FileManager.default.createFile(atPath: go, contents: nil)
            try await engine.waitForTasks("job")
            let task = try await engine.engine.task(jobID: "job", taskID: "t")
            #expect(task.executionInfo.exitCode == 0)
            #expect(task.executionInfo.requeueCount == 1)
            // Let a surviving first copy reach its end, were there one (it polls every 0.1 s).
            try await Task.sleep(for: .milliseconds(1000))
            #expect(EngineHarness.lines("\(effects)/runs") == ["start", "start", "end"])
        }
    }

    @Test func aTaskWhoseProcessTreeVanishedWhileDownIsRequeued() async throws {
        let h = try await EngineHarness.make()
        let effects = try h.sideEffects()
        try await h.pool()
        try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/runs; [ $(wc -l < \(effects)/runs) -ge 2 ] || sleep 300")))
        try await h.engine.wait(timeout: .seconds(60)) { _ in !EngineHarness.lines("\(effects)/runs").isEmpty }
        await h.engine.shutdown()
        try await Self.loseProcessTree(h, kind: "task")
        let restarted = try await h.reopened()
        try await withCleanup({ await restarted.finish() }) {
            try await restarted.waitForTasks("job")
            let task = try await restarted.engine.task(jobID: "job", taskID: "t")
            #expect(task.executionInfo.exitCode == 0)
            #expect(task.executionInfo.requeueCount == 1)
            #expect(task.executionInfo.retryCount == 0)
            #expect(EngineHarness.lines("\(effects)/runs").count == 2)
        }
    }

    @Test func aPreparationWhoseProcessTreeVanishedWhileDownRunsAgainAndTasksGoOn() async throws {
        let h = try await EngineHarness.make()
        let effects = try h.sideEffects()
        try await h.pool()
        try await h.engine.createJob(JobSpec(
            id: "job", poolID: "pool",
            jobPreparationTask: JobPreparationTask(commandLine: sh("echo run >> \(effects)/prep; [ $(wc -l < \(effects)/prep) -ge 2 ] || sleep 300")),
            jobReleaseTask: JobReleaseTask(commandLine: sh("echo run >> \(effects)/release"))))
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/task")))
        try await h.engine.wait(timeout: .seconds(60)) { _ in !EngineHarness.lines("\(effects)/prep").isEmpty }
        await h.engine.shutdown()
        try await Self.loseProcessTree(h, kind: "preparation")
        let restarted = try await h.reopened()
        try await withCleanup({ await restarted.finish() }) {
            try await restarted.waitForTasks("job")
            try await restarted.engine.terminateJob(id: "job")
            try await restarted.waitForJob("job", .completed)
            #expect(EngineHarness.lines("\(effects)/prep").count == 2)
            #expect(EngineHarness.lines("\(effects)/task").count == 1)
            #expect(EngineHarness.lines("\(effects)/release").count == 1)
            let task = try await restarted.engine.task(jobID: "job", taskID: "t")
            #expect(task.executionInfo.exitCode == 0)
        }
    }

    @Test func anAdoptedExecutionKeepsItsWallClockFromItsOriginalStart() async throws {
        let h = try await EngineHarness.make()
        let effects = try h.sideEffects()
        try await h.pool()
        try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/runs; sleep 300; :"),
            constraints: TaskConstraints(maxWallClockTime: "PT3S")))
        try await h.engine.wait(timeout: .seconds(60)) { _ in !EngineHarness.lines("\(effects)/runs").isEmpty }
        await h.engine.shutdown()
        // Down until its deadline has passed.
        let deadline = try await h.storedTime("SELECT deadline FROM execution WHERE kind = 'task'")
        // A millisecond past it: times are stored to the millisecond, so a reopening less than 1 ms
        // after the deadline would be stored as the same instant.
        try await EngineHarness.waitUntil("the stored deadline passes") { Date() > deadline.addingTimeInterval(0.001) }
        let reopening = Date()
        let restarted = try await h.reopened()
        try await withCleanup({ await restarted.finish() }) {
            try await restarted.waitForTasks("job")
            // The adopted execution kept the deadline of its original start (start + PT3S), which had
            // passed before the engine reopened: so it was due at once, not 3 s after the restart.
            let stored = try await restarted.sql(
                "SELECT CAST(round((julianday(deadline) - julianday(start_time)) * 86400000) AS INTEGER), "
                    + "julianday(deadline) < julianday('\(Self.timestamp(reopening))'), kill_reason FROM execution WHERE kind = 'task'")
            #expect(stored == [["3000", "1", "timeout"]])
            let task = try await restarted.engine.task(jobID: "job", taskID: "t")
            #expect(task.executionInfo.exitCode == 143)
            #expect(task.executionInfo.result == "failure")
            #expect(task.executionInfo.failureInfo?.code == "TaskEnded")
            #expect(task.executionInfo.failureInfo?.details == [NameValuePair(name: "Reason", value: "MaxWallClockTimeExpiry")])
            #expect(EngineHarness.lines("\(effects)/runs").count == 1)
        }
    }

    @Test func aGracefulShutdownLeavesWorkRunningUnlessAskedToDrain() async throws {
        // Default: the engine stops, the task keeps running, the next engine collects it.
        let h = try await EngineHarness.make()
        let effects = try h.sideEffects()
        try await h.pool()
        try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
        // It runs until the test says `go`, so it is surely still running when the engine stops.
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh(
            "echo run >> \(effects)/runs; until [ -e \(effects)/go ]; do sleep 0.05; done; echo done >> \(effects)/done")))
        try await h.engine.wait(timeout: .seconds(60)) { try $0.task(jobID: "job", taskID: "t").state == .running }
        await h.engine.shutdown()
        #expect(try await h.sql("SELECT state FROM execution WHERE kind = 'task'") == [["running"]])
        FileManager.default.createFile(atPath: "\(effects)/go", contents: nil)
        // Drain: a second engine asked to drain waits for the task and records it before returning.
        let draining = try await Engine.open(dataDirectory: h.directory,
            configuration: EngineConfiguration(tickInterval: .milliseconds(100), drainOnShutdown: .seconds(10)))
        await draining.shutdown()
        #expect(EngineHarness.lines("\(effects)/done") == ["done"])
        #expect(try await h.sql("SELECT state, exit_code FROM execution WHERE kind = 'task'") == [["completed", "0"]])
        #expect(EngineHarness.lines("\(effects)/runs").count == 1)
        try? FileManager.default.removeItem(atPath: h.directory)
    }
}

extension CrashTests {
    @Test func aReleaseWhoseProcessTreeVanishedWhileDownRunsAgainOnce() async throws {
        let h = try await EngineHarness.make()
        let effects = try h.sideEffects()
        try await h.pool()
        try await h.engine.createJob(JobSpec(
            id: "job", poolID: "pool",
            jobPreparationTask: JobPreparationTask(commandLine: sh("echo run >> \(effects)/prep")),
            jobReleaseTask: JobReleaseTask(commandLine: sh("echo run >> \(effects)/release; [ $(wc -l < \(effects)/release) -ge 2 ] || sleep 300"))))
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/task")))
        try await h.waitForTasks("job")
        try await h.engine.terminateJob(id: "job")
        try await h.engine.wait(timeout: .seconds(60)) { _ in !EngineHarness.lines("\(effects)/release").isEmpty }
        await h.engine.shutdown()
        try await Self.loseProcessTree(h, kind: "release")
        let restarted = try await h.reopened()
        try await withCleanup({ await restarted.finish() }) {
            try await restarted.waitForJob("job", .completed)
            #expect(EngineHarness.lines("\(effects)/prep").count == 1)
            #expect(EngineHarness.lines("\(effects)/release").count == 2)
            #expect(try await restarted.sql("SELECT release_state, release_exit_code FROM job_node") == [["completed", "0"]])
            // Done means done: another restart does not run it again.
            await restarted.engine.shutdown()
            let again = try await h.reopened()
            try await withCleanup({ await again.engine.shutdown() }) {
                try await again.dispatchSentinel()
            }
            #expect(EngineHarness.lines("\(effects)/release").count == 2)
            #expect(try await again.sql("SELECT count(*) FROM event WHERE job_id = 'job' AND kind = 'release.running'") == [["2"]])
        }
    }
}
