import Bookend
import Foundation
import TestSupport
import Testing

/// Tasks are isolated from each other when Bookend runs as root: each pool's non-admin work has an
/// account of its own (autoUser scope `pool`), a task with scope `task` has its own, and nothing of
/// one account's work can be read by another. Every check is made by a real task process trying to
/// read, with its findings in its stdout; the test only reads what it found.
@Suite struct IsolationTests {
    /// A task that keeps a secret in its stdout, its working folder and its environment, publishes its
    /// shell's pid and stays alive until `done` appears (at most 60 s, so nothing waits forever).
    static func victim(_ effects: String, scope: String?) -> TaskSpec {
        TaskSpec(id: "victim", commandLine: sh("""
            echo secret-in-stdout; echo secret-in-file > secret.txt
            echo $$ > \(effects)/victim.tmp && mv \(effects)/victim.tmp \(effects)/victim.pid
            i=0; while [ ! -e \(effects)/done ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
            """), environmentSettings: [EnvironmentSetting(name: "SECRET", value: "secret-in-environ")],
            userIdentity: scope.map { UserIdentity(autoUser: .init(scope: AutoUserScope(rawValue: $0), elevationLevel: .nonAdmin)) })
    }

    /// A task that tries to read the victim's stdout, a file in its working folder, its folder listing
    /// and the environment of its running process, and to write into its folder; prints one
    /// `what:read` or `what:denied` line each, then its own uid, then releases the victim.
    static func probe(_ effects: String, victimDirectory: String, scope: String?) -> TaskSpec {
        TaskSpec(id: "probe", commandLine: sh("""
            i=0; while [ ! -s \(effects)/victim.pid ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
            pid=$(cat \(effects)/victim.pid)
            v=\(victimDirectory)
            if cat $v/stdout.txt 2>/dev/null | grep -q secret; then echo stdout:read; else echo stdout:denied; fi
            if cat $v/wd/secret.txt 2>/dev/null | grep -q secret; then echo file:read; else echo file:denied; fi
            if ls $v/wd >/dev/null 2>&1; then echo list:read; else echo list:denied; fi
            if tr '\\0' '\\n' < /proc/$pid/environ 2>/dev/null | grep -q secret-in-environ; then echo environ:read; else echo environ:denied; fi
            if touch $v/wd/planted 2>/dev/null; then echo write:read; else echo write:denied; fi
            echo uid:$(id -u)
            echo user:$AZ_BATCH_TASK_USER
            echo identity:$AZ_BATCH_TASK_USER_IDENTITY
            echo victim-uid:$(stat -c %u /proc/$pid)
            touch \(effects)/done
            """), userIdentity: scope.map { UserIdentity(autoUser: .init(scope: AutoUserScope(rawValue: $0), elevationLevel: .nonAdmin)) })
    }

