import Bookend
import Foundation
import SQLite
import TestSupport
import Testing

/// One engine per data directory, execution identities that are never reused, status folders that
/// go with their executions, and the defined outcome of durable writes that fail.
@Suite struct IdentityTests {
    static let binary = Repository.path(".build/debug/bookend")

    // MARK: A configuration the engine cannot run with

    /// An embedding program's configuration is checked before anything is created: a tick interval of
    /// zero had the pass timer fire without pause, one core spent for nothing, and no error.
    @Test(arguments: [
        (EngineConfiguration(tickInterval: .zero), "tickInterval must be more than zero"),
        (EngineConfiguration(tickInterval: .milliseconds(-5)), "tickInterval must be more than zero"),
        (EngineConfiguration(killGracePeriod: .seconds(-1)), "killGracePeriod must be zero or more"),
        (EngineConfiguration(drainOnShutdown: .seconds(-1)), "drainOnShutdown must be zero or more"),
        (EngineConfiguration(maxLostExecutionRequeues: -1), "maxLostExecutionRequeues must be zero or more"),
        (EngineConfiguration(historyRetention: .seconds(-1)), "historyRetention must be zero or more"),
        ({ var c = EngineConfiguration(); c.taskProcessLimit = 0; return c }(), "taskProcessLimit must be at least 1"),
    ])
    func aConfigurationTheEngineCannotRunWithIsRefusedBeforeAnythingOpens(_ configuration: EngineConfiguration, _ message: String) async throws {
        let directory = try TemporaryDirectory()
        let data = directory.file("data")
        do {
            let engine = try await Engine.open(dataDirectory: data, configuration: configuration)
            await engine.shutdown()
            Issue.record("opened with \(message)")
        } catch let error as BookendError {
            #expect(error.code == "InvalidEngineConfiguration")
            #expect(error.message.hasPrefix(message), "\(error.message)")
        }
        #expect(!FileManager.default.fileExists(atPath: data), "nothing was created")
    }

    // MARK: One engine per data directory

    @Test func aSecondEngineOnTheSameDirectoryIsRefusedNamingTheFirst() async throws {
        let h = try await EngineHarness.make()
        do {
            let second = try await Engine.open(dataDirectory: h.directory)
            await second.shutdown()
            Issue.record("a second engine opened the same data directory")
        } catch {
            #expect("\(error)".contains("in use by another Bookend process (pid \(getpid()))"), "\(error)")
        }
        // bookend migrate refuses too; bookend sql reads while the engine runs.
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build bookend first (swift build)")
        let migrate = try await run(Self.binary, ["migrate", "--data-dir", h.directory])
        #expect(migrate.status != 0)
        #expect(migrate.stderr.contains("pid \(getpid())"), "\(migrate.stderr)")
        #expect(migrate.stderr.split(separator: "\n").count == 1, "one line: \(migrate.stderr)")
        let sql = try await run(Self.binary, ["sql", "--data-dir", h.directory, "SELECT count(*) FROM pool"])
        #expect(sql.status == 0, "\(sql.stderr)")
        // Once the first engine has shut down, the directory is free again.
        await h.engine.shutdown()
        let next = try await h.reopened()
        await next.finish()
    }

    @Test func aSecondServeExitsNamingTheFirstAndAKilledServeLeavesTheDirectoryFree() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let data = directory.file("data")
        let first = try Serving(binary: Self.binary, data: data, log: directory.file("first.log"))
        defer { first.send(SIGKILL) }
        try await first.waitUntilServing()

        let second = try await run(Self.binary, ["serve", "--data-dir", data, "--listen", "127.0.0.1:0"])
        #expect(second.status != 0)
        #expect(second.stderr.contains("in use by another Bookend process (pid \(first.pid))"), "\(second.stderr)")
        #expect(second.stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1, "one line: \(second.stderr)")

