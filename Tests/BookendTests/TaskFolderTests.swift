@testable import Bookend
import Foundation
import Testing
import TestSupport

/// Task folders are made ahead per node (`volatile/spare-tasks/t<n>`, with `wd/`, `certs/`, an empty
/// `stdout.txt` and `stderr.txt`) and renamed into place by a task's first launch there. These tests
/// hold what that must not change: the folder a task gets is as private as one made at launch, a
/// folder an earlier attempt left is reused rather than replaced, tasks cannot reach the spares, and
/// a restart starts from none.
@Suite struct TaskFolderTests {
    static func spareInodes(_ root: String) -> [String: UInt64] {
        let spare = TaskFolderPool.spareFolder(ofNodeRoot: root)
        var inodes: [String: UInt64] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: spare)) ?? [] {
            inodes[name] = StatusFolderTests.inode(spare + "/" + name)
        }
        return inodes
    }

    /// The node's spare trees once four are complete: waits for them, so the tests hold whether the
    /// refill that follows a launch is done by the time its task is reported complete or not.
    static func readySpares(_ root: String) async throws -> [String: UInt64] {
        let spare = TaskFolderPool.spareFolder(ofNodeRoot: root)
        try await EngineHarness.waitUntil("four complete spare trees in \(spare)") {
            let trees = spareInodes(root)
            return trees.count == 4 && trees.keys.allSatisfy {
                ((try? FileManager.default.contentsOfDirectory(atPath: spare + "/" + $0)) ?? []).count == 4
            }
        }
        return spareInodes(root)
    }

    static func mode(_ path: String) -> (mode: mode_t, uid: uid_t)? {
        var info = stat()
        return lstat(path, &info) == 0 ? (info.st_mode & 0o7777, info.st_uid) : nil
    }

    @Test func aTasksFirstLaunchTakesAFolderMadeAheadAsPrivateAsANewOne() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let root = try #require(try await h.pool().first).rootDirectory
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "a", commandLine: sh("exit 0")))
            try await h.waitForTasks("job")
            // The node's first launch made its folders itself, then the spares for the next ones.
            let before = try await Self.readySpares(root)
            var info = stat()
            #expect(stat(TaskFolderPool.spareFolder(ofNodeRoot: root), &info) == 0 && info.st_mode & 0o777 == 0o700 && info.st_uid == geteuid())
            for (name, _) in before {
                let tree = TaskFolderPool.spareFolder(ofNodeRoot: root) + "/" + name
                #expect(try FileManager.default.contentsOfDirectory(atPath: tree).sorted() == ["certs", "stderr.txt", "stdout.txt", "wd"])
            }

            try await h.engine.addTask(jobID: "job", TaskSpec(id: "b", commandLine: sh("pwd; echo to-stderr >&2; exit 3")))
            try await h.waitForTasks("job")
            let task = try await h.engine.task(jobID: "job", taskID: "b")
            #expect(task.executionInfo.exitCode == 3)
            let row = try #require(try await h.sql(
                "SELECT e.task_dir, coalesce(e.uid, '') FROM execution e JOIN task t ON t.pk = e.task_pk WHERE t.id = 'b'").first)
            let directory = row[0]
            // The folder is one of the trees made ahead: the same inode, renamed.
            let placed = try #require(StatusFolderTests.inode(directory))
            #expect(Set(before.values).contains(placed), "b's folder was made at launch, not taken from the spares")
            let after = try await Self.readySpares(root)  // the node gets another spare after the launch
            #expect(!Set(after.values).contains(placed))
            // The command ran in its wd and wrote to the placed output files.
            let stdout = String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: "b", path: "stdout.txt"), as: UTF8.self)
            #expect(stdout == directory + "/wd\n")
            let stderr = String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: "b", path: "stderr.txt"), as: UTF8.self)
            #expect(stderr == "to-stderr\n")
            // Modes and owner exactly as a launch makes them: the task's account when Bookend is root
            // and the task is not admin, the engine's own otherwise.
            let owner = row[1].isEmpty ? geteuid() : try #require(uid_t(row[1]))
            if geteuid() == 0 { #expect(owner != 0, "a non-admin task runs as an account of its own") }
            for (path, expected) in [(directory, mode_t(0o700)), (directory + "/wd", 0o700), (directory + "/certs", 0o700),
                                     (directory + "/stdout.txt", 0o600), (directory + "/stderr.txt", 0o600)] {
                let found = try #require(Self.mode(path), "\(path) is missing")
                #expect(found.mode == expected && found.uid == owner, "\(path): mode \(String(found.mode, radix: 8)), owner \(found.uid)")
            }
        }
    }

    /// A retry runs in the folder its first attempt left (what it wrote there stays); the spare trees
    /// are not moved onto it.
    @Test func aRetryReusesTheFolderItsFirstAttemptLeft() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let root = try #require(try await h.pool().first).rootDirectory
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            // A first task gives the node its spares, so the retried task's first attempt takes one.
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "warm", commandLine: sh("exit 0")))
            try await h.waitForTasks("job")
            _ = try await Self.readySpares(root)
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "flaky", commandLine: sh("""
                echo run >> runs; echo attempt; [ "$(wc -l < runs)" -ge 2 ]
                """), constraints: TaskConstraints(maxTaskRetryCount: 1)))
            try await h.waitForTasks("job")
            let task = try await h.engine.task(jobID: "job", taskID: "flaky")
            #expect(task.executionInfo.exitCode == 0 && task.executionInfo.retryCount == 1)
            let directories = try await h.sql(
                "SELECT DISTINCT e.task_dir FROM execution e JOIN task t ON t.pk = e.task_pk WHERE t.id = 'flaky'")
            #expect(directories.count == 1, "\(directories)")
            let directory = try #require(directories.first?.first)
            #expect(EngineHarness.lines(directory + "/wd/runs") == ["run", "run"], "the second attempt saw the first one's file")
            #expect(EngineHarness.lines(directory + "/stdout.txt") == ["attempt", "attempt"])
        }
    }

    @Test func aRestartRemovesTheTreesAnEarlierEngineMade() async throws {
        let h = try await EngineHarness.make()
        let root = try #require(try await h.pool().first).rootDirectory
        try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "a", commandLine: sh("exit 0")))
        try await h.waitForTasks("job")
        let earlier = try await Self.readySpares(root)
        await h.engine.shutdown()
        let spare = TaskFolderPool.spareFolder(ofNodeRoot: root)
        // Marked, since a freed inode number can be given to a new tree: a tree with the mark later
        // would be one of these, kept.
        for name in earlier.keys {
            #expect(FileManager.default.createFile(atPath: spare + "/" + name + "/wd/made-by-the-earlier-engine", contents: nil))
        }
        // A tree an earlier engine was making when it died: removed like the finished ones.
        #expect(mkdir(spare + "/t999", 0o700) == 0)
        let restarted = try await h.reopened()
        try await withCleanup({ await restarted.finish() }) {
            #expect(Self.spareInodes(root).isEmpty, "reconcile removed the trees made ahead")
            try await restarted.engine.addTask(jobID: "job", TaskSpec(id: "b", commandLine: sh("exit 5")))
            try await restarted.waitForTasks("job")
            #expect(try await restarted.engine.task(jobID: "job", taskID: "b").executionInfo.exitCode == 5)
            let now = try await Self.readySpares(root)
            for name in now.keys {
                #expect(!FileManager.default.fileExists(atPath: spare + "/" + name + "/wd/made-by-the-earlier-engine"),
                    "no tree of the earlier engine was used again")
            }
        }
    }

    /// A non-admin task can neither look into nor plant anything in the trees made ahead, and a task
    /// placed in one cannot be read by another task's account.
    @Test(.enabled(if: geteuid() == 0, "task accounts exist only when Bookend runs as root"))
    func aNonAdminTaskCannotReachTheSparesOrAnotherTasksPlacedFolder() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let root = try #require(try await h.pool().first).rootDirectory
            let spare = TaskFolderPool.spareFolder(ofNodeRoot: root)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "warm", commandLine: sh("exit 0")))
            try await h.waitForTasks("job")
            _ = try await Self.readySpares(root)
            // Scope `task`: an account of its own each (tasks of scope `pool` share the pool's).
            let own = UserIdentity(autoUser: .init(scope: .task, elevationLevel: .nonAdmin))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "secret", commandLine: sh("echo hidden > secret.txt"), userIdentity: own))
            try await h.waitForTasks("job")
            #expect(try await h.engine.task(jobID: "job", taskID: "secret").executionInfo.exitCode == 0)
            let secretDirectory = try #require(try await h.sql(
                "SELECT e.task_dir FROM execution e JOIN task t ON t.pk = e.task_pk WHERE t.id = 'secret'").first?.first)
            #expect(EngineHarness.lines(secretDirectory + "/wd/secret.txt") == ["hidden"])
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "probe", commandLine: sh("""
                if ls \(spare) >/dev/null 2>&1; then echo list:allowed; else echo list:denied; fi
                if mkdir \(spare)/planted 2>/dev/null; then echo plant:written; else echo plant:denied; fi
                if ln -s /etc \(spare)/t1/wd/link 2>/dev/null; then echo link:written; else echo link:denied; fi
                if cat \(secretDirectory)/wd/secret.txt 2>/dev/null; then echo read:allowed; else echo read:denied; fi
                if ls \(secretDirectory) >/dev/null 2>&1; then echo enter:allowed; else echo enter:denied; fi
                """)))
            try await h.waitForTasks("job")
            let output = String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: "probe", path: "stdout.txt"), as: UTF8.self)
            #expect(output.split(separator: "\n").sorted() == ["enter:denied", "link:denied", "list:denied", "plant:denied", "read:denied"], "\(output)")
            #expect(!FileManager.default.fileExists(atPath: spare + "/planted"))
        }
    }

    /// What a task leaves in its folder (here, many folders side by side, each with folders of its
    /// own) goes whole when its job is deleted.
    @Test func aDeletedJobsWideTaskFolderIsRemovedWhole() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "wide", commandLine: sh("""
                for i in $(seq 1 40); do mkdir -p d$i/a d$i/b d$i/c && echo x > d$i/a/f && echo y > f$i; done
                """)))
            try await h.waitForTasks("job")
            let directory = try #require(try await h.sql(
                "SELECT e.task_dir FROM execution e JOIN task t ON t.pk = e.task_pk WHERE t.id = 'wide'").first?.first)
            #expect(FileManager.default.fileExists(atPath: directory + "/wd/d40/a/f"))
            try await h.engine.deleteJob(id: "job")
            try await h.waitForJobDeletion("job")
            #expect(!FileManager.default.fileExists(atPath: directory), "the task folder is left behind")
        }
    }

    /// The reclaimed trees (`r<n>`) in the node's `spare-tasks`, by inode, with their owner.
    static func reclaimed(_ root: String) -> [UInt64: uid_t] {
        let spare = TaskFolderPool.spareFolder(ofNodeRoot: root)
        var found: [UInt64: uid_t] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: spare)) ?? [] where name.hasPrefix("r") {
            var info = stat()
            if lstat(spare + "/" + name, &info) == 0 { found[UInt64(info.st_ino)] = info.st_uid }
        }
        return found
    }

    static func taskDirectory(_ h: EngineHarness, _ task: String) async throws -> String {
        try #require(try await h.sql(
            "SELECT e.task_dir FROM execution e JOIN task t ON t.pk = e.task_pk WHERE t.id = '\(task)' ORDER BY e.pk DESC LIMIT 1").first?.first)
    }

    /// A deleted job's task folder becomes a spare for its account's next launch instead of being
    /// removed: emptied of everything its task left (files in `wd/`, entries beside the four, output),
    /// with the modes a launch sets, whatever the task changed them to.
    @Test func aDeletedJobsTaskFolderIsEmptiedAndTakenByTheNextLaunchOfItsAccount() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let root = try #require(try await h.pool().first).rootDirectory
            try await h.engine.createJob(JobSpec(id: "old", poolID: "pool"))
            // The node's first launch: the one tree of this job, and the node has spares after it.
            try await h.engine.addTask(jobID: "old", TaskSpec(id: "messy", commandLine: sh("""
                echo old-output; echo old-error >&2; mkdir -p a/b && echo x > a/b/f && echo y > left-behind
                echo z > ../beside; mkdir ../folder-beside; chmod 777 .. . ../certs; chmod 644 ../stdout.txt
                """)))
            try await h.waitForTasks("old")
            _ = try await Self.readySpares(root)
            #expect(try await h.engine.task(jobID: "old", taskID: "messy").executionInfo.exitCode == 0)
            let messy = try await Self.taskDirectory(h, "messy")
            let tree = try #require(StatusFolderTests.inode(messy))
            var info = stat()
            #expect(stat(messy, &info) == 0 && info.st_mode & 0o777 == 0o777)
            let account = info.st_uid
            try await h.engine.deleteJob(id: "old")
            try await h.waitForJobDeletion("old")
            #expect(!FileManager.default.fileExists(atPath: messy), "the task folder is still in the job's folders")
            try await EngineHarness.waitUntil("the messy task's folder kept as a spare") { Self.reclaimed(root)[tree] != nil }
            #expect(Self.reclaimed(root)[tree] == account)
            #expect(!FileManager.default.fileExists(atPath: root + "/workitems/old"))

            try await h.engine.createJob(JobSpec(id: "new", poolID: "pool"))
            try await h.engine.addTask(jobID: "new", TaskSpec(id: "next", commandLine: sh("ls -A; echo new-output")))
            try await h.waitForTasks("new")
            let next = try await Self.taskDirectory(h, "next")
            #expect(StatusFolderTests.inode(next) != nil)
            #expect(Self.reclaimed(root)[tree] == nil)
            #expect(StatusFolderTests.inode(next) == tree, "the next launch of the same account made or took another folder")
            #expect(try FileManager.default.contentsOfDirectory(atPath: next).sorted() == ["certs", "stderr.txt", "stdout.txt", "wd"])
            let stdout = String(decoding: try await h.engine.readTaskFile(jobID: "new", taskID: "next", path: "stdout.txt"), as: UTF8.self)
            #expect(stdout == "new-output\n", "wd was not empty or stdout kept the old task's output: \(stdout)")
            #expect(try await h.engine.readTaskFile(jobID: "new", taskID: "next", path: "stderr.txt").isEmpty)
            for (path, expected) in [(next, mode_t(0o700)), (next + "/wd", 0o700), (next + "/certs", 0o700),
                                     (next + "/stdout.txt", 0o600), (next + "/stderr.txt", 0o600)] {
                let found = try #require(Self.mode(path), "\(path) is missing")
                #expect(found.mode == expected && found.uid == account, "\(path): mode \(String(found.mode, radix: 8)), owner \(found.uid)")
            }
        }
    }

    /// A reclaimed tree goes only to its own account: a task of scope `task` (an account used once)
    /// leaves nothing to reuse, and no other account's launch is given a tree that a process of the
    /// deleted job could still hold open. Links planted in place of the output files are never
    /// followed: the file a link pointed at keeps its content, and the folder is removed, not kept.
    @Test(.enabled(if: geteuid() == 0, "task accounts exist only when Bookend runs as root"))
    func aReclaimedTreeGoesOnlyToItsOwnAccountAndPlantedLinksAreNotFollowed() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let root = try #require(try await h.pool().first).rootDirectory
            let bait = h.directory + "/bait.txt"
            #expect(FileManager.default.createFile(atPath: bait, contents: Data("keep me\n".utf8), attributes: [.posixPermissions: 0o644]))
            try await h.engine.createJob(JobSpec(id: "old", poolID: "pool"))
            try await h.engine.addTask(jobID: "old", TaskSpec(id: "warm", commandLine: sh("exit 0")))
            try await h.waitForTasks("old")
            _ = try await Self.readySpares(root)
            let own = UserIdentity(autoUser: .init(scope: .task, elevationLevel: .nonAdmin))
            // A process that outlives its task, holding its stdout open for reading.
            try await h.engine.addTask(jobID: "old", TaskSpec(id: "lingering", commandLine: sh("""
                echo mine; setsid sh -c 'exec 3<../stdout.txt; sleep 20' </dev/null >/dev/null 2>&1 &
                """), userIdentity: own))
            try await h.engine.addTask(jobID: "old", TaskSpec(id: "linker", commandLine: sh("""
                rm -f ../stderr.txt && ln -s \(bait) ../stderr.txt && ln ../stdout.txt /tmp/bookend-hardlink-$$ && echo linked
                """)))
            try await h.waitForTasks("old")
            let lingering = try #require(StatusFolderTests.inode(try await Self.taskDirectory(h, "lingering")))
            let linker = try #require(StatusFolderTests.inode(try await Self.taskDirectory(h, "linker")))
            let linkerOut = String(decoding: try await h.engine.readTaskFile(jobID: "old", taskID: "linker", path: "stdout.txt"), as: UTF8.self)
            #expect(linkerOut == "linked\n")
            try await h.engine.deleteJob(id: "old")
            try await h.waitForJobDeletion("old")
            // The warm task's tree (pool account) is kept: once it is, the whole job folder was sorted.
            let warmOwner = try #require(try await h.sql("SELECT uid FROM pool WHERE id = 'pool'").first?.first.flatMap { uid_t($0) })
            try await EngineHarness.waitUntil("the job's folder sorted") {
                !FileManager.default.fileExists(atPath: TaskFolderPool.spareFolder(ofNodeRoot: root) + "/j1")
                    && !((try? FileManager.default.contentsOfDirectory(atPath: TaskFolderPool.spareFolder(ofNodeRoot: root))) ?? []).contains { $0.hasPrefix("j") }
            }
            let kept = Self.reclaimed(root)
            #expect(!kept.isEmpty, "the pool account's tree (the warm task's) was not kept")
            #expect(kept.values.allSatisfy { $0 == warmOwner }, "a tree of another account was kept: \(kept)")
            #expect(kept[lingering] == nil && kept[linker] == nil)
            #expect(EngineHarness.lines(bait) == ["keep me"], "a link planted as stderr.txt was followed")

            // A task-scope task of the next job gets a folder no earlier task had.
            try await h.engine.createJob(JobSpec(id: "new", poolID: "pool"))
            try await h.engine.addTask(jobID: "new", TaskSpec(id: "fresh", commandLine: sh("echo secret-output"), userIdentity: own))
            try await h.waitForTasks("new")
            let fresh = try #require(StatusFolderTests.inode(try await Self.taskDirectory(h, "fresh")))
            #expect(kept[fresh] == nil, "a task-scope launch was given a reclaimed tree")
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [] where name.hasPrefix("bookend-hardlink-") {
            try? FileManager.default.removeItem(atPath: "/tmp/" + name)
        }
    }
}
