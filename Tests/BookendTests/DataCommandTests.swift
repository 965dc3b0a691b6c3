import Bookend
import Foundation
import SQLite
import TestSupport
import Testing

/// `bookend backup`, `restore` and serve's housekeeping flags, as a user runs them.
@Suite struct DataCommandTests {
    let binary = Repository.path(".build/debug/bookend")

    @Test func backupThenRestoreThenDoctor() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let data = directory.file("data")
        #expect(try await run(binary, ["migrate", "--data-dir", data]).status == 0)
        let backup = try await run(binary, ["backup", "--data-dir", data, "--to", directory.file("copy.db")])
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stdout.contains("PRAGMA integrity_check: ok"))
        #expect(backup.stdout.contains("schema version \(Schema.version)"))
        let restore = try await run(binary, ["restore", "--from", directory.file("copy.db"), "--data-dir", directory.file("restored")])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(restore.stdout.contains("next: bookend serve --data-dir \(directory.file("restored"))"))
        let again = try await run(binary, ["restore", "--from", directory.file("copy.db"), "--data-dir", directory.file("restored")])
        #expect(again.status == 1)
        #expect(again.stderr.contains("restore into a new data directory"))
        let doctor = try await run(binary, ["doctor", "--data-dir", directory.file("restored"), "--min-free-disk", "1"])
        #expect(doctor.status == 0, "\(doctor.stdout)")
    }

    @Test(arguments: [["--min-free-disk", "5X"], ["--min-free-disk", "100%"], ["--history-retention", "seven days"]])
    func serveRefusesMalformedHousekeepingFlagsBeforeStarting(_ flags: [String]) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        let result = try await run(binary, ["serve", "--data-dir", directory.file("data"), "--listen", "127.0.0.1:0"] + flags)
        #expect(result.status != 0)
        #expect(result.stderr.contains(flags[1]))
        #expect(!FileManager.default.fileExists(atPath: directory.file("data")), "nothing was created")
    }
}
