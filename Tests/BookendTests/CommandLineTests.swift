import Bookend
import Foundation
import SQLite
import TestSupport
import Testing

@Suite struct CommandLineTests {
    let binary = Repository.path(".build/debug/bookend")

    @Test func theJobPrepReleaseSampleRunsWithARelativeDataDirectory() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let result = try await run(binary, ["sample", "job-prep-release", "--data-dir", "var/demo", "--keep-job"], in: directory.path)
        #expect(result.status == 0, "\(result.stderr)")
        // Each node's shared file lists the tasks that ran there, under the node's own line.
        let taskLines = result.stdout.split(separator: "\n").filter { $0.hasPrefix("  task") }
        #expect(taskLines.count == 8)
        #expect(result.stdout.components(separatedBy: "Prep task exit code:    0").count == 3)
        #expect(result.stdout.components(separatedBy: "Release task exit code: 0").count == 3)
        let database = directory.file("var/demo/bookend.db")
        let status = try await run("/usr/bin/sqlite3", ["-readonly", database,
            "SELECT count(*), sum(prep_exit_code), sum(release_exit_code) FROM prep_release_status WHERE release_state = 'completed'"])
        #expect(status.stdout == "2|0|0\n")
        // Release deleted the file on both nodes.
        let leftovers = try await run("/usr/bin/find", [directory.file("var/demo/nodes"), "-name", "job_prep_and_release.txt"])
        #expect(leftovers.stdout.isEmpty)
    }

    /// Paths of one character, relative to the working directory, are what people type (`.`, `d`,
    /// `b`). Until 2026-12-07 `serve`, `migrate` and `backup` died of SIGILL on them: Foundation's
    /// `deletingLastPathComponent` traps on such a path (see `Paths.parent`).
    @Test func oneCharacterPathsAreDataDirectoriesAndFilesLikeAnyOther() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let here = directory.path
        for (arguments, created) in [(["migrate", "--data-dir", "d"], "d/bookend.db"), (["migrate", "--data-dir", "e/"], "e/bookend.db"),
                                     (["backup", "--data-dir", "d", "--to", "b"], "b"),
                                     (["restore", "--from", "b", "--data-dir", "r"], "r/bookend.db")] {
            let ran = try await run(binary, arguments, in: here)
            #expect(ran.status == 0, "\(arguments): \(ran.stderr)")
            #expect(FileManager.default.fileExists(atPath: directory.file(created)), "\(arguments)")
        }
        // `.` as the data directory: the working directory itself.
        let inside = try TemporaryDirectory()
        let dot = try await run(binary, ["migrate", "--data-dir", "."], in: inside.path)
        #expect(dot.status == 0, "\(dot.stderr)")
        #expect(FileManager.default.fileExists(atPath: inside.file("bookend.db")))
        // A file where the folder should be: one line that says so (the sample printed an NSError dump).
        FileManager.default.createFile(atPath: directory.file("f"), contents: nil)
        for command in [["sample", "job-prep-release"], ["migrate"]] {
            let onAFile = try await run(binary, command + ["--data-dir", "f"], in: here)
            #expect(onAFile.status == 1 && onAFile.stderr == "Error: f: exists and is not a directory\n", "\(command): \(onAFile.stderr)")
        }
        // An empty path says so.
        let empty = try await run(binary, ["migrate", "--data-dir", ""], in: here)
        #expect(empty.status == 1 && empty.stderr.contains("the data directory's path is empty"), "\(empty.stderr)")
        // The daemon over `s`: it starts (printing its endpoint) and serves until told to stop.
        let daemon = try await ServeTests.Daemon.start(binary: binary, arguments: ["--data-dir", "s", "--listen", "127.0.0.1:0"], in: here)
        #expect(daemon.endpoint.hasPrefix("http://127.0.0.1:"))
        #expect(FileManager.default.fileExists(atPath: directory.file("s/bookend.db")))
        #expect(await daemon.stop() == 0, "\(daemon.diagnosis)")
    }

    /// A key file is read to 64 KiB at most: `/dev/zero` (or a log named by mistake) is one line, not a
    /// command that reads until memory runs out, for the daemon and for the client commands alike.
    @Test func aKeyFileThatNeverEndsIsRefusedWithALine() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        let served = try await run("/usr/bin/timeout", ["30", binary, "serve", "--data-dir", directory.file("data"), "--key-file", "/dev/zero",
                                                        "--listen", "127.0.0.1:0"])
        #expect(served.status == 1, "\(served.stdout)\(served.stderr)")
        #expect(served.stderr.contains("the key file /dev/zero holds more than 64 KiB"), "\(served.stderr)")
        let listed = try await run("/usr/bin/timeout", ["30", binary, "pool", "list", "--endpoint", "http://127.0.0.1:9", "--key-file", "/dev/zero"])
        #expect(listed.status == 1 && listed.stderr.contains("the key file /dev/zero holds more than 64 KiB"), "\(listed.stderr)")
        // A pipe is a key file too (`--key-file <(…)`): read to its end.
        let piped = try await run("/bin/bash", ["-c", "\"$0\" pool list --endpoint http://127.0.0.1:9 --key-file <(echo a2V5)", binary])
        #expect(piped.stderr.contains("cannot reach http://127.0.0.1:9"), "\(piped.stderr)")
    }

    @Test func sqlAnswersQueriesAndRefusesWrites() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        let data = directory.file("data")
        #expect(try await run(binary, ["migrate", "--data-dir", data]).status == 0)
        let version = try await run(binary, ["sql", "--data-dir", data, "--output", "json", "PRAGMA user_version"])
        #expect(version.status == 0)
        #expect(version.stdout.contains("\"user_version\" : \(Schema.version)"))
        let table = try await run(binary, ["sql", "--data-dir", data, "SELECT 'a' AS x, 1 AS y UNION ALL SELECT 'bb', NULL"])
        #expect(table.stdout == "x   y\na   1\nbb\n")
        // No row: the table still names its columns, and JSON is an empty array.
        let none = try await run(binary, ["sql", "--data-dir", data, "SELECT job_id, node_id, prep_state FROM prep_release_status"])
        #expect(none.status == 0 && none.stdout == "job_id  node_id  prep_state\n", "\(none.stdout)\(none.stderr)")
        let noneJSON = try await run(binary, ["sql", "--data-dir", data, "--output", "json", "SELECT id FROM job"])
        #expect(noneJSON.status == 0 && noneJSON.stdout == "[]\n", "\(noneJSON.stdout)")
        let write = try await run(binary, ["sql", "--data-dir", data, "INSERT INTO setting VALUES ('k', 'v')"])
        #expect(write.status != 0)
        #expect(write.stderr.contains("readonly"))
        #expect(try await run(binary, ["sql", "--data-dir", data, "SELECT count(*) FROM setting"]).stdout.hasSuffix("0\n"))
        let missing = try await run(binary, ["sql", "--data-dir", directory.file("nothing"), "SELECT 1"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no database here"))
        // One statement: a second is refused, not ignored; none at all says so.
        let two = try await run(binary, ["sql", "--data-dir", data, "SELECT 1; SELECT 2"])
        #expect(two.status != 0 && two.stdout.isEmpty && two.stderr.contains("give one SQL statement, not 2"), "\(two.stderr)")
        for nothing in ["", "  -- only a comment"] {
            let empty = try await run(binary, ["sql", "--data-dir", data, nothing])
            #expect(empty.status != 0 && empty.stderr.contains("no SQL statement given"), "\(empty.stderr)")
        }
        #expect(try await run(binary, ["sql", "--data-dir", data, "SELECT 7 AS n; -- and a comment"]).stdout == "n\n7\n")
    }

    @Test func migrateCreatesADatabaseTheSQLiteShellCanRead() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        let dataDirectory = directory.file("data")
        let result = try await run(binary, ["migrate", "--data-dir", dataDirectory])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("schema version \(Schema.version)"))
        #expect(result.stdout.contains(DataDirectory.databasePath(dataDirectory)))

        let shell = try await run(
            "/usr/bin/sqlite3",
            [
                "-readonly", DataDirectory.databasePath(dataDirectory),
                "select * from job_history; select * from task_history; select * from prep_release_status;",
            ])
        #expect(shell.status == 0, "\(shell.stderr)")
        #expect(shell.stderr.isEmpty)

        // Running it again is a no-op with the same version.
        #expect(try await run(binary, ["migrate", "--data-dir", dataDirectory]).status == 0)
    }

    @Test func migrateRejectsANonSQLiteFileWithOneLine() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary))
        let directory = try TemporaryDirectory()
        let path = DataDirectory.databasePath(directory.path)
        let junk = Data(String(repeating: "this is not a database\n", count: 300).utf8)
        #expect(FileManager.default.createFile(atPath: path, contents: junk))
        let result = try await run(binary, ["migrate", "--data-dir", directory.path])
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(path))
        #expect(result.stderr.contains("not a SQLite database"))
        #expect(FileManager.default.contents(atPath: path) == junk, "the file is left alone")
    }

    @Test func migrateRejectsAMissingParentDirectory() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary))
        let directory = try TemporaryDirectory()
        let dataDirectory = directory.file("missing/data")
        let result = try await run(binary, ["migrate", "--data-dir", dataDirectory])
        #expect(result.status != 0)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(directory.file("missing")))
        #expect(result.stderr.contains("does not exist"))
        #expect(!FileManager.default.fileExists(atPath: directory.file("missing")))
    }
}
