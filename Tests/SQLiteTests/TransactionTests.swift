import Foundation
import SQLite
import Testing

@Suite struct TransactionTests {
    let directory: TemporaryDirectory
    let path: String

    init() throws {
        directory = try TemporaryDirectory()
        path = directory.file("test.db")
        let connection = try Connection(path: path)
        try connection.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT")
    }

    @Test func transactionCommitsAndReturnsTheBodysValue() throws {
        let connection = try Connection(path: path)
        let value = try connection.transaction { connection in
            #expect(connection.isInTransaction)
            try connection.run("INSERT INTO item (name) VALUES (?)", ["a"])
            try connection.run("INSERT INTO item (name) VALUES (?)", ["b"])
            return 42
        }
        #expect(value == 42)
        #expect(!connection.isInTransaction)
        // Another connection sees the committed rows.
        let other = try Connection(path: path)
        #expect(try other.count("item") == 2)
    }

    @Test func thrownErrorRollsBackEveryStatementAndIsRethrownUnchanged() throws {
        let connection = try Connection(path: path)
        #expect(throws: TestFailure(id: 7)) {
            try connection.transaction { connection in
                try connection.run("INSERT INTO item (name) VALUES (?)", ["a"])
                try connection.run("INSERT INTO item (name) VALUES (?)", ["b"])
                try connection.run("UPDATE item SET name = name || '!'")
                throw TestFailure(id: 7)
            }
        }
        #expect(!connection.isInTransaction)
        #expect(try connection.count("item") == 0)
    }

    @Test func failingStatementRollsBackEarlierStatementsAndRethrowsTheSQLiteError() throws {
        let connection = try Connection(path: path)
        let error = #expect(throws: SQLiteError.self) {
            try connection.transaction { connection in
                try connection.run("INSERT INTO item (name) VALUES (?)", ["a"])
                try connection.run("INSERT INTO item (name) VALUES (?)", ["a"])
            }
        }
        #expect(error?.isUniqueViolation == true)
        #expect(error?.sql == "INSERT INTO item (name) VALUES (?)")
        #expect(!connection.isInTransaction)
        #expect(try connection.count("item") == 0)
    }

    @Test func commitFailureRollsBackAndLeavesTheConnectionUsable() throws {
        let connection = try Connection(path: path)
        try connection.execute("""
            CREATE TABLE parent (id INTEGER PRIMARY KEY) STRICT;
            CREATE TABLE child (id INTEGER PRIMARY KEY,
                parent_id INTEGER NOT NULL REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED) STRICT;
            """)
        // A deferred foreign key is only checked at COMMIT, so COMMIT itself fails.
        let error = #expect(throws: SQLiteError.self) {
            try connection.transaction { connection in
                try connection.run("INSERT INTO item (name) VALUES ('kept only if committed')")
                try connection.run("INSERT INTO child (parent_id) VALUES (99)")
            }
        }
        #expect(error?.isForeignKeyViolation == true)
        #expect(error?.sql == "COMMIT")
        #expect(!connection.isInTransaction)
        #expect(try connection.count("child") == 0)
        #expect(try connection.count("item") == 0)
        // The connection still works afterwards.
        _ = try connection.transaction { try $0.run("INSERT INTO item (name) VALUES ('after')") }
        #expect(try connection.count("item") == 1)
    }

    @Test func databaseWriteCommitsAndRollsBack() async throws {
        let database = try Database(path: path)
        _ = try await database.write { try $0.run("INSERT INTO item (name) VALUES ('a')") }
        await #expect(throws: TestFailure(id: 1)) {
            try await database.write { connection in
                try connection.run("INSERT INTO item (name) VALUES ('b')")
                throw TestFailure(id: 1)
            }
        }
        let names = try await database.withConnection { connection in
            try connection.query("SELECT name FROM item ORDER BY name").compactMap { $0[0].string }
        }
        #expect(names == ["a"])
    }
}

/// A savepoint's journal holds every page its statements change. SQLite's default moves it to a
/// temporary file past 64 KiB, created and unlinked on every pass of the scheduler; Bookend keeps it
/// in memory up to 4 MiB (`bookend_sqlite_configure`).
@Suite struct StatementJournalTests {
    /// SQLite's temporary files this process holds open: unlinked at once, they show in /proc/self/fd
    /// as `…/etilqs_… (deleted)`.
    static func temporaryFiles() -> Set<String> {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return Set(fds.compactMap { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
                target.contains("etilqs_") else { return nil }
            return "\(fd) \(target)"
        })
    }

    @Test func aSavepointChangingAMegabyteKeepsItsJournalInMemory() throws {
        let directory = try TemporaryDirectory()
        let connection = try Connection(path: directory.file("test.db"))
        try connection.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT")
        try connection.transaction { connection in
            for id in 0..<4000 { try connection.run("INSERT INTO item (id, body) VALUES (?, ?)", [id, String(repeating: "x", count: 200)]) }
        }
        try connection.transaction { connection in
            // Pages already changed in the transaction are what a savepoint must journal: about
            // 200 pages of 4 KiB, well past the 64 KiB default, under the 4 MiB Bookend sets.
            try connection.run("UPDATE item SET body = body || 'a'")
            try connection.execute("SAVEPOINT step")
            try connection.run("UPDATE item SET body = body || 'b'")
            // Another test's VACUUM may hold a temporary file for a moment; one of ours would stay
            // open until RELEASE, so only a file seen twice, apart, counts.
            let first = Self.temporaryFiles()
            Thread.sleep(forTimeInterval: 0.3)
            let held = first.intersection(Self.temporaryFiles())
            #expect(held.isEmpty, "the savepoint's journal went to \(held)")
            try connection.execute("RELEASE step")
        }
        #expect(try connection.scalar("SELECT count(*) FROM item WHERE body LIKE '%ab'") == .integer(4000))
    }
}
