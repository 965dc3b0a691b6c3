import Bookend
import Foundation
import SQLite
import TestSupport
import Testing

/// Online backup while an engine runs tasks, and restoring the copy into a new data directory.
@Suite struct BackupRestoreTests {
    @Test func aBackupTakenDuringAWorkloadRestoresWithRunningWorkRequeuedAndFinishedWorkKept() async throws {
        let h = try await EngineHarness.make()
        let effects = try h.sideEffects()
        let gate = "\(effects)/go"
        let restoredDirectory = h.directory + "-restored"
        let backupFile = h.directory + "-backup.db"
        defer {
            try? FileManager.default.removeItem(atPath: restoredDirectory)
            try? FileManager.default.removeItem(atPath: backupFile)
        }
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 2, slots: 2)
            try await h.engine.createJob(JobSpec(
                id: "job", poolID: "pool", jobPreparationTask: JobPreparationTask(commandLine: sh("echo run >> \(effects)/prep"))))
            // Finished before the backup: these must never run again.
            try await h.engine.addTasks(jobID: "job", (1...6).map { TaskSpec(id: "done\($0)", commandLine: sh("echo run >> \(effects)/done\($0)")) })
            try await h.waitForTasks("job")
            // Running when the backup is taken: each waits for the gate.
            try await h.engine.addTasks(jobID: "job", (1...2).map {
                TaskSpec(id: "long\($0)", commandLine: sh("echo run >> \(effects)/long\($0); while [ ! -e \(gate) ]; do sleep 0.05; done"))
            })
            try await h.engine.wait(timeout: .seconds(60)) { _ in
                (1...2).allSatisfy { EngineHarness.lines("\(effects)/long\($0)").count == 1 }
            }
            // Acknowledged before the backup: `first` may or may not have started by then (it waits for
            // the gate too), `second` waits for it.
            var later = JobSpec(id: "later", poolID: "pool")
            later.usesTaskDependencies = true
            try await h.engine.createJob(later)
            try await h.engine.addTasks(jobID: "later", [
                TaskSpec(id: "first", commandLine: sh("while [ ! -e \(gate) ]; do sleep 0.05; done; echo run >> \(effects)/first")),
                TaskSpec(id: "second", commandLine: sh("echo run >> \(effects)/second"), dependsOn: TaskDependencies(taskIds: ["first"])),
            ])
            let prepRunsBefore = EngineHarness.lines("\(effects)/prep").count

            // The engine keeps its lock and keeps writing while the copy is taken.
            let directory = h.directory
            let report = try await onOwnThread { try Backup.backup(dataDirectory: directory, to: backupFile, pagesPerStep: 4) }
            #expect(report.integrity == ["ok"])
            #expect(report.schemaVersion == Schema.version)
            var info = stat()
            #expect(stat(backupFile, &info) == 0 && info.st_mode & 0o077 == 0, "the backup is private")
            #expect(!FileManager.default.fileExists(atPath: backupFile + "-wal"), "the backup is one file")

            let restored = try await onOwnThread { try Backup.restore(from: backupFile, dataDirectory: restoredDirectory) }
            #expect(restored.lostExecutions >= 2, "the two long tasks (and the waiting task, if it had started) were running")
            #expect(restored.nodes == 2)
            chmod(restoredDirectory, 0o755)

            // The original engine ends its work and stops; its processes are its own business.
            try await h.engine.terminateJob(id: "job")
            try await h.engine.terminateJob(id: "later")
            try await h.waitForJob("job", .completed)
            try await h.waitForJob("later", .completed)
            await h.engine.shutdown()