    /// The probe's findings, `what` → `read`/`denied` (and `uid`, `victim-uid`).
    static func findings(_ h: EngineHarness, job: String) async throws -> [String: String] {
        let output = String(decoding: try await h.engine.readTaskFile(jobID: job, taskID: "probe", path: "stdout.txt"), as: UTF8.self)
        var found: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map(String.init)
            if parts.count == 2 { found[parts[0]] = parts[1] }
        }
        return found
    }

    /// Two data directories never hand out the same uid: blocks are claimed in a machine-wide
    /// registry. Here a registry holds every block of the range but one: the engine's pool account
    /// comes from that one, and the claim names its data directory. (Before the registry each picked
    /// at random, and the test suite's hundreds of engines shared blocks several times a run.)
    @Test(.enabled(if: geteuid() == 0 && IsolationTests.mapsUIDs(0x4000_0000...0x6FFF_FFFF),
                   "task accounts exist only when Bookend runs as root, and come from this range where it is mapped"))
    func aDataDirectoryTakesOnlyAUidBlockNoOtherClaimed() async throws {
        let scratch = try TemporaryDirectory()
        let registry = scratch.file("task-uid-blocks")
        // Bookend's preferred range, in blocks of 65,536 (docs/security/isolation.md).
        let range: ClosedRange<UInt32> = 0x4000_0000...0x6FFF_FFFF
        let size: UInt32 = 65_536
        let blocks = (range.upperBound - range.lowerBound + 1) / size
        let free = range.lowerBound + (blocks / 2) * size
        let taken = (0..<blocks).map { range.lowerBound + $0 * size }.filter { $0 != free }
        try Data(taken.map { "\($0) /elsewhere/\($0)\n" }.joined().utf8).write(to: URL(fileURLWithPath: registry))
        var configuration = EngineConfiguration(tickInterval: .milliseconds(100))
        configuration.taskUIDRegistry = registry
        let h = try await EngineHarness.make(configuration: configuration)
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/usr/bin/id -u",
                userIdentity: UserIdentity(autoUser: .init(scope: AutoUserScope(rawValue: "pool"), elevationLevel: .nonAdmin))))
            try await h.waitForTasks("job")
            let uid = try #require(UInt32(try await h.sql("SELECT uid FROM pool")[0][0]))
            #expect((free...(free + size - 1)).contains(uid), "uid \(uid), the free block starts at \(free)")
            let output = String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: "t", path: "stdout.txt"), as: UTF8.self)
            #expect(output == "\(uid)\n")
            let lines = try String(contentsOfFile: registry, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == taken.count + 1)
            #expect(lines.last == "\(free) \(h.directory)"[...], "\(lines.last ?? "")")
        }
    }

    @Test(.enabled(if: geteuid() == 0, "task accounts exist only when Bookend runs as root"))
    func aTaskScopeTaskCannotReadAnotherTasksOutputEnvironmentOrFolder() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            let nodes = try await h.pool(slots: 2)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            let victimDirectory = nodes[0].rootDirectory + "/workitems/job/job-1/victim"
            try await h.engine.addTask(jobID: "job", IsolationTests.victim(effects, scope: "task"))
            try await h.engine.addTask(jobID: "job", IsolationTests.probe(effects, victimDirectory: victimDirectory, scope: "task"))
            try await h.waitForTasks("job")
            let found = try await IsolationTests.findings(h, job: "job")
            #expect(found["stdout"] == "denied")
            #expect(found["file"] == "denied")
            #expect(found["list"] == "denied")
            #expect(found["environ"] == "denied")
            #expect(found["write"] == "denied")
            let uid = try #require(found["uid"].flatMap { UInt32($0) })
            let victimUID = try #require(found["victim-uid"].flatMap { UInt32($0) })
            #expect(uid != victimUID)
            #expect(uid != 0 && victimUID != 0)
            #expect(found["user"] == "bookend-\(uid)")
            #expect(found["identity"] == "TaskNonAdmin")
            // Neither account exists in /etc/passwd: they are reserved uids, recorded per task.
            #expect(getpwuid(uid) == nil && getpwuid(victimUID) == nil)
            #expect(try await h.sql("SELECT id, uid FROM task ORDER BY id") == [["probe", "\(uid)"], ["victim", "\(victimUID)"]])
            // The victim kept its own things: its folder and output are its account's alone.
            var info = stat()
            #expect(stat(victimDirectory, &info) == 0 && info.st_uid == victimUID && info.st_mode & 0o777 == 0o700)
            #expect(stat(victimDirectory + "/stdout.txt", &info) == 0 && info.st_uid == victimUID && info.st_mode & 0o777 == 0o600)
            #expect(!FileManager.default.fileExists(atPath: victimDirectory + "/wd/planted"))
            let victim = String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: "victim", path: "stdout.txt"), as: UTF8.self)
            #expect(victim == "secret-in-stdout\n")
        }
    }

    @Test(.enabled(if: geteuid() == 0, "task accounts exist only when Bookend runs as root"))
    func aTaskOfAnotherPoolCannotReadThem() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            let victimNodes = try await h.pool("victims")
            try await h.pool("probes")
            try await h.engine.createJob(JobSpec(id: "victimjob", poolID: "victims"))
            try await h.engine.createJob(JobSpec(id: "probejob", poolID: "probes"))
            let victimDirectory = victimNodes[0].rootDirectory + "/workitems/victimjob/job-1/victim"
            try await h.engine.addTask(jobID: "victimjob", IsolationTests.victim(effects, scope: nil))
            try await h.engine.addTask(jobID: "probejob", IsolationTests.probe(effects, victimDirectory: victimDirectory, scope: nil))
            try await h.waitForTasks("probejob")
            try await h.waitForTasks("victimjob")
            let found = try await IsolationTests.findings(h, job: "probejob")
            #expect(found["stdout"] == "denied")
            #expect(found["file"] == "denied")
            #expect(found["list"] == "denied")
            #expect(found["environ"] == "denied")
            #expect(found["write"] == "denied")
            #expect(found["uid"] != found["victim-uid"])
            #expect(try await h.sql("SELECT count(DISTINCT uid) FROM pool WHERE uid IS NOT NULL") == [["2"]])
        }
    }

    @Test(.enabled(if: geteuid() == 0, "task accounts exist only when Bookend runs as root"))
    func tasksOfOnePoolWithPoolScopeShareItsAccount() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            let nodes = try await h.pool(slots: 2)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            let victimDirectory = nodes[0].rootDirectory + "/workitems/job/job-1/victim"
            try await h.engine.addTask(jobID: "job", IsolationTests.victim(effects, scope: "pool"))
            try await h.engine.addTask(jobID: "job", IsolationTests.probe(effects, victimDirectory: victimDirectory, scope: nil))
            try await h.waitForTasks("job")
            // As on Azure: one account for the pool's non-admin work, so each can read the other's.
            let found = try await IsolationTests.findings(h, job: "job")
            #expect(found["stdout"] == "read")
            #expect(found["file"] == "read")
            #expect(found["environ"] == "read")
            #expect(found["uid"] == found["victim-uid"])
            #expect(try await h.sql("SELECT p.uid = e.uid FROM pool p, execution e WHERE e.kind = 'task' GROUP BY 1") == [["1"]])
        }
    }

    @Test(.enabled(if: geteuid() == 0, "task accounts exist only when Bookend runs as root"))
    func linksATaskLeavesInItsFolderAreNeverFollowedByTheEngine() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            // Root's own things a task would like the engine to chown or write for it on its next attempt.
            let folder = h.directory + "/root-folder"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            chmod(folder, 0o755)
            let file = h.directory + "/root-file"
            try "root's\n".write(toFile: file, atomically: true, encoding: .utf8)
            chmod(file, 0o644)
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            // First attempt: swap wd/ (and, in the other task, stdout.txt) for a link, then fail so that
            // the task is retried.
            let retry = TaskConstraints(maxTaskRetryCount: 1)
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "wdlink", commandLine: sh("""
                echo attempt >> \(effects)/wdlink; cd $AZ_BATCH_TASK_DIR && mv wd wd.old && ln -s \(folder) wd; exit 1
                """), constraints: retry))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "outlink", commandLine: sh("""
                echo attempt >> \(effects)/outlink; cd $AZ_BATCH_TASK_DIR && rm -f stdout.txt && ln -s \(file) stdout.txt; exit 1
                """), constraints: retry))
            try await h.waitForTasks("job")
            // The retry ran in folders and files of its own, made afresh in place of the links (which
            // were removed, never followed): each task ran twice, as its retry count allows, and failed
            // by its own exit code both times. Its second attempt made the same links again.
            #expect(EngineHarness.lines("\(effects)/wdlink").count == 2)
            #expect(EngineHarness.lines("\(effects)/outlink").count == 2)
            for id in ["wdlink", "outlink"] {
                let task = try await h.engine.task(jobID: "job", taskID: id)
                #expect(task.executionInfo.result == "failure")
                #expect(task.executionInfo.failureInfo?.code == "FailureExitCode", "\(String(describing: task.executionInfo.failureInfo))")
                #expect(task.executionInfo.retryCount == 1)
            }
            var info = stat()
            #expect(stat(folder, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o7777 == 0o755)
            #expect(stat(file, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o7777 == 0o644)
            #expect(try String(contentsOfFile: file, encoding: .utf8) == "root's\n")
        }
    }

    /// A task that leaves a FIFO in place of its stdout.txt or stderr.txt for its retry: opening it
    /// would block the retry's start, and with it the engine that waits for the start. As root the
    /// engine removes what is not the account's own regular file before the retry (which then runs);
    /// without root the shim refuses it (`aFIFOInPlaceOfAnOutputFileIsALaunchFailureNotAHang`) and
    /// the retry fails to start. Either way at once, and the engine goes on running other work.
    @Test func aFIFOInPlaceOfItsOutputHoldsNothing() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(slots: 2)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            for (id, file) in [("outfifo", "stdout.txt"), ("errfifo", "stderr.txt")] {
                try await h.engine.addTask(jobID: "job", TaskSpec(id: id, commandLine: sh("""
                    echo attempt >> \(effects)/\(id); cd $AZ_BATCH_TASK_DIR && rm -f \(file) && mkfifo \(file); exit 1
                    """), constraints: TaskConstraints(maxTaskRetryCount: 1)))
            }
            try await h.waitForTasks("job")
            for id in ["outfifo", "errfifo"] {
                let task = try await h.engine.task(jobID: "job", taskID: id)
                #expect(task.executionInfo.retryCount == 1)
                if geteuid() == 0 {
                    #expect(EngineHarness.lines("\(effects)/\(id)").count == 2)
                    #expect(task.executionInfo.failureInfo?.code == "FailureExitCode", "\(String(describing: task.executionInfo.failureInfo))")
                } else {
                    #expect(EngineHarness.lines("\(effects)/\(id)").count == 1)
                    #expect(task.executionInfo.failureInfo?.code == "CommandLaunchFailed", "\(String(describing: task.executionInfo.failureInfo))")
                }
            }
            // The engine was not held: later work runs.
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "after", commandLine: sh("echo after >> \(effects)/after")))
            try await h.waitForTasks("job")
            #expect(EngineHarness.lines("\(effects)/after") == ["after"])
        }
    }

    /// A task that puts hard links to other files in place of its stdout.txt and stderr.txt before its
    /// retry: the engine must not give those files to the task's account (a hard link is the file
    /// itself, wherever its other name is). Root's file and another task's file keep their owners.
    @Test(.enabled(if: geteuid() == 0, "task accounts exist only when Bookend runs as root"))
    func hardLinksInPlaceOfItsOutputAreNeverGivenToTheTask() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            // World-writable files the task can link to (even with fs.protected_hardlinks=1, which lets
            // anyone link a file it may read and write).
            let rootFile = h.directory + "/root-file"
            let otherFile = h.directory + "/other-file"
            for file in [rootFile, otherFile] {
                try "keep\n".write(toFile: file, atomically: true, encoding: .utf8)
                chmod(file, 0o666)
            }
            chown(otherFile, 65534, 65534)
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "links", commandLine: sh("""
                echo attempt >> \(effects)/links; cd $AZ_BATCH_TASK_DIR && rm -f stdout.txt stderr.txt \
                  && ln \(rootFile) stdout.txt && ln \(otherFile) stderr.txt && echo linked >> \(effects)/links; exit 1
                """), constraints: TaskConstraints(maxTaskRetryCount: 1)))
            try await h.waitForTasks("job")
            #expect(EngineHarness.lines("\(effects)/links") == ["attempt", "linked", "attempt", "linked"])
            var info = stat()
            #expect(stat(rootFile, &info) == 0 && info.st_uid == 0 && info.st_gid == 0 && info.st_mode & 0o7777 == 0o666)
            #expect(stat(otherFile, &info) == 0 && info.st_uid == 65534 && info.st_gid == 65534)
            #expect(try String(contentsOfFile: rootFile, encoding: .utf8) == "keep\n")
            // The retry wrote into files of its own, made afresh.
            let task = try await h.engine.task(jobID: "job", taskID: "links")
            #expect(task.executionInfo.retryCount == 1)
            #expect(task.executionInfo.exitCode == 1)
        }
    }

    /// A preparation with scope `task` gets a new account each time it runs; after a reboot it runs
    /// again in the same folder. A process its first run left behind, holding that run's stdout.txt
    /// open, must not read what the second run (another account) writes: the folder is made afresh
    /// for the new account, not handed over inode by inode.
    @Test(.enabled(if: geteuid() == 0, "task accounts exist only when Bookend runs as root"))
    func aLeftoverProcessCannotReadTheNextAccountsOutputInAReusedFolder() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            let nodes = try await h.pool(nodes: 1)
            // First run: start a spy that keeps stdout.txt open and copies whatever is appended to it,
            // for up to 60 s or until `stop` appears. Every run prints a secret naming its account.
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("""
                    touch \(effects)/run-$(id -u)
                    if [ ! -e \(effects)/spy.started ]; then
                      touch \(effects)/spy.started
                      setsid sh -c 'exec 3< "$AZ_BATCH_TASK_DIR/stdout.txt"; i=0
                        while [ ! -e \(effects)/stop ] && [ $i -lt 600 ]; do cat <&3 >> \(effects)/spy.out; sleep 0.1; i=$((i+1)); done' \
                        < /dev/null > /dev/null 2>&1 &
                    fi
                    echo secret-of-$(id -u)
                    """), userIdentity: UserIdentity(autoUser: .init(scope: .task, elevationLevel: .nonAdmin)))))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "before", commandLine: "/bin/true"))
            try await h.waitForTasks("job")
            try await h.reboot(nodes[0])
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "after", commandLine: "/bin/true"))
            try await h.waitForTasks("job")
            // One file per run, named by its account (each account can write only files of its own).
            let runs = try FileManager.default.contentsOfDirectory(atPath: effects).filter { $0.hasPrefix("run-") }.sorted()
            #expect(runs.count == 2, "two runs as two accounts: \(runs)")
            // Give the spy a few rounds to copy anything it can still reach, then stop it.
            try await Task.sleep(for: .milliseconds(500))
            FileManager.default.createFile(atPath: "\(effects)/stop", contents: nil)
            let copied = EngineHarness.lines("\(effects)/spy.out")
            // It read its own run's secret (so it did watch the file), and not the other run's.
            let secrets = Set(runs.map { "secret-of-" + $0.dropFirst("run-".count) })
            #expect(copied.count == 1 && secrets.contains(copied[0]), "the spy read: \(copied); the runs wrote \(secrets)")
        }
    }

    @Test(.enabled(if: geteuid() == 0, "admin work exists only when Bookend runs as root"))
    func adminWorkNeverRunsAProgramANonAdminTaskPlanted() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "plant", poolID: "pool"))
            // A non-admin task plants a program in shared/ and in nothing else, under a name no system folder has.
            try await h.engine.addTask(jobID: "plant", TaskSpec(id: "plant", commandLine: sh("""
                printf '#!/bin/sh\\nid -u >> \(effects)/planted-ran\\n' > $AZ_BATCH_NODE_SHARED_DIR/bookend-planted && chmod 755 $AZ_BATCH_NODE_SHARED_DIR/bookend-planted
                """)))
            try await h.waitForTasks("plant")
            try await h.engine.createJob(JobSpec(id: "use", poolID: "pool"))
            try await h.engine.addTask(jobID: "use", TaskSpec(id: "admin", commandLine: "bookend-planted", userIdentity: .admin))
            try await h.engine.addTask(jobID: "use", TaskSpec(id: "adminpath", commandLine: sh("echo $PATH"), userIdentity: .admin))
            try await h.engine.addTask(jobID: "use", TaskSpec(id: "plain", commandLine: "bookend-planted"))
            try await h.waitForTasks("use")
            let admin = try await h.engine.task(jobID: "use", taskID: "admin")
            #expect(admin.executionInfo.failureInfo?.code == "CommandProgramNotFound")
            let path = String(decoding: try await h.engine.readTaskFile(jobID: "use", taskID: "adminpath", path: "stdout.txt"), as: UTF8.self)
            #expect(path == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
            // Non-admin work still finds programs in shared/ (as on Azure): the plant itself worked, and
            // only ever ran without root.
            let plain = try await h.engine.task(jobID: "use", taskID: "plain")
            #expect(plain.executionInfo.exitCode == 0)
            let ran = EngineHarness.lines("\(effects)/planted-ran")
            #expect(ran.count == 1)
            #expect(!ran.contains("0"))
        }
    }

    @Test(.enabled(if: geteuid() == 0, "the reachability check applies when Bookend runs as root"))
    func openingAsRootFailsAtOnceWhenTaskAccountsCannotReachTheNodeFolders() async throws {
        let base = try TemporaryDirectory()
        chmod(base.path, 0o755)
        let closed = base.file("closed")
        #expect(mkdir(closed, 0o700) == 0)
        chmod(closed, 0o700)
        let data = closed + "/data"
        do {
            let engine = try await Engine.open(dataDirectory: data)
            await engine.shutdown()
            Issue.record("Engine.open succeeded although \(closed) blocks the task accounts")
        } catch let error as BookendError {
            #expect(error.code == "InvalidConfiguration")
            #expect(error.message.contains("\(closed) (mode 0700) is not searchable"))
            #expect(error.message.contains("--nodes-dir"))
            #expect(!error.message.contains("\n"))
        }
        // Nothing started: no node folders were made behind the closed folder.
        #expect(!FileManager.default.fileExists(atPath: data + "/nodes"))

        // With the node folders on a reachable path the same data directory works, and tasks run.
        let nodes = base.file("nodes")
        let engine = try await Engine.open(dataDirectory: data, configuration: EngineConfiguration(nodesDirectory: nodes, tickInterval: .milliseconds(100)))
        try await engine.createPool(PoolSpec(id: "pool", targetDedicatedNodes: 1))
        try await engine.createJob(JobSpec(id: "job", poolID: "pool"))
        try await engine.addTask(jobID: "job", TaskSpec(id: "hello", commandLine: sh("echo hello from $(id -u)")))
        try await engine.waitForTasks(jobID: "job", timeout: .seconds(60))
        let task = try await engine.task(jobID: "job", taskID: "hello")
        #expect(task.executionInfo.exitCode == 0)
        #expect(try await engine.nodes(poolID: "pool")[0].rootDirectory.hasPrefix(nodes + "/"))
        let output = String(decoding: try await engine.readTaskFile(jobID: "job", taskID: "hello", path: "stdout.txt"), as: UTF8.self)
        #expect(output.hasPrefix("hello from ") && output != "hello from 0\n")
        await engine.shutdown()
    }

    @Test(.enabled(if: geteuid() == 0, "the reachability check applies when Bookend runs as root"))
    func aPrivateDataDirectoryHoldingTheNodeFoldersBecomesSearchableOnly() async throws {
        // What `mktemp -d` gives: a 0700 folder in a reachable place.
        let base = try TemporaryDirectory()
        chmod(base.path, 0o755)
        let data = base.file("data")
        #expect(mkdir(data, 0o700) == 0)
        chmod(data, 0o700)
        let engine = try await Engine.open(dataDirectory: data, configuration: EngineConfiguration(tickInterval: .milliseconds(100)))
        try await withCleanup({ await engine.shutdown() }) {
            var info = stat()
            #expect(stat(data, &info) == 0 && info.st_mode & 0o777 == 0o711)
            try await engine.createPool(PoolSpec(id: "pool", targetDedicatedNodes: 1))
            try await engine.createJob(JobSpec(id: "job", poolID: "pool"))
            // The task can pass through the data directory to its folder, but cannot list it.
            try await engine.addTask(jobID: "job", TaskSpec(id: "look", commandLine: sh("""
                if ls \(data) >/dev/null 2>&1; then echo listed; else echo not-listed; fi
                if cat \(data)/bookend.db >/dev/null 2>&1; then echo db-read; else echo db-denied; fi
                """)))
            try await engine.waitForTasks(jobID: "job", timeout: .seconds(60))
            let output = String(decoding: try await engine.readTaskFile(jobID: "job", taskID: "look", path: "stdout.txt"), as: UTF8.self)
            #expect(output == "not-listed\ndb-denied\n")
        }
    }

    @Test func theDatabaseItsLogsAndTheKeyArePrivateWhateverTheUmask() async throws {
        let binary = Repository.path(".build/debug/bookend")
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let base = try TemporaryDirectory()
        chmod(base.path, 0o755)
        let data = base.file("data")
        // A daemon started with umask 000 on a fresh data directory; the files are checked while it runs,
        // when the WAL and shared-memory files exist.
        let script = """
            umask 000
            "$0" serve --data-dir "$1" --listen 127.0.0.1:0 > "$1.out" 2>&1 &
            pid=$!
            i=0; while ! grep -q Endpoint "$1.out" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
            for f in bookend.db bookend.db-wal bookend.db-shm account.key; do echo "$f $(stat -c %a "$1/$f" 2>&1)"; done
            kill $pid; wait $pid
            """
        let result = try await run("/bin/sh", ["-c", script, binary, data])
        #expect(result.stdout == "bookend.db 600\nbookend.db-wal 600\nbookend.db-shm 600\naccount.key 600\n", "\(result.stderr)")
    }

    /// The live processes whose real uid is `uid`, from `/proc/<pid>/status`.
    static func processes(ofUID uid: UInt32) -> [Int32] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { name -> Int32? in
            guard let pid = Int32(name), let status = try? String(contentsOfFile: "/proc/\(name)/status", encoding: .utf8) else { return nil }
            let fields = status.split(separator: "\n")
            guard let line = fields.first(where: { $0.hasPrefix("Uid:") }), let state = fields.first(where: { $0.hasPrefix("State:") }),
                  !state.contains("zombie"), line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first == Substring("\(uid)")
            else { return nil }
            return pid
        }
    }

    /// A non-admin task's fork bomb stops at the task account's process cap (`taskProcessLimit`,
    /// RLIMIT_NPROC): every process leaves its parent's process group, as a shell with job control
    /// would, and keeps trying to fork two more. The engine meanwhile starts another pool's task as usual, and
    /// terminating the bomb's task leaves none of its processes: the session is scanned until no new
    /// member turns up. The bomb stops itself ten levels down (at most 1,023 processes), so that
    /// without the cap it only loads the machine instead of taking every pid of it.
    @Test(.enabled(if: geteuid() == 0, "task accounts exist only when Bookend runs as root"))
    func aForkBombStopsAtTheAccountsProcessCapAndEndsWithItsTask() async throws {
        var configuration = EngineConfiguration(tickInterval: .milliseconds(100))
        configuration.taskProcessLimit = 40
        let h = try await EngineHarness.make(configuration: configuration)
        let effects = try h.sideEffects()
        try await withCleanup({
            // Whatever a failed check left running goes with the test: a kill(-1) as the account reaches
            // all its processes at once, where a scan races their forks.
            if let uid = try? String(contentsOfFile: effects + "/uid", encoding: .utf8), UInt32(uid) != nil {
                _ = try? await run("/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "/bin/kill", "-9", "-1"])
            }
            await h.finish()
        }) {
            let bomb = effects + "/bomb.py"
            try """
                import os, sys, time
                effects = sys.argv[1]
                def grow(depth):
                    os.setpgid(0, 0)
                    children, refused = 0, False
                    while depth < 9 and children < 2:
                        try:
                            if os.fork() == 0:
                                grow(depth + 1)
                            children += 1
                        except OSError:
                            if not refused:
                                refused = True
                                with open(effects + "/refused", "a") as note:
                                    note.write("fork refused\\n")
                            time.sleep(0.05)
                    time.sleep(120)
                    os._exit(0)
                with open(effects + "/uid.tmp", "w") as uid:
                    uid.write(str(os.getuid()))
                os.rename(effects + "/uid.tmp", effects + "/uid")
                grow(0)
                """.write(toFile: bomb, atomically: true, encoding: .utf8)
            chmod(bomb, 0o644)
            try await h.pool(slots: 3)
            try await h.pool("other")
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            // At its lowest priority, and retrying a refused fork every 50 ms (it was every 2 ms): at the
            // cap, forty processes retrying kept the machine's load near 60, and every other test running
            // meanwhile (an in-process server that must answer a CLI within 60 s) starved.
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "bomb", commandLine: "/usr/bin/nice -n 19 /usr/bin/python3 \(bomb) \(effects)"))
            try await EngineHarness.waitUntil("the bomb's forks are refused") {
                FileManager.default.fileExists(atPath: effects + "/refused") && FileManager.default.fileExists(atPath: effects + "/uid")
            }
            let uid = try #require(UInt32(try String(contentsOfFile: effects + "/uid", encoding: .utf8)))
            #expect(uid != 0)
            // Let it push against the cap for a moment: it never gets past it.
            var most = 0
            for _ in 0..<20 {
                most = max(most, Self.processes(ofUID: uid).count)
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(most <= 40, "the account held \(most) processes")
            #expect(most >= 30, "the bomb filled its cap: \(most)")

            // The kernel checks the cap when a task of the same account enters it (at the exec after the
            // switch) only against what the account held before: one task may still enter, and it
            // holds the slot the bomb would fork into. The next one waits, and says why.
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "enters", commandLine: "/bin/sleep 600"))
            try await EngineHarness.waitUntil("a task of the same account enters") {
                try h.sqlOnCallingThread("SELECT e.pid IS NOT NULL FROM execution e JOIN task t ON t.pk = e.task_pk WHERE t.id = 'enters'") == [["1"]]
            }
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "waits", commandLine: "/bin/true"))
            var reason = ""
            try await EngineHarness.waitUntil("the next task of the same account says why it waits") {
                reason = try h.engine.whyWaiting(jobID: "job", taskID: "waits").message
                return reason.contains("holds the 40 processes and threads --task-process-limit allows it")
            }
            #expect(try await h.engine.task(jobID: "job", taskID: "waits").state == .running, "\(reason)")
            try await h.engine.terminateTask(jobID: "job", taskID: "enters")

            // The engine goes on: another pool's account starts and ends a task meanwhile.
            try await h.engine.createJob(JobSpec(id: "other", poolID: "other"))
            try await h.engine.addTask(jobID: "other", TaskSpec(id: "t", commandLine: sh("echo fine")))
            try await h.engine.waitForTasks(jobID: "other", timeout: .seconds(60))
            let other = try await h.engine.task(jobID: "other", taskID: "t")
            #expect(other.executionInfo.exitCode == 0)

            try await h.engine.terminateTask(jobID: "job", taskID: "bomb")
            try await h.waitForTasks("job")
            // Below the cap again, the waiting task started and ran.
            #expect(try await h.engine.task(jobID: "job", taskID: "waits").executionInfo.exitCode == 0)
            try await EngineHarness.waitUntil("none of the bomb's processes is left") { Self.processes(ofUID: uid).isEmpty }
        }
    }

    /// The default cap is 15 % of the smaller of the kernel's pid and thread ceilings, never below 512,
    /// and an engine made without saying has it.
    @Test func theDefaultProcessCapIsAShareOfTheMachinesProcessCeiling() throws {
        #expect(EngineConfiguration.defaultTaskProcessLimit(pidMax: 32_768, threadsMax: 192_735) == 4_915)
        #expect(EngineConfiguration.defaultTaskProcessLimit(pidMax: 4_194_304, threadsMax: 192_735) == 28_910)
        #expect(EngineConfiguration.defaultTaskProcessLimit(pidMax: nil, threadsMax: nil) == 4_915)
        #expect(EngineConfiguration.defaultTaskProcessLimit(pidMax: 1_000, threadsMax: nil) == 512)
        let ceiling = try #require([EngineConfiguration.kernelSetting("pid_max"), EngineConfiguration.kernelSetting("threads-max")].compactMap { $0 }.min())
        #expect(EngineConfiguration().taskProcessLimit == max(512, ceiling * 15 / 100))
    }

    /// Whether this process's user namespace maps every uid of `range` (`/proc/self/uid_map`).
    static func mapsUIDs(_ range: ClosedRange<UInt32>) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/self/uid_map", encoding: .utf8) else { return true }
        return text.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ").compactMap { UInt64($0) }
            return fields.count == 3 && fields[0] <= UInt64(range.lowerBound) && UInt64(range.upperBound) < fields[0] + fields[2]
        }
    }
}
