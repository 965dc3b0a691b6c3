import Bookend
import Foundation
import SQLite
import Testing

@Suite struct CommandLineTests {
    let binary = Repository.path(".build/debug/bookend")

    @Test func migrateCreatesADatabaseTheSQLiteShellCanRead() throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        let dataDirectory = directory.file("data")
        let result = try run(binary, ["migrate", "--data-dir", dataDirectory])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("schema version \(Schema.version)"))
        #expect(result.stdout.contains(DataDirectory.databasePath(dataDirectory)))

        let shell = try run(
            "/usr/bin/sqlite3",
            [
                "-readonly", DataDirectory.databasePath(dataDirectory),
                "select * from job_history; select * from task_history; select * from prep_release_status;",
            ])
        #expect(shell.status == 0, "\(shell.stderr)")
        #expect(shell.stderr.isEmpty)

        // Running it again is a no-op with the same version.
        #expect(try run(binary, ["migrate", "--data-dir", dataDirectory]).status == 0)
    }

    @Test func migrateRejectsANonSQLiteFileWithOneLine() throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary))
        let directory = try TemporaryDirectory()
        let path = DataDirectory.databasePath(directory.path)
        let junk = Data(String(repeating: "this is not a database\n", count: 300).utf8)
        #expect(FileManager.default.createFile(atPath: path, contents: junk))
        let result = try run(binary, ["migrate", "--data-dir", directory.path])
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(path))
        #expect(result.stderr.contains("not a SQLite database"))
        #expect(FileManager.default.contents(atPath: path) == junk, "the file is left alone")
    }

    @Test func migrateRejectsAMissingParentDirectory() throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary))
        let directory = try TemporaryDirectory()
        let dataDirectory = directory.file("missing/data")
        let result = try run(binary, ["migrate", "--data-dir", dataDirectory])
        #expect(result.status != 0)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(directory.file("missing")))
        #expect(result.stderr.contains("does not exist"))
        #expect(!FileManager.default.fileExists(atPath: directory.file("missing")))
    }
}
