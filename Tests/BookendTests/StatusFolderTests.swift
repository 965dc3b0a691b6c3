@testable import Bookend
import Foundation
import Testing
import TestSupport

/// Status folders (`volatile/executions/<pk>-<nonce>`) are recycled per node: once an execution's
/// exit is recorded its folder is emptied and kept under `volatile/spare-status`, and the next launch
/// on the node renames it to its own name, instead of a `mkdir` and an `rmdir` per execution. These
/// tests hold what the crash protocol needs of that: an execution reads only its own exit, a kept
/// folder is as private as a new one, and a restart starts from no kept folders.
@Suite struct StatusFolderTests {
    static func inode(_ path: String) -> UInt64? {
        var info = stat()
        return lstat(path, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    static func spares(_ root: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/volatile/spare-status")) ?? []).sorted()
    }

    @Test func theNextExecutionOnANodeReusesTheLastOnesFolderAndReadsOnlyItsOwnExit() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let root = try #require(try await h.pool().first).rootDirectory
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "a", commandLine: sh("exit 7")))
            try await h.waitForTasks("job")
            let first = try #require(try await h.sql("SELECT status_dir FROM execution WHERE kind = 'task'").first?.first)
            #expect(!FileManager.default.fileExists(atPath: first), "the recorded execution's folder left its name")
            let kept = Self.spares(root)
            #expect(kept == [(first as NSString).lastPathComponent])
            let keptPath = root + "/volatile/spare-status/" + (first as NSString).lastPathComponent
            // A kept folder holds no `exit` and no `pid`: those two were renamed back to the names the
            // shim writes before it renames them into place, so their inodes serve the next execution.
            #expect(try FileManager.default.contentsOfDirectory(atPath: keptPath).sorted() == ["exit.tmp", "pid.tmp"])
            let keptInode = try #require(Self.inode(keptPath))
            let exitInode = try #require(Self.inode(keptPath + "/exit.tmp"))
            let pidInode = try #require(Self.inode(keptPath + "/pid.tmp"))
            // Files a late writer could have left in the kept folder: the next execution must not read them.
            for (name, text) in [("exit", "exit 42\n"), ("pid", "1 1\n"), (Engine.stepExitFile, "42\n")] {
                #expect(FileManager.default.createFile(atPath: keptPath + "/" + name, contents: Data(text.utf8)))
            }
            // Nor what is left in a kept file: the shim truncates it before it writes.
            let longer = "exit 42 and much more than any exit line the shim writes, so truncation shows\n"
            try Data(longer.utf8).write(to: URL(fileURLWithPath: keptPath + "/exit.tmp"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "b", commandLine: sh("exit 3")))
            try await h.waitForTasks("job")
            #expect(try await h.engine.task(jobID: "job", taskID: "b").executionInfo.exitCode == 3)
            let second = try #require(try await h.sql("SELECT e.status_dir FROM execution e JOIN task t ON t.pk = e.task_pk WHERE t.id = 'b'").first?.first)
            #expect(second != first)
            // The same inode, renamed twice: no folder was made for the second execution.
            let keptAgain = try #require(Self.spares(root).first)
            #expect(keptAgain == (second as NSString).lastPathComponent)
            #expect(Self.inode(root + "/volatile/spare-status/" + keptAgain) == keptInode)
            // And the same two file inodes: the second execution's shim wrote its exit and pid into them.
            #expect(Self.inode(root + "/volatile/spare-status/" + keptAgain + "/exit.tmp") == exitInode)
            #expect(Self.inode(root + "/volatile/spare-status/" + keptAgain + "/pid.tmp") == pidInode)
            let written = try String(contentsOfFile: root + "/volatile/spare-status/" + keptAgain + "/exit.tmp", encoding: .utf8)
            #expect(!written.contains("much more"), "the kept exit file was truncated: \(written)")
            #expect(written.hasSuffix("\n") && written.split(separator: "\n").count == 1, "\(written)")
            var info = stat()
            #expect(stat(root + "/volatile/spare-status/" + keptAgain, &info) == 0 && info.st_mode & 0o777 == 0o700 && info.st_uid == geteuid())
            #expect(stat(root + "/volatile/spare-status", &info) == 0 && info.st_mode & 0o777 == 0o700 && info.st_uid == geteuid())
            let left = try FileManager.default.contentsOfDirectory(atPath: root + "/volatile/executions")
            #expect(left.isEmpty, "\(left)")
        }
    }

    @Test func aRestartForgetsAndRemovesTheFoldersAnEarlierEngineKept() async throws {
        let h = try await EngineHarness.make()
        let root = try #require(try await h.pool().first).rootDirectory
        try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
        try await h.engine.addTask(jobID: "job", TaskSpec(id: "a", commandLine: sh("exit 0")))
        try await h.waitForTasks("job")
        #expect(Self.spares(root).count == 1)
        await h.engine.shutdown()
        let restarted = try await h.reopened()
        try await withCleanup({ await restarted.finish() }) {
            #expect(Self.spares(root).isEmpty, "reconcile removed the kept folder")
            try await restarted.engine.addTask(jobID: "job", TaskSpec(id: "b", commandLine: sh("exit 5")))
            try await restarted.waitForTasks("job")
            #expect(try await restarted.engine.task(jobID: "job", taskID: "b").executionInfo.exitCode == 5)
            #expect(Self.spares(root).count == 1)
        }
    }

    /// A non-admin task cannot write its own status folder (its `exit`, or a forged one beside it), a
    /// kept one, or create one for another execution: only the shim, as the engine's account, writes there.
    @Test(.enabled(if: geteuid() == 0, "task accounts exist only when Bookend runs as root"))
    func aNonAdminTaskCannotWriteItsOwnOrAnotherExecutionsStatus() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            let root = try #require(try await h.pool().first).rootDirectory
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "first", commandLine: sh("exit 0")))
            try await h.waitForTasks("job")
            // The probe waits for the test to name its own status folder, then tries to write.
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "probe", commandLine: sh("""
                i=0; while [ ! -s \(effects)/own ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
                own=$(cat \(effects)/own)
                if echo 'exit 9' > $own/exit 2>/dev/null; then echo own-exit:written; else echo own-exit:denied; fi
                if echo 'exit 9' > $own/exit.tmp 2>/dev/null; then echo own-tmp:written; else echo own-tmp:denied; fi
                if mkdir \(root)/volatile/spare-status/forged 2>/dev/null; then echo spare:written; else echo spare:denied; fi
                if mkdir \(root)/volatile/executions/999999-0000000000000000 2>/dev/null; then echo other:written; else echo other:denied; fi
                exit 4
                """)))
            try await h.engine.wait(timeout: .seconds(60)) { engine in try engine.task(jobID: "job", taskID: "probe").state == .running }
            let own = try #require(try await h.sql(
                "SELECT e.status_dir FROM execution e JOIN task t ON t.pk = e.task_pk WHERE t.id = 'probe'").first?.first)
            try Data(own.utf8).write(to: URL(fileURLWithPath: effects + "/own.tmp"))
            #expect(rename(effects + "/own.tmp", effects + "/own") == 0)
            try await h.waitForTasks("job")
            let output = String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: "probe", path: "stdout.txt"), as: UTF8.self)
            #expect(output.split(separator: "\n").sorted() == ["other:denied", "own-exit:denied", "own-tmp:denied", "spare:denied"], "\(output)")
            // The shim's record stands: the probe's own exit code, not the one it tried to write.
            #expect(try await h.engine.task(jobID: "job", taskID: "probe").executionInfo.exitCode == 4)
        }
    }
}