            FileManager.default.createFile(atPath: gate, contents: nil)
            let engine = try await Engine.open(dataDirectory: restoredDirectory, configuration: EngineConfiguration(tickInterval: .milliseconds(100)))
            try await withCleanup({ await engine.shutdown() }) {
                try await engine.waitForTasks(jobID: "job", timeout: .seconds(60))
                try await engine.waitForTasks(jobID: "later", timeout: .seconds(60))
                let tasks = try await engine.tasks(jobID: "job") + engine.tasks(jobID: "later")
                // Nothing acknowledged before the backup is missing, and everything completed.
                #expect(Set(tasks.map(\.id)) == ["done1", "done2", "done3", "done4", "done5", "done6", "long1", "long2", "first", "second"])
                #expect(tasks.allSatisfy { $0.state == .completed && $0.executionInfo.result == "success" })
                // Completed executions never run again; lost ones ran once more, requeued.
                for index in 1...6 { #expect(EngineHarness.lines("\(effects)/done\(index)").count == 1) }
                for index in 1...2 {
                    #expect(EngineHarness.lines("\(effects)/long\(index)").count == 2)
                    #expect(tasks.first { $0.id == "long\(index)" }?.executionInfo.requeueCount == 1)
                }
                #expect(EngineHarness.lines("\(effects)/second").count == 1)
                // Preparation was owed again on the nodes that lost a task of the job.
                #expect(EngineHarness.lines("\(effects)/prep").count > prepRunsBefore)
            }
            let events = try Connection(path: DataDirectory.databasePath(restoredDirectory), options: ConnectionOptions(readOnly: true, create: false))
            #expect(try events.scalar("SELECT count(*) FROM event WHERE kind = 'data-directory.restored'").int == 1)
            // Every folder the restored directory used is its own.
            let foreign = try events.scalar("SELECT count(*) FROM execution WHERE task_dir NOT LIKE ? OR status_dir NOT LIKE ?",
                [restoredDirectory + "/nodes/%", restoredDirectory + "/nodes/%"]).int
            #expect(foreign == 0)
        }
    }

    @Test func restoreRefusesADirectoryThatAlreadyHasADatabase() async throws {
        let directory = try TemporaryDirectory()
        let data = directory.file("data")
        _ = try DataDirectory.openMigrated(data)
        let report = try Backup.backup(dataDirectory: data, to: directory.file("copy.db"))
        #expect(report.integrity == ["ok"])
        let error = #expect(throws: Backup.Failure.self) { try Backup.restore(from: directory.file("copy.db"), dataDirectory: data) }
        #expect(error?.description.contains("restore into a new data directory") == true)
    }

    /// A backup renamed over the running engine's own database or WAL replaced them under it: the
    /// engine went on writing to the unlinked files, and what it acknowledged next was lost at its
    /// next start. Every name inside the data directory, and any other name of those files, is refused.
    @Test func aBackupIsNeverWrittenOverTheDatabaseItCopies() async throws {
        let h = try await EngineHarness.make()
        let outside = h.directory + "-link.db"
        defer { unlink(outside) }
        try await withCleanup({ await h.engine.shutdown() }) {
            try await h.engine.createJob(JobSpec(id: "before", poolID: "pool"))
            let database = DataDirectory.databasePath(h.directory)
            #expect(link(database, outside) == 0)
            let directory = h.directory
            for target in [database, database + "-wal", directory + "/copy.db", directory + "/nodes/../bookend.db", outside] {
                let error = #expect(throws: Backup.Failure.self) { try Backup.backup(dataDirectory: directory, to: target) }
                #expect(error?.description.contains(target) == true)
                #expect(!FileManager.default.fileExists(atPath: target + ".partial"))
            }
            #expect(!FileManager.default.fileExists(atPath: directory + "/copy.db"))
            try await h.engine.createJob(JobSpec(id: "after", poolID: "pool"))
        }
        // What the engine acknowledged is in its database when the directory is opened again.
        let reopened = try await h.reopened()
        try await withCleanup({ await reopened.finish() }) {
            let ids = try ["before", "after"].map { try reopened.engine.job(id: $0).id }
            #expect(ids == ["before", "after"])
        }
    }

    /// A deleted task's folder still recorded for removal when the backup was taken names a folder of
    /// the backed-up directory's nodes. The restored engine must not remove it (that engine may use
    /// the folder again, for a task re-added under the same id): restore forgets the record.
    @Test func aRestoredDirectoryNeverRemovesTheOtherDirectorysTaskFolders() async throws {
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)  // as root, task accounts must reach the node folders
        let data = directory.file("data")
        let (connection, _) = try DataDirectory.openMigrated(data)
        let folder = directory.file("data/nodes/tvmps_x_d/workitems/j/job-1/t")
        try FileManager.default.createDirectory(atPath: folder + "/wd", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: folder + "/wd/kept.txt", contents: Data("the other directory's\n".utf8))
        // What a crash between a task's deletion and its folder's removal leaves in that directory.
        try connection.run("INSERT INTO task_folder_removal (job_id, task_id, path) VALUES ('j', 't', ?)", [folder])
        let copy = directory.file("copy.db")
        #expect(try Backup.backup(dataDirectory: data, to: copy).integrity == ["ok"])
        let restoredDirectory = directory.file("restored")
        _ = try Backup.restore(from: copy, dataDirectory: restoredDirectory)
        let engine = try await Engine.open(dataDirectory: restoredDirectory, configuration: EngineConfiguration(tickInterval: .milliseconds(100)))
        await engine.shutdown()
        #expect(FileManager.default.fileExists(atPath: folder + "/wd/kept.txt"))
        let restored = try Connection(path: DataDirectory.databasePath(restoredDirectory), options: ConnectionOptions(readOnly: true, create: false))
        #expect(try restored.scalar("SELECT count(*) FROM task_folder_removal").int == 0)
        // The same record in the directory it belongs to is acted on at its next start.
        let original = try await Engine.open(dataDirectory: data, configuration: EngineConfiguration(tickInterval: .milliseconds(100)))
        await original.shutdown()
        #expect(!FileManager.default.fileExists(atPath: folder))
    }

    @Test func aCorruptBackupIsRefused() async throws {
        let directory = try TemporaryDirectory()
        let data = directory.file("data")
        _ = try DataDirectory.openMigrated(data)
        let copy = directory.file("copy.db")
        _ = try Backup.backup(dataDirectory: data, to: copy)
        // Overwrite a page in the middle of the file: the schema still reads, the b-tree does not.
        let handle = try #require(FileHandle(forUpdatingAtPath: copy))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size / 2)
        handle.write(Data(repeating: 0xA5, count: 4096))
        try handle.close()
        #expect(throws: (any Error).self) { try Backup.restore(from: copy, dataDirectory: directory.file("restored")) }
        #expect(!FileManager.default.fileExists(atPath: DataDirectory.databasePath(directory.file("restored"))))
    }

    /// SQLite takes an empty file, `/dev/zero` or any other database for a database that passes its
    /// integrity check: until 2026-12-07 restoring one of them made a fresh, empty data directory and
    /// reported success.
    @Test func aFileWithoutBookendsTablesIsNoBackup() throws {
        let directory = try TemporaryDirectory()
        let empty = directory.file("empty.db")
        FileManager.default.createFile(atPath: empty, contents: nil)
        let other = directory.file("other.db")
        try Connection(path: other).execute("CREATE TABLE job (id TEXT)")
        for source in [empty, other, "/dev/zero"] {
            let target = directory.file("restored-\((source as NSString).lastPathComponent)")
            let error = #expect(throws: Backup.Failure.self) { try Backup.restore(from: source, dataDirectory: target) }
            #expect(error?.description.contains("is not a Bookend backup") == true, "\(source): \(String(describing: error))")
            #expect(!FileManager.default.fileExists(atPath: DataDirectory.databasePath(target)), "\(source)")
        }
    }

    /// A backup's destination that is a folder is refused before anything is copied or written.
    @Test func aBackupIntoAFolderIsRefusedUpFront() throws {
        let directory = try TemporaryDirectory()
        let data = directory.file("data")
        _ = try DataDirectory.openMigrated(data)
        let folder = directory.file("backups")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        let error = #expect(throws: Backup.Failure.self) { try Backup.backup(dataDirectory: data, to: folder) }
        #expect(error?.description.contains("is a folder: give the path of the backup file to write") == true, "\(String(describing: error))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["backups", "data"])
    }
}