        // kill -9: the lock dies with the process, and the next serve starts.
        first.send(SIGKILL)
        first.waitForExit()
        let third = try Serving(binary: Self.binary, data: data, log: directory.file("third.log"))
        defer { third.send(SIGKILL) }
        try await third.waitUntilServing()
        third.send(SIGTERM)
        third.waitForExit()
    }

    // MARK: Durable writes that fail

    /// The shim cannot write its exit file (its status folder is made immutable while the command
    /// runs): the task fails with ExitStatusNotRecorded and is not run again.
    @Test(.enabled(if: geteuid() == 0, "chattr +i needs root"))
    func aShimThatCannotWriteItsExitFileFailsTheTaskWithoutRerunningIt() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t",
                commandLine: sh("echo run >> \(effects)/runs; while [ ! -e \(effects)/go ]; do sleep 0.05; done; exit 5")))
            try await h.engine.wait(timeout: .seconds(60)) { _ in !EngineHarness.lines("\(effects)/runs").isEmpty }
            let status = try #require(try await h.sql("SELECT status_dir FROM execution WHERE kind = 'task' AND state = 'running'").first?.first)
            let immutable = try await run("/usr/bin/chattr", ["+i", status])
            try #require(immutable.status == 0, "chattr +i \(status): \(immutable.stderr)")
            // Made mutable again on every path, before the harness removes the folder.
            try await withCleanup({ _ = try? await run("/usr/bin/chattr", ["-i", status]) }) {
                FileManager.default.createFile(atPath: "\(effects)/go", contents: nil)
                try await h.waitForTasks("job")
            }
            let task = try await h.engine.task(jobID: "job", taskID: "t")
            #expect(task.executionInfo.result == "failure")
            #expect(task.executionInfo.failureInfo?.code == "ExitStatusNotRecorded")
            #expect(task.executionInfo.failureInfo?.category == "servererror")
            #expect(task.executionInfo.exitCode == nil)
            #expect(task.executionInfo.requeueCount == 0 && task.executionInfo.retryCount == 0)
            #expect(EngineHarness.lines("\(effects)/runs").count == 1)
            #expect(try await h.sql("SELECT kind, json_extract(detail, '$.code') FROM event WHERE kind = 'execution.fault'")
                == [["execution.fault", "ExitStatusNotRecorded"]])
        }
    }

    /// The "record the process" transaction fails (a trigger makes the database refuse the update, as
    /// a full disk would): the process is killed and the task fails with LaunchNotRecorded.
    @Test func aLaunchThatCannotBeRecordedIsKilledAndFailsTheTask() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool()
            // A busy timeout: the engine may be writing (a scheduling pass) at that very moment.
            let refuse = try await run("/usr/bin/sqlite3", ["-cmd", ".timeout 60000", (h.directory as NSString).appendingPathComponent("bookend.db"),
                "CREATE TRIGGER refuse_pid BEFORE UPDATE OF pid ON execution WHEN NEW.pid IS NOT NULL BEGIN SELECT RAISE(ABORT, 'disk full'); END"])
            try #require(refuse.status == 0, "\(refuse.stderr)")
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/runs; sleep 300; echo late >> \(effects)/runs")))
            try await h.waitForTasks("job")
            let task = try await h.engine.task(jobID: "job", taskID: "t")
            #expect(task.executionInfo.result == "failure")
            #expect(task.executionInfo.failureInfo?.code == "LaunchNotRecorded")
            #expect(task.executionInfo.failureInfo?.category == "servererror")
            #expect(task.executionInfo.requeueCount == 0 && task.executionInfo.retryCount == 0)
            #expect(try await h.sql("SELECT state, pid IS NULL FROM execution") == [["completed", "1"]])
            #expect(try await h.sql("SELECT json_extract(detail, '$.code') FROM event WHERE kind = 'execution.fault'") == [["LaunchNotRecorded"]])
            // Killed, not left running where nothing could reach it.
            try await h.engine.wait(timeout: .seconds(60)) { _ in processesMentioning(h.directory).isEmpty }
            #expect(EngineHarness.lines("\(effects)/runs").count <= 1)
            #expect(!EngineHarness.lines("\(effects)/runs").contains("late"))
        }
    }

    /// Executions lost (process tree gone, no exit status) are requeued a bounded number of times.
    @Test func lostExecutionsAreRequeuedOnlyUpToTheLimit() async throws {
        let configuration = EngineConfiguration(tickInterval: .milliseconds(100), maxLostExecutionRequeues: 1)
        var h = try await EngineHarness.make(configuration: configuration)
        let effects = try h.sideEffects()
        try await h.pool()
        try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/runs; sleep 300")))
        for round in 1...2 {
            try await h.engine.wait(timeout: .seconds(60)) { _ in EngineHarness.lines("\(effects)/runs").count == round }
            try await h.engine.wait(timeout: .seconds(60)) { engine in try engine.task(jobID: "job", taskID: "t").state == .running }
            let current = h
            try await h.engine.wait(timeout: .seconds(60)) { _ in (try? current.sqlOnCallingThread("SELECT pid FROM execution WHERE kind = 'task' AND state = 'running'"))?.isEmpty == false }
            await h.engine.shutdown()
            try await CrashTests.loseProcessTree(h, kind: "task")
            h = EngineHarness(directory: h.directory, engine: try await Engine.open(dataDirectory: h.directory, configuration: configuration))
        }
        try await withCleanup({ await h.finish() }) {
            try await h.waitForTasks("job")
            let task = try await h.engine.task(jobID: "job", taskID: "t")
            #expect(task.executionInfo.failureInfo?.code == "ExecutionLostTooOften")
            #expect(task.executionInfo.failureInfo?.category == "servererror")
            #expect(task.executionInfo.requeueCount == 1)
            #expect(EngineHarness.lines("\(effects)/runs").count == 2)
        }
    }

    // MARK: Identities never reused

    @Test func executionKeysAreNeverReusedAndEachLaunchHasItsOwnStatusFolder() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let nodes = try await h.pool()
            try await h.engine.createJob(JobSpec(id: "a", poolID: "pool"))
            try await h.engine.addTask(jobID: "a", TaskSpec(id: "t", commandLine: sh("exit 7")))
            try await h.waitForTasks("a")
            let first = try #require(try await h.sql("SELECT pk, launch_nonce, status_dir FROM execution WHERE kind = 'task'").first)
            #expect(first[2] == (nodes[0].rootDirectory as NSString).appendingPathComponent("volatile/executions/\(first[0])-\(first[1])"))
            // The exit is recorded: the folder is gone.
            #expect(!FileManager.default.fileExists(atPath: first[2]))
            try await h.engine.deleteJob(id: "a")
            try await h.waitForJobDeletion("a")
            try await h.engine.createJob(JobSpec(id: "b", poolID: "pool"))
            try await h.engine.addTask(jobID: "b", TaskSpec(id: "t", commandLine: sh("exit 3")))
            try await h.waitForTasks("b")
            let second = try #require(try await h.sql("SELECT pk, launch_nonce FROM execution WHERE kind = 'task'").first)
            #expect(Int(second[0])! > Int(first[0])!, "the deleted execution's key is not handed out again")
            #expect(second[1] != first[1])
            #expect(try await h.engine.task(jobID: "b", taskID: "t").executionInfo.exitCode == 3)
            let left = try FileManager.default.contentsOfDirectory(atPath: (nodes[0].rootDirectory as NSString).appendingPathComponent("volatile/executions"))
            #expect(left.isEmpty, "\(left)")
        }
    }

    @Test func aTaskDeletedWhileRunningTakesItsStatusFolderWithIt() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/runs; sleep 300")))
            try await h.engine.wait(timeout: .seconds(60)) { _ in !EngineHarness.lines("\(effects)/runs").isEmpty }
            let status = try #require(try await h.sql("SELECT status_dir FROM execution WHERE kind = 'task'").first?.first)
            #expect(FileManager.default.fileExists(atPath: "\(status)/pid"))
            try await h.engine.deleteTask(jobID: "job", taskID: "t")
            #expect(!FileManager.default.fileExists(atPath: status))
            try await h.engine.wait(timeout: .seconds(60)) { _ in processesMentioning(h.directory).isEmpty }
        }
    }

    @Test func migrationFiveKeepsExecutionsAndNeverReusesTheirKeys() throws {
        let directory = try TemporaryDirectory()
        let connection = try Connection(path: DataDirectory.databasePath(directory.path))
        #expect(try connection.migrate(Array(Schema.migrations.prefix(4))) == 4)
        try SampleData.insert(into: connection, version: 4)
        let columns = """
            pk, kind, node_pk, job_pk, task_pk, attempt, state, task_dir, status_dir, start_time, end_time, deadline, pid,
            pid_start_time, kill_reason, exit_code, result, failure_info, retry_count, requeue_count, interrupted,
            retention_deadline, files_deleted_time
            """
        let before = try connection.values("SELECT \(columns) FROM execution ORDER BY pk")
        let history = try connection.values("SELECT * FROM task_history ORDER BY job_id, task_id, attempt")
        #expect(try connection.migrate(Schema.migrations) == Schema.version)
        // Every column as it was; the new nonce is empty for rows from before.
        #expect(try connection.values("SELECT \(columns) FROM execution ORDER BY pk") == before)
        #expect(try connection.values("SELECT count(*) FROM execution WHERE launch_nonce IS NOT NULL") == [[.integer(0)]])
        #expect(try connection.values("SELECT * FROM task_history ORDER BY job_id, task_id, attempt") == history)
        let indexes = try connection.query("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'execution' ORDER BY name")
            .compactMap { $0[0].string }
        // Every index the rebuild kept, and those of migration 11.
        #expect(indexes == ["execution_deadline", "execution_job", "execution_killing", "execution_live", "execution_retention", "execution_task"])
        #expect(try connection.values("PRAGMA foreign_key_check").isEmpty)
        // Delete the newest execution and insert another: it gets a new key.
        let newest = try #require(try connection.scalar("SELECT max(pk) FROM execution").int64)
        try connection.run("DELETE FROM execution WHERE pk = ?", [newest])
        try connection.run(
            """
            INSERT INTO execution (kind, node_pk, job_pk, task_pk, attempt, state, task_dir, status_dir, start_time)
            SELECT kind, node_pk, job_pk, task_pk, attempt, 'starting', task_dir, '', start_time FROM execution LIMIT 1
            """)
        #expect(connection.lastInsertRowID > newest)
        // The CHECKs came along.
        #expect(throws: SQLiteError.self) { try connection.run("UPDATE execution SET state = 'bogus' WHERE pk = ?", [connection.lastInsertRowID]) }
        #expect(throws: SQLiteError.self) { try connection.run("UPDATE execution SET launch_nonce = 'x' WHERE pk = ?", [connection.lastInsertRowID]) }
    }
}

