import Bookend
import Foundation
import SQLite
import TestSupport
import Testing

/// `minFreeDisk` on a real, small file system: a tmpfs the test mounts for the node folders.
@Suite struct DiskPressureTests {
    static let mebibyte = 1024 * 1024

    /// Mounts a tmpfs of `size` MiB on a fresh folder, or returns nil with the reason it cannot.
    static func mountSmallFileSystem(megabytes: Int) async throws -> (path: String, unmount: @Sendable () async -> Void)? {
        guard geteuid() == 0 else {
            print("DiskPressureTests skipped: mounting a tmpfs needs root, and these tests are not running as root")
            return nil
        }
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("bookend-tmpfs-\(UUID().uuidString.prefix(8))")
        let mountPoint = directory + "/nodes-fs"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let result = try await run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0755", "tmpfs", mountPoint])
        guard result.status == 0 else {
            print("DiskPressureTests skipped: mount -t tmpfs failed (\(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)))")
            return nil
        }
        chmod(directory, 0o755)
        return (mountPoint, {
            _ = try? await run("/bin/umount", ["-l", mountPoint])
            try? FileManager.default.removeItem(atPath: directory)
        })
    }

    @Test func belowTheMinimumTheOldestCompletedFoldersGoFirstAndRunningOnesStay() async throws {
        guard let fileSystem = try await Self.mountSmallFileSystem(megabytes: 32) else { return }
        let base = try TemporaryDirectory()
        chmod(base.path, 0o755)
        let nodes = fileSystem.path + "/nodes"
        let configuration = EngineConfiguration(
            nodesDirectory: nodes, tickInterval: .milliseconds(100), minFreeDisk: .bytes(UInt64(12 * Self.mebibyte)))
        let engine = try await Engine.open(dataDirectory: base.file("data"), configuration: configuration)
        let h = EngineHarness(directory: base.file("data"), engine: engine)
        // The gate lives beside the data directory, not in it: the engine makes the data directory
        // private, and a task account that cannot see the gate would wait (and outlive the test) forever.
        let gate = base.file("go")
        try await withCleanup({
            _ = FileManager.default.createFile(atPath: gate, contents: nil)
            // Running work survives an engine's shutdown by design; end it, so no process outlives the test.
            try? await engine.terminateTask(jobID: "job", taskID: "running")
            _ = try? await h.engine.wait(timeout: .seconds(30)) { engine in
                try engine.task(jobID: "job", taskID: "running").state == .completed
            }
            await engine.shutdown()
            await fileSystem.unmount()
        }) {
            // One slot: the four tasks run and complete one after another, t1 first.
            try await h.pool(nodes: 1, slots: 1)
            try await engine.createJob(JobSpec(id: "job", poolID: "pool"))
            for index in 1...4 {
                try await engine.addTask(jobID: "job", TaskSpec(id: "t\(index)", commandLine: "/usr/bin/head -c \(4 * Self.mebibyte) /dev/zero"))
                try await h.engine.wait(timeout: .seconds(60)) { engine in try engine.task(jobID: "job", taskID: "t\(index)").state == .completed }
            }
            // 16 MiB of the 32 are used: above the 12 MiB minimum, nothing is deleted.
            try await h.dispatchSentinel()
            #expect(try await h.sql("SELECT count(*) FROM event WHERE kind = 'execution.files-deleted'") == [["0"]])
            // A running task writes 10 MiB and waits: 6 MiB left, the two oldest folders (t1, t2) make
            // room again; t3, t4 and the running task's folder stay.
            try await engine.addTask(jobID: "job", TaskSpec(id: "running", commandLine: sh(
                "head -c \(10 * Self.mebibyte) /dev/zero > big; while [ ! -e \(gate) ]; do sleep 0.05; done")))
            try await h.engine.wait(timeout: .seconds(60)) { _ in
                try h.sqlOnCallingThread("SELECT count(*) FROM event WHERE kind = 'execution.files-deleted'") == [["2"]]
            }
            #expect(try await h.sql(
                "SELECT task_id, json_extract(detail, '$.reason'), json_extract(detail, '$.execution') FROM event WHERE kind = 'execution.files-deleted' ORDER BY seq")
                == [["t1", "disk-pressure", "task"], ["t2", "disk-pressure", "task"]])
            let folders = try await h.sql("SELECT t.id, e.task_dir, e.files_deleted_time IS NOT NULL FROM execution e JOIN task t ON t.pk = e.task_pk JOIN job j ON j.pk = t.job_pk WHERE j.id = 'job' ORDER BY t.id")
            for row in folders {
                let gone = row[0] == "t1" || row[0] == "t2"
                #expect(FileManager.default.fileExists(atPath: row[1]) == !gone, "\(row[0])'s folder")
                #expect(row[2] == (gone ? "1" : "0"), "\(row[0])'s files_deleted_time")
            }
            #expect(folders.map(\.[0]) == ["running", "t1", "t2", "t3", "t4"])
            let space = try #require(FileSystemSpace.of(nodes))
            #expect(!space.isBelow(.bytes(UInt64(12 * Self.mebibyte))))
            let report = try engine.housekeepingReport()
            #expect(report.filesDeletedUnderDiskPressure == 2)
            #expect(report.filesDeletedByRetention == 0)
            #expect(!report.underDiskPressure)
        }
    }

    /// Task folders of deleted jobs kept as spares (`TaskFolderPool.reclaim`) are a cache: under disk
    /// pressure they go before any completed execution's folder.
    @Test func belowTheMinimumDeletedJobsFoldersKeptAsSparesGoFirst() async throws {
        guard let fileSystem = try await Self.mountSmallFileSystem(megabytes: 32) else { return }
        let base = try TemporaryDirectory()
        chmod(base.path, 0o755)
        let configuration = EngineConfiguration(
            nodesDirectory: fileSystem.path + "/nodes", tickInterval: .milliseconds(100), minFreeDisk: .bytes(UInt64(12 * Self.mebibyte)))
        let engine = try await Engine.open(dataDirectory: base.file("data"), configuration: configuration)
        let h = EngineHarness(directory: base.file("data"), engine: engine)
        try await withCleanup({
            await engine.shutdown()
            await fileSystem.unmount()
        }) {
            let root = try #require(try await h.pool(nodes: 1, slots: 1).first).rootDirectory
            try await engine.createJob(JobSpec(id: "old", poolID: "pool"))
            for index in 1...3 { try await engine.addTask(jobID: "old", TaskSpec(id: "t\(index)", commandLine: "/bin/true")) }
            try await h.waitForTasks("old")
            _ = try await TaskFolderTests.readySpares(root)
            try await engine.deleteJob(id: "old")
            try await h.waitForJobDeletion("old")
            try await EngineHarness.waitUntil("the deleted job's folders kept as spares") { TaskFolderTests.reclaimed(root).count == 3 }
            // 24 MiB written by a task that takes one of the three: below the minimum, the other two
            // are removed (the sweep of unused ones comes only after ten minutes).
            try await engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await engine.addTask(jobID: "job", TaskSpec(id: "fill", commandLine: "/usr/bin/head -c \(24 * Self.mebibyte) /dev/zero"))
            try await h.waitForTasks("job")
            try await EngineHarness.waitUntil("the kept folders removed under disk pressure") { TaskFolderTests.reclaimed(root).isEmpty }
            let spare = root + "/volatile/spare-tasks"
            #expect(!((try? FileManager.default.contentsOfDirectory(atPath: spare)) ?? []).contains { $0.hasPrefix("r") })
        }
    }

    @Test func retentionDeletionsAreRecordedWithTheirReason() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/bin/true", constraints: TaskConstraints(retentionTime: "PT0S")))
            try await h.engine.wait(timeout: .seconds(60)) { _ in
                try h.sqlOnCallingThread("SELECT count(*) FROM event WHERE kind = 'execution.files-deleted'") == [["1"]]
            }
            #expect(try await h.sql("SELECT task_id, json_extract(detail, '$.reason') FROM event WHERE kind = 'execution.files-deleted'") == [["t", "retention"]])
            let folder = try #require(try await h.sql("SELECT task_dir FROM execution WHERE kind = 'task'").first?.first)
            #expect(!FileManager.default.fileExists(atPath: folder))
            #expect(try h.engine.housekeepingReport().filesDeletedByRetention == 1)
        }
    }

    static let gibibyte: UInt64 = 1024 * 1024 * 1024
    static let amounts: [(String, DiskSpace)] = [
        ("10%", .percent(10)), ("2.5%", .percent(2.5)), ("512M", .bytes(gibibyte / 2)), ("5G", .bytes(5 * gibibyte)),
        ("5GiB", .bytes(5 * gibibyte)), ("1t", .bytes(1024 * gibibyte)), ("4096", .bytes(4096)), ("10K", .bytes(10240)),
    ]

    @Test(arguments: amounts)
    func amountsOfFreeSpaceParse(_ text: String, _ expected: DiskSpace) throws {
        #expect(try DiskSpace(parsing: text) == expected)
    }

    @Test(arguments: ["", "%", "100%", "-1%", "5X", "G", "-5G", "ten"])
    func malformedAmountsAreRefused(_ text: String) {
        #expect(throws: DiskSpace.ParseError.self) { try DiskSpace(parsing: text) }
    }

    static let thresholds: [(DiskSpace, UInt64, UInt64, Bool)] = [
        (.percent(10), 1000, 99, true), (.percent(10), 1000, 100, false),
        (.bytes(500), 1000, 499, true), (.bytes(500), 1000, 500, false), (.percent(0), 1000, 0, false),
    ]

    @Test(arguments: thresholds)
    func belowTheMinimum(_ minimum: DiskSpace, _ total: UInt64, _ available: UInt64, _ below: Bool) {
        let space = FileSystemSpace(totalBytes: total, availableBytes: available, totalInodes: 0, availableInodes: 0)
        #expect(space.isBelow(minimum) == below)
    }
    /// A launch that fails for want of the machine's resources (here: no inode left for the task's
    /// folder) says nothing about the task: it waits, its slot held, and runs once there is room,
    /// where it used to fail for good (`CommandLaunchFailed`, a user error).
    @Test func aLaunchWithoutRoomForItsFolderWaitsAndRunsOnceThereIsRoom() async throws {
        guard geteuid() == 0 else {
            print("DiskPressureTests skipped: mounting a tmpfs needs root, and these tests are not running as root")
            return
        }
        let base = try TemporaryDirectory()
        chmod(base.path, 0o755)
        let mountPoint = base.file("nodes-fs")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = try await run("/bin/mount", ["-t", "tmpfs", "-o", "size=16m,nr_inodes=400,mode=0755", "tmpfs", mountPoint])
        guard mounted.status == 0 else {
            print("DiskPressureTests skipped: mount -t tmpfs failed (\(mounted.stderr.trimmingCharacters(in: .whitespacesAndNewlines)))")
            return
        }
        let configuration = EngineConfiguration(nodesDirectory: mountPoint + "/nodes", tickInterval: .milliseconds(100))
        let engine = try await Engine.open(dataDirectory: base.file("data"), configuration: configuration)
        let h = EngineHarness(directory: base.file("data"), engine: engine)
        let effects = base.file("effects")
        try FileManager.default.createDirectory(atPath: effects, withIntermediateDirectories: true)
        chmod(effects, 0o777)
        try await withCleanup({
            await engine.shutdown()
            _ = try? await run("/bin/umount", ["-l", mountPoint])
        }) {
            try await h.pool(nodes: 1, slots: 1)
            try await engine.createJob(JobSpec(id: "job", poolID: "pool"))
            // Every inode left taken.
            let filler = mountPoint + "/filler"
            try FileManager.default.createDirectory(atPath: filler, withIntermediateDirectories: false)
            var made = 0
            while FileManager.default.createFile(atPath: "\(filler)/\(made)", contents: nil) { made += 1 }
            try await engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/runs")))
            // It cannot start, and it does not fail either.
            try await Task.sleep(for: .seconds(2))
            let waiting = try await engine.task(jobID: "job", taskID: "t")
            #expect(waiting.state != .completed, "\(String(describing: waiting.executionInfo.failureInfo))")
            #expect(EngineHarness.lines("\(effects)/runs").isEmpty)
            // It looks running (its node and slot are taken), so why it has not started is said.
            let why = try engine.whyWaiting(jobID: "job", taskID: "t")
            #expect(why.code == "LaunchDeferred" && why.message.contains("No space left on device"), "\(why)")
            #expect(try engine.whyWaiting(jobID: "job").code == "LaunchDeferred")
            try FileManager.default.removeItem(atPath: filler)
            try await h.waitForTasks("job")
            let ran = try await engine.task(jobID: "job", taskID: "t")
            #expect(ran.executionInfo.result == "success", "\(String(describing: ran.executionInfo.failureInfo))")
            #expect(EngineHarness.lines("\(effects)/runs") == ["run"])
            #expect(try engine.whyWaiting(jobID: "job", taskID: "t").code == "TaskCompleted")
        }
    }
}
