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
