import Foundation
import SQLite
import TestSupport
import Testing

@Suite struct MigrationParsingTests {
    @Test func parsesVersionAndName() throws {
        let migration = try #require(Migration(file: "0001_create_schema.sql", sql: "CREATE TABLE a (x);"))
        #expect(migration.version == 1)
        #expect(migration.name == "create_schema")
        #expect(migration.sql == "CREATE TABLE a (x);")
        #expect(Migration(file: "0042_add_node_index.sql", sql: "")?.version == 42)
        #expect(Migration(file: "12_x_y.sql", sql: "") == Migration(version: 12, name: "x_y", sql: ""))
    }

    @Test(arguments: ["create.sql", "0001_create.txt", "abc_create.sql", "0000_zero.sql", "-1_negative.sql", "_x.sql", "0001"])
    func rejectsMalformedFileNames(_ file: String) {
        #expect(Migration(file: file, sql: "") == nil)
    }
}

@Suite(.ownThread) struct MigrationRunnerTests {
    let directory: TemporaryDirectory
    let path: String
    let first = Migration(version: 1, name: "a", sql: "CREATE TABLE a (x INTEGER) STRICT; INSERT INTO a VALUES (1);")
    let second = Migration(version: 2, name: "b", sql: "CREATE TABLE b (x INTEGER) STRICT;")
    let third = Migration(version: 3, name: "c", sql: "CREATE TABLE c (x INTEGER) STRICT;")

    init() throws {
        directory = try TemporaryDirectory()
        path = directory.file("test.db")
    }

    func tables(_ connection: Connection) throws -> [String] {
        try connection.query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").compactMap { $0[0].string }
    }

    @Test func appliesEveryMigrationOnceAndRecordsTheVersion() throws {
        let connection = try Connection(path: path)
        #expect(try connection.userVersion() == 0)
        var seen: [Int] = []
        #expect(try connection.migrate([first, second]) { seen.append($0.version) } == 2)
        #expect(seen == [1, 2])
        #expect(try tables(connection) == ["a", "b"])
        // Running again, or with one more migration, applies only what is new.
        seen = []
        #expect(try connection.migrate([first, second]) { seen.append($0.version) } == 2)
        #expect(try connection.migrate([first, second, third]) { seen.append($0.version) } == 3)
        #expect(seen == [3])
        #expect(try connection.count("a") == 1)
    }

    @Test func userVersionIsSetInsideEachMigrationsTransaction() throws {
        let connection = try Connection(path: path)
        var observed: [(version: Int, userVersion: Int, inTransaction: Bool)] = []
        try connection.migrate([first, second]) { migration in
            observed.append((migration.version, (try? connection.userVersion()) ?? -1, connection.isInTransaction))
        }
        #expect(observed.map(\.version) == [1, 2])
        #expect(observed.map(\.userVersion) == [1, 2])
        #expect(observed.map(\.inTransaction) == [true, true])
    }

    @Test(arguments: [[2], [1, 3], [2, 1], [1, 1], [1, 2, 4]])
    func rejectsListsThatAreNotOneToNWithoutGaps(_ versions: [Int]) throws {
        let connection = try Connection(path: path)
        let migrations = versions.map { Migration(version: $0, name: "m\($0)", sql: "CREATE TABLE m\($0) (x);") }
        let error = try #require(throws: MigrationError.self) { try connection.migrate(migrations) }
        guard case .invalidMigrationList(let why) = error else {
            Issue.record("unexpected error \(error)")
            return
        }
        #expect(why.contains("expected version"))
        #expect(try connection.userVersion() == 0)
        #expect(try tables(connection).isEmpty, "nothing is applied from an invalid list")
    }

