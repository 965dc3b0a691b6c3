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

    // MARK: deferred sync

    private func level(_ connection: Connection) throws -> Int? {
        try connection.scalar("PRAGMA synchronous").int
    }

    @Test func aDeferredCommitIsVisibleAtOnceAndOwesOneSyncThatTheNextSyncPays() throws {
        let connection = try Connection(path: path)
        var observed = 0
        connection.commitObserver = { _ in observed += 1 }
        #expect(try level(connection) == 2)  // FULL
        _ = try connection.transaction(sync: .deferred) { try $0.run("INSERT INTO item (name) VALUES ('a')") }
        // Committed (another connection reads it), not yet synced, and the connection is back at FULL.
        #expect(connection.unsyncedCommit != nil)
        #expect(try Connection(path: path).count("item") == 1)
        #expect(try level(connection) == 2)
        #expect(observed == 0)
        try connection.syncCommitted()
        #expect(connection.unsyncedCommit == nil)
        #expect(observed == 1)
        // Nothing is owed now: a second call does nothing and observes nothing.
        try connection.syncCommitted()
        #expect(observed == 1)
    }

    @Test func aCommitAtFullPaysWhatADeferredOneOwed() throws {
        let connection = try Connection(path: path)
        _ = try connection.transaction(sync: .deferred) { try $0.run("INSERT INTO item (name) VALUES ('a')") }
        #expect(connection.unsyncedCommit != nil)
        // A transaction that writes nothing syncs nothing: the debt stays.
        _ = try connection.transaction { try $0.count("item") }
        #expect(connection.unsyncedCommit != nil)
        _ = try connection.transaction { try $0.run("INSERT INTO item (name) VALUES ('b')") }
        #expect(connection.unsyncedCommit == nil)
    }

    @Test func aDeferredTransactionThatFailsOwesNothingAndLeavesTheLevelAtFull() throws {
        let connection = try Connection(path: path)
        #expect(throws: TestFailure(id: 3)) {
            try connection.transaction(sync: .deferred) { connection in
                try connection.run("INSERT INTO item (name) VALUES ('a')")
                throw TestFailure(id: 3)
            }
        }
        #expect(connection.unsyncedCommit == nil)
        #expect(try level(connection) == 2)
        #expect(try connection.count("item") == 0)
    }

    @Test func aConnectionAtNormalNeverOwesASync() throws {
        let connection = try Connection(path: path, options: ConnectionOptions(synchronous: .normal))
        _ = try connection.transaction(sync: .deferred) { try $0.run("INSERT INTO item (name) VALUES ('a')") }
        #expect(connection.unsyncedCommit == nil)
        #expect(try level(connection) == 1)
    }
}
