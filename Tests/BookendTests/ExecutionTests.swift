import Bookend
import Foundation
import TestSupport
import Testing

/// How tasks run: wall clock, retries, environment and directories, resource files, retention,
/// slots, dependencies, elevation, and surviving an engine restart.
@Suite struct ExecutionTests {
    /// The limit is 5 s rather than 1 s so that the shell has written its grandchild's pid before the
    /// kill even when a full parallel test run keeps both cores busy (CI saw a 1 s limit end the task
    /// before its first line ran).
    @Test func aTimedOutTaskIsKilledWithItsGrandchildren() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "slow",
                commandLine: sh("sleep 100 & echo $! > \(effects)/grandchild; sleep 100"),
                constraints: TaskConstraints(maxWallClockTime: "PT5S", maxTaskRetryCount: 3)))
            try await h.waitForTasks("job")
            let task = try await h.engine.task(jobID: "job", taskID: "slow")
            #expect(task.executionInfo.result == "failure")
            #expect(task.executionInfo.failureInfo?.code == "TaskEnded")
            #expect(task.executionInfo.failureInfo?.details?.contains(NameValuePair(name: "Reason", value: "MaxWallClockTimeExpiry")) == true)
            #expect(task.executionInfo.retryCount == 0)
            let pid = try #require(Int32(EngineHarness.lines("\(effects)/grandchild").first ?? ""))
            try await h.engine.wait(timeout: .seconds(60)) { _ in kill(pid, 0) != 0 }
            #expect(kill(pid, 0) != 0)
        }
    }

    @Test func aFailingTaskIsRetriedAndItsRunsCounted() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "flaky", commandLine: sh("echo run >> \(effects)/runs; exit 3"),
                constraints: TaskConstraints(maxTaskRetryCount: 2)))
            try await h.waitForTasks("job")
            let task = try await h.engine.task(jobID: "job", taskID: "flaky")
            #expect(EngineHarness.lines("\(effects)/runs").count == 3)
            #expect(task.executionInfo.retryCount == 2)
            #expect(task.executionInfo.exitCode == 3)
            #expect(task.executionInfo.failureInfo?.code == "FailureExitCode")
            #expect(try await h.sql("SELECT attempt, exit_code, retry_count FROM task_history WHERE task_id = 'flaky' ORDER BY attempt")
                == [["1", "3", "0"], ["2", "3", "1"], ["3", "3", "2"]])
            #expect(try await h.engine.taskCounts(jobID: "job").taskCounts.failed == 1)
        }
    }

    @Test func theEnvironmentAndDirectoriesFollowTheBatchContract() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let nodes = try await h.pool()
            let root = nodes[0].rootDirectory
            var job = JobSpec(id: "job", poolID: "pool", jobPreparationTask: JobPreparationTask(commandLine: "/usr/bin/env"))
            job.commonEnvironmentSettings = [EnvironmentSetting(name: "COMMON", value: "job"), EnvironmentSetting(name: "BOTH", value: "job")]
            try await h.engine.createJob(job)
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "env", commandLine: "/usr/bin/env",
                environmentSettings: [EnvironmentSetting(name: "BOTH", value: "task"), EnvironmentSetting(name: "AZ_BATCH_NODE_ID", value: "forged")]))
            try await h.waitForTasks("job")
            let output = try await h.engine.readTaskFile(jobID: "job", taskID: "env", path: "stdout.txt")
            var env: [String: String] = [:]
            for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { env[parts[0]] = parts[1] }
            }
            let taskDirectory = "\(root)/workitems/job/job-1/env"
            #expect(env["AZ_BATCH_NODE_ID"] == nodes[0].id)
            #expect(env["AZ_BATCH_POOL_ID"] == "pool")
            #expect(env["AZ_BATCH_JOB_ID"] == "job")
            #expect(env["AZ_BATCH_TASK_ID"] == "env")
            #expect(env["AZ_BATCH_NODE_ROOT_DIR"] == root)
            #expect(env["AZ_BATCH_NODE_SHARED_DIR"] == "\(root)/shared")
            #expect(env["AZ_BATCH_NODE_STARTUP_DIR"] == "\(root)/startup")
            #expect(env["AZ_BATCH_TASK_DIR"] == taskDirectory)
            #expect(env["AZ_BATCH_TASK_WORKING_DIR"] == "\(taskDirectory)/wd")
            #expect(env["AZ_BATCH_JOB_PREP_DIR"] == "\(root)/workitems/job/job-1/jobpreparation")
            #expect(env["AZ_BATCH_JOB_PREP_WORKING_DIR"] == "\(root)/workitems/job/job-1/jobpreparation/wd")
            #expect(env["AZ_BATCH_NODE_IS_DEDICATED"] == "true")
            #expect(env["AZ_BATCH_TASK_USER_IDENTITY"] == "PoolNonAdmin")
            #expect(env["HOME"] == "\(taskDirectory)/wd")
            #expect(env["PWD"] == "\(taskDirectory)/wd")
            #expect(env["PATH"]?.hasSuffix(":\(root)/shared:\(taskDirectory)/wd") == true)
            #expect(env["COMMON"] == "job")
            #expect(env["BOTH"] == "task")
            #expect(env["BOOKEND_CRASH_AT"] == nil)
            #expect(FileManager.default.fileExists(atPath: "\(taskDirectory)/stderr.txt"))
            // The preparation task sees its own id and no AZ_BATCH_JOB_PREP_DIR.
            let prepOutput = try await h.engine.readNodeFile(poolID: "pool", nodeID: nodes[0].id, path: "workitems/job/job-1/jobpreparation/stdout.txt")
            let prepText = String(decoding: prepOutput, as: UTF8.self)
            #expect(prepText.contains("AZ_BATCH_TASK_ID=jobpreparation"))
            #expect(!prepText.contains("AZ_BATCH_JOB_PREP_DIR="))
        }
    }

    @Test func commandLinesRunWithoutAShell() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "echo", commandLine: "/bin/echo 'a  b' $HOME \"c\""))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "missing", commandLine: "no-such-program --flag"))
            try await h.waitForTasks("job")
            let echo = try await h.engine.readTaskFile(jobID: "job", taskID: "echo", path: "stdout.txt")
            #expect(String(decoding: echo, as: UTF8.self) == "a  b $HOME c\n")
            let missing = try await h.engine.task(jobID: "job", taskID: "missing")
            #expect(missing.executionInfo.failureInfo?.code == "CommandProgramNotFound")
            #expect(missing.executionInfo.exitCode == nil)
            #expect(missing.executionInfo.result == "failure")
        }
    }

    @Test func resourceFilesArriveFromHTTPAndFileURLs() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let served = (h.directory as NSString).appendingPathComponent("served")
            try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
            try "from http\n".write(toFile: "\(served)/input.txt", atomically: true, encoding: .utf8)
            try "from file\n".write(toFile: "\(served)/local.txt", atomically: true, encoding: .utf8)
            let server = try HTTPFileServer(directory: served)
            defer { server.stop() }
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "fetch", commandLine: sh("cat data/input.txt local.txt"),
                resourceFiles: [ResourceFile(httpUrl: "\(server.url)/input.txt", filePath: "data/input.txt", fileMode: "0640"),
                                ResourceFile(httpUrl: "file://\(served)/local.txt", filePath: "local.txt")]))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "absent", commandLine: "/bin/true",
                resourceFiles: [ResourceFile(httpUrl: "\(server.url)/nope.txt", filePath: "nope.txt")]))
            try await h.waitForTasks("job")
            let output = try await h.engine.readTaskFile(jobID: "job", taskID: "fetch", path: "stdout.txt")
            #expect(String(decoding: output, as: UTF8.self) == "from http\nfrom file\n")
            let absent = try await h.engine.task(jobID: "job", taskID: "absent")
            #expect(absent.executionInfo.failureInfo?.code == "BlobNotFound")
            #expect(absent.executionInfo.exitCode == nil)
            #expect(absent.executionInfo.retryCount == 0)
        }
    }

    @Test func containerResourceFilesComeFromTheLocalStorageFolder() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let container = (h.engine.storageDirectory as NSString).appendingPathComponent("inputs")
            try FileManager.default.createDirectory(atPath: container + "/a", withIntermediateDirectories: true)
            try "x\n".write(toFile: container + "/a/x.txt", atomically: true, encoding: .utf8)
            try "b\n".write(toFile: container + "/b.txt", atomically: true, encoding: .utf8)
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "prefixed", commandLine: sh("cat in/a/x.txt; test ! -e in/b.txt"),
                resourceFiles: [ResourceFile(autoStorageContainerName: "inputs", blobPrefix: "a/", filePath: "in")]))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "byURL", commandLine: sh("cat b.txt a/x.txt"),
                resourceFiles: [ResourceFile(storageContainerUrl: "https://account.blob.core.windows.net/inputs?sv=2024&sig=secret")]))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "missing", commandLine: "/bin/true",
                resourceFiles: [ResourceFile(autoStorageContainerName: "absent")]))
            try await h.waitForTasks("job")
            #expect(String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: "prefixed", path: "stdout.txt"), as: UTF8.self) == "x\n")
            #expect(String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: "byURL", path: "stdout.txt"), as: UTF8.self) == "b\nx\n")
            #expect(try await h.engine.task(jobID: "job", taskID: "missing").executionInfo.failureInfo?.code == "BlobNotFound")
        }
    }

    @Test func aResourceFilePathThatLeavesTheWorkingDirectoryIsRefused() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            for path in ["../escape.txt", "/etc/passwd", "a/../../b", ".."] {
                do {
                    try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/bin/true",
                        resourceFiles: [ResourceFile(httpUrl: "http://127.0.0.1:1/x", filePath: path)]))
                    Issue.record("\(path) was accepted")
                } catch let error as BookendError {
                    #expect(error.code == "InvalidPropertyValue")
                }
            }
            #expect(try await h.engine.tasks(jobID: "job").isEmpty)
            // Reading files cannot leave the task directory either.
            try await h.pool()
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "ok", commandLine: sh("ln -s /etc/passwd wd/link")))
            try await h.waitForTasks("job")
            await #expect(throws: BookendError.self) { try await h.engine.readTaskFile(jobID: "job", taskID: "ok", path: "../../../../../etc/passwd") }
            await #expect(throws: BookendError.self) { try await h.engine.readTaskFile(jobID: "job", taskID: "ok", path: "wd/link") }
        }
    }

    @Test func retentionDeletesDirectoriesOnTimeAndAcrossARestart() async throws {
        let h = try await EngineHarness.make()
        let nodes = try await h.pool()
        try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "short", commandLine: "/bin/true", constraints: TaskConstraints(retentionTime: "PT1S")))
        // A day: no stall of a loaded machine reaches it while the first engine runs. Its deadline is
        // moved into the past while the engine is down, as if the clock had run on meanwhile.
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "later", commandLine: "/bin/true", constraints: TaskConstraints(retentionTime: "P1D")))
        try await h.waitForTasks("job")
        let short = "\(nodes[0].rootDirectory)/workitems/job/job-1/short"
        let later = "\(nodes[0].rootDirectory)/workitems/job/job-1/later"
        #expect(FileManager.default.fileExists(atPath: later))
        try await h.engine.wait(timeout: .seconds(60)) { _ in !FileManager.default.fileExists(atPath: short) }
        do {
            _ = try await h.engine.readTaskFile(jobID: "job", taskID: "short", path: "stdout.txt")
            Issue.record("files of a cleaned-up task were served")
        } catch let error as BookendError {
            #expect(error.code == "TaskFilesCleanedup")
        }
        // On time: the deadline is the end plus the retention, and the files went only after it.
        let byTask = "FROM execution e JOIN task t ON t.pk = e.task_pk WHERE t.id = "
        #expect(try await h.sql(
            "SELECT CAST(round((julianday(e.retention_deadline) - julianday(e.end_time)) * 86400) AS INTEGER), "
                + "e.files_deleted_time >= e.retention_deadline \(byTask)'short'") == [["1", "1"]])
        // The engine is down when the second deadline passes; the next one honours it.
        await h.engine.shutdown()
        #expect(FileManager.default.fileExists(atPath: later))
        let moved = try await run("/usr/bin/sqlite3", ["-cmd", ".timeout 60000", (h.directory as NSString).appendingPathComponent("bookend.db"),
            "UPDATE execution SET retention_deadline = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 second') "
                + "WHERE task_pk = (SELECT pk FROM task WHERE id = 'later')"])
        try #require(moved.status == 0, "\(moved.stderr)")
        let restarted = try await h.reopened()
        try await withCleanup({ await restarted.finish() }) {
            try await restarted.engine.wait(timeout: .seconds(60)) { _ in !FileManager.default.fileExists(atPath: later) }
            #expect(try await restarted.sql("SELECT count(*) FROM task_history WHERE retention_deadline IS NOT NULL") == [["2"]])
            #expect(try await restarted.sql("SELECT e.files_deleted_time IS NOT NULL \(byTask)'later'") == [["1"]])
        }
    }

    @Test(arguments: ["spread", "pack"])
    func slotsAreFilledBySpreadOrPack(fill: String) async throws {
        let h = try await EngineHarness.make("slots\(fill)")
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 2, slots: 2, fill: fill)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            _ = try await h.engine.addTasks(jobID: "job", [TaskSpec(id: "a", commandLine: "/bin/sleep 0.5"), TaskSpec(id: "b", commandLine: "/bin/sleep 0.5")])
            try await h.waitForTasks("job")
            let a = try await h.engine.task(jobID: "job", taskID: "a").nodeInfo?.nodeId
            let b = try await h.engine.task(jobID: "job", taskID: "b").nodeInfo?.nodeId
            #expect(a != nil)
            if fill == "pack" { #expect(a == b) } else { #expect(a != b) }
        }
    }

    @Test func requiredSlotsLimitWhatRunsTogether() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1, slots: 3)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            // Each task records how many of them run at once via a shared counter file.
            let script = "echo start >> \(effects)/log; sleep 0.4; echo end >> \(effects)/log"
            _ = try await h.engine.addTasks(jobID: "job", (1...3).map { TaskSpec(id: "t\($0)", commandLine: sh(script), requiredSlots: 2) })
            try await h.waitForTasks("job")
            #expect(EngineHarness.peakConcurrency("\(effects)/log") == 1)
        }
    }

    @Test func dependenciesWaitForSuccessAndBlockOnFailure() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1, slots: 4)
            var job = JobSpec(id: "job", poolID: "pool")
            job.usesTaskDependencies = true
            try await h.engine.createJob(job)
            _ = try await h.engine.addTasks(jobID: "job", [
                TaskSpec(id: "1", commandLine: sh("sleep 0.3; echo 1 >> \(effects)/order")),
                TaskSpec(id: "2", commandLine: sh("echo 2 >> \(effects)/order")),
                TaskSpec(id: "after", commandLine: sh("echo after >> \(effects)/order"), dependsOn: TaskDependencies(taskIdRanges: [TaskIDRange(start: 1, end: 2)])),
                TaskSpec(id: "fails", commandLine: "/bin/false"),
                TaskSpec(id: "blocked", commandLine: "/bin/true", dependsOn: TaskDependencies(taskIds: ["fails"])),
            ])
            try await h.engine.wait(timeout: .seconds(60)) { engine in
                try engine.task(jobID: "job", taskID: "after").state == .completed && engine.task(jobID: "job", taskID: "fails").state == .completed
            }
            #expect(EngineHarness.lines("\(effects)/order").last == "after")
            // Slots are free and a later task runs: `blocked` was passed over, not just not reached yet.
            try await h.dispatchSentinel()
            #expect(try await h.engine.task(jobID: "job", taskID: "blocked").state == .active)
            #expect(try await h.sql("SELECT count(*) FROM event WHERE job_id = 'job' AND task_id = 'blocked' AND kind = 'task.running'") == [["0"]])
            do {
                try await h.engine.createJob(JobSpec(id: "nodeps", poolID: "pool"))
                try await h.engine.addTask(jobID: "nodeps", TaskSpec(id: "x", commandLine: "/bin/true", dependsOn: TaskDependencies(taskIds: ["y"])))
                Issue.record("dependsOn was accepted on a job without usesTaskDependencies")
            } catch let error as BookendError {
                #expect(error.code == "TaskDependenciesNotSpecifiedOnJob")
            }
        }
    }

    @Test func nonAdminWorkNeverRunsAsRoot() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "plain", commandLine: "/usr/bin/id -u"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "admin", commandLine: "/usr/bin/id -u", userIdentity: .admin))
            try await h.waitForTasks("job")
            let plain = String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: "plain", path: "stdout.txt"), as: UTF8.self)
            let admin = try await h.engine.task(jobID: "job", taskID: "admin")
            if geteuid() == 0 {
                #expect(plain.trimmingCharacters(in: .whitespacesAndNewlines) != "0")
                #expect(String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: "admin", path: "stdout.txt"), as: UTF8.self) == "0\n")
            } else {
                #expect(plain.trimmingCharacters(in: .whitespacesAndNewlines) == "\(geteuid())")
                #expect(admin.executionInfo.failureInfo?.code == "CommandLaunchFailed")
            }
        }
    }

    @Test func startTaskGatesTheNodeAndItsFailureMarksTheNode() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let good = try await h.pool("good", nodes: 1, startTask: StartTask(commandLine: sh("echo started > $AZ_BATCH_NODE_SHARED_DIR/started")))
            #expect(good[0].state == .idle)
            #expect(good[0].startTaskInfo?.result == "success")
            #expect(FileManager.default.fileExists(atPath: good[0].rootDirectory + "/shared/started"))
            let bad = try await h.pool("bad", nodes: 1, startTask: StartTask(commandLine: "/bin/false", maxTaskRetryCount: 1))
            #expect(bad[0].state == .starttaskfailed)
            #expect(bad[0].startTaskInfo?.retryCount == 1)
            #expect(bad[0].startTaskInfo?.exitCode == 1)
            // Spec §4.3: a reboot is for idle or running nodes only.
            let refused = await #expect(throws: BookendError.self) { try await h.engine.rebootNode(poolID: "bad", nodeID: bad[0].id) }
            #expect(refused?.code == "OperationInvalidForCurrentState")
            let after = try await h.engine.node(poolID: "bad", nodeID: bad[0].id)
            #expect(after.state == .starttaskfailed)
        }
    }

    @Test func aRunningTaskOutlivesTheEngineAndIsCollectedAfterRestart() async throws {
        let h = try await EngineHarness.make()
        let effects = try h.sideEffects()
        try await h.pool()
        try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("touch \(effects)/started; sleep 1; echo done >> \(effects)/runs; exit 5")))
        try await h.engine.wait(timeout: .seconds(60)) { _ in FileManager.default.fileExists(atPath: "\(effects)/started") }
        await h.engine.shutdown()
        // It ends while no engine runs.
        try await EngineHarness.waitUntil("the task ends") { EngineHarness.lines("\(effects)/runs") == ["done"] }
        let restarted = try await h.reopened()
        try await withCleanup({ await restarted.finish() }) {
            try await restarted.waitForTasks("job")
            let task = try await restarted.engine.task(jobID: "job", taskID: "t")
            #expect(task.executionInfo.exitCode == 5)
            #expect(EngineHarness.lines("\(effects)/runs") == ["done"])
        }
    }
}

/// A loopback HTTP server (python3's http.server) serving one folder, for resource-file tests.
final class HTTPFileServer: @unchecked Sendable {
    // Only touched from the test that owns it.
    let process: ChildProcess
    let url: String

    init(directory: String) throws {
        let port = Int.random(in: 20_000...60_000)
        process = try ChildProcess("/usr/bin/env", ["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", directory, "\(port)"])
        url = "http://127.0.0.1:\(port)"
        // Wait until it accepts connections.
        for _ in 0..<100 {
            if try spawnAndWait("/usr/bin/curl", ["-s", "-o", "/dev/null", url + "/"]).status == 0 { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    func stop() {
        process.signal(SIGKILL)
        process.waitUntilExit()
    }
}