    @Test func refusesADatabaseNewerThanTheCodeAndLeavesItUntouched() throws {
        do {
            let connection = try Connection(path: path)
            try connection.migrate([first, second, third])
            try connection.execute("PRAGMA user_version = 5")
        }
        let before = try #require(FileManager.default.contents(atPath: path))
        do {
            let connection = try Connection(path: path)
            #expect(throws: MigrationError.databaseNewerThanCode(path: path, databaseVersion: 5, knownVersion: 2)) {
                try connection.migrate([first, second])
            }
            #expect(throws: MigrationError.databaseNewerThanCode(path: path, databaseVersion: 5, knownVersion: 0)) {
                try connection.migrate([])
            }
            #expect(try connection.userVersion() == 5)
        }
        #expect(FileManager.default.contents(atPath: path) == before)
        let message = MigrationError.databaseNewerThanCode(path: path, databaseVersion: 5, knownVersion: 2).description
        #expect(message.contains(path) && message.contains("5") && message.contains("newer"))
    }

    @Test func failingMigrationLeavesThePreviousVersionAndNoPartialTables() throws {
        let broken = Migration(
            version: 2, name: "broken",
            sql: """
                CREATE TABLE b (x INTEGER) STRICT;
                INSERT INTO a VALUES (2);
                INSERT INTO no_such_table VALUES (1);
                CREATE TABLE c (x INTEGER) STRICT;
                """)
        let connection = try Connection(path: path)
        let error = try #require(throws: SQLiteError.self) { try connection.migrate([first, broken]) }
        #expect(error.message.contains("no_such_table"))
        #expect(try connection.userVersion() == 1)
        #expect(try tables(connection) == ["a"])
        #expect(try connection.count("a") == 1)
        #expect(!connection.isInTransaction)
        // Fixed, the same database migrates.
        #expect(try connection.migrate([first, second]) == 2)
    }

    @Test func migrationLeavingForeignKeyViolationsIsRolledBack() throws {
        let parent = Migration(version: 1, name: "parent", sql: "CREATE TABLE parent (id INTEGER PRIMARY KEY) STRICT;")
        // With foreign_keys on, a table rebuild can still leave dangling references (the check is
        // bypassed by PRAGMA defer_foreign_keys until commit); the runner checks explicitly.
        let dangling = Migration(
            version: 2, name: "dangling",
            sql: """
                PRAGMA defer_foreign_keys = ON;
                CREATE TABLE child (parent_id INTEGER REFERENCES parent (id)) STRICT;
                INSERT INTO child VALUES (42);
                """)
        let connection = try Connection(path: path)
        let error = try #require(throws: SQLiteError.self) { try connection.migrate([parent, dangling]) }
        #expect(error.isForeignKeyViolation)
        #expect(error.message.contains("migration 2"))
        #expect(try connection.userVersion() == 1)
        #expect(try tables(connection) == ["parent"])
    }

    @Test func concurrentMigratorDoesNotReapplyAMigrationAnotherProcessCommitted() throws {
        do { _ = try Connection(path: path) }
        // `holder` takes the write lock first. The migrator reads user_version 0, then waits for the
        // lock in BEGIN IMMEDIATE; meanwhile `holder` applies migration 1 and commits. The migrator
        // must notice under the lock that version 1 is already there instead of running it again.
        let holder = try Connection(path: path)
        try holder.execute("BEGIN IMMEDIATE")
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        let path = self.path
        let first = self.first
        DispatchQueue.global().async {
            do {
                let migrator = try Connection(path: path)
                result.set(.success(try migrator.migrate([first])))
            } catch {
                result.set(.failure(error))
            }
            done.signal()
        }
        // Give the migrator time to read user_version and start waiting for the lock. If it is late it
        // reads version 1 and the test still passes: this ordering only makes the race likely, the
        // assertions never depend on how long anything took.
        usleep(300_000)
        try holder.execute(first.sql)
        try holder.execute("PRAGMA user_version = 1")
        try holder.execute("COMMIT")
        done.wait()
        #expect(try result.get().get() == 1)
        #expect(try holder.count("a") == 1, "migration 1 ran exactly once")
    }
}

/// A result handed from a background queue to the test, guarded by a lock.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<Int, any Error>?
    func set(_ value: Result<Int, any Error>) { lock.withLock { self.value = value } }
    func get() throws -> Result<Int, any Error> {
        try #require(lock.withLock { value })
    }
}