/// Live processes whose command line or environment mentions `text` (workload commands carry the
/// data directory in their AZ_BATCH_* environment).
func processesMentioning(_ text: String) -> [Int32] {
    let needle = Array(text.utf8)
    var found: [Int32] = []
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), pid != getpid(),
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] != "Z"
        else { continue }
        for file in ["cmdline", "environ"] {
            guard let bytes = FileManager.default.contents(atPath: "/proc/\(pid)/\(file)").map(Array.init), bytes.count >= needle.count else { continue }
            if (0...(bytes.count - needle.count)).contains(where: { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }) {
                found.append(pid)
                break
            }
        }
    }
    return found
}

/// A `bookend serve` process on loopback, its output in a log file.
final class Serving: @unchecked Sendable {
    let process: ChildProcess
    let log: String

    init(binary: String, data: String, log: String) throws {
        self.log = log
        FileManager.default.createFile(atPath: log, contents: nil)
        process = try ChildProcess(binary, ["serve", "--data-dir", data, "--listen", "127.0.0.1:0"], output: .file(log))
    }

    var pid: Int32 { process.pid }

    /// Waits for the line the daemon prints once it listens (or fails with its log if it ended).
    func waitUntilServing() async throws {
        // The log is read before the deadline is looked at: with every suite running at once this
        // task can wait for a thread far longer than its 20 ms sleep, and a line printed meanwhile
        // must still count.
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if text.contains("Endpoint:") { return }
            try #require(process.isRunning, "serve ended: \(text)")
            if ContinuousClock.now >= deadline {
                Issue.record("serve did not start listening within 60 s: \(text)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func send(_ signal: Int32) { process.signal(signal) }
    func waitForExit() { process.waitUntilExit() }
}

extension CrashTests {
    /// Job R1's task exits 7 and R1 is deleted; R2's task (exit 3) is the next execution. The driver is
    /// killed at each point around R2's launch and restarted: R2's task runs once and records its own
    /// exit code, never R1's (which it was given when execution ids were reused), and no status
    /// folder is left behind. A shim that outlived the killed driver does not keep the directory locked.
    @Test(arguments: ["after-commit:task.running#2", "launch.after-spawn#2", "launch.after-record#2", "exits.before-record#2", "after-commit:job.deleted"])
    func aDeletedJobsExecutionsAreNeverMistakenForTheNextOnes(_ point: String) async throws {
        try await Limiter.shared.run {
            let directory = try Driver.directory("reuse-\(point)")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let parts = point.split(separator: "#")
            var environment = ["BOOKEND_CRASH_AT": String(parts[0])]
            if parts.count > 1 { environment["BOOKEND_CRASH_AFTER"] = String(parts[1]) }
            let ended = try await Driver.run(directory, spec: "reuse", environment: environment)
            try #require(ended == .killed, "the driver should die by SIGKILL at \(point), but \(ended)")
            // Whatever shims survived the engine, the directory's lock died with it.
            let lock = try DataDirectoryLock(directory: directory)
            lock.release()
            try await Driver.finish(directory, spec: "reuse")
            let outcome = try await Snapshot.read(directory)
            #expect(outcome.tasks == ["R2|t|completed|3|failure"])
            #expect(outcome.jobs == ["R2|completed"])
            #expect(outcome.taskRuns == ["R1.t": 1, "R2.t": 1])
            outcome.checkInvariants(deletedJobs: ["R1"])
        }
    }
}
