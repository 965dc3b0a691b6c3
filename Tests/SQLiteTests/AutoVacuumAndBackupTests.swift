import Foundation
import SQLite
import TestSupport
import Testing

@Suite(.ownThread) struct AutoVacuumTests {
    @Test(arguments: [
        ("PRAGMA auto_vacuum = INCREMENTAL;", AutoVacuum.incremental), ("pragma auto_vacuum=incremental;", .incremental),
        ("-- comment\nPRAGMA auto_vacuum = 2;\nCREATE TABLE t (x);", .incremental), ("PRAGMA auto_vacuum = FULL;", .full),
        ("PRAGMA auto_vacuum = NONE;", AutoVacuum.none),
    ])
    func aMigrationStatesTheModeItWants(_ sql: String, _ mode: AutoVacuum) {
        #expect(Migration(version: 1, name: "x", sql: sql).requestedAutoVacuum == mode)
    }

    @Test(arguments: ["CREATE TABLE t (x);", "PRAGMA auto_vacuum;", "PRAGMA auto_vacuum = SOMETIMES;", "-- PRAGMA auto_vacuum = FULL"])
    func otherMigrationsStateNone(_ sql: String) {
        #expect(Migration(version: 1, name: "x", sql: sql).requestedAutoVacuum == nil)
    }

    @Test func aFileWithTablesGetsTheModeAfterTheMigrationCommits() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("test.db")
        let first = Migration(version: 1, name: "a", sql: "CREATE TABLE a (x BLOB) STRICT;")
        let second = Migration(version: 2, name: "b", sql: "PRAGMA auto_vacuum = INCREMENTAL;\nCREATE TABLE b (x INTEGER) STRICT;")
        let connection = try Connection(path: path)
        try connection.migrate([first])
        try connection.run("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO a SELECT randomblob(3000) FROM n")
        #expect(try connection.scalar("PRAGMA auto_vacuum").int == AutoVacuum.none.rawValue)
        #expect(try connection.migrate([first, second]) == 2)
        #expect(try connection.scalar("PRAGMA auto_vacuum").int == AutoVacuum.incremental.rawValue)
        // Freed pages now go back to the file system.
        let before = try #require(try connection.scalar("PRAGMA page_count").int)
        try connection.run("DELETE FROM a")
        try connection.execute("PRAGMA incremental_vacuum")
        #expect(try #require(try connection.scalar("PRAGMA page_count").int) < before / 4)
        #expect(try connection.integrityCheck() == ["ok"])
    }

    @Test func aNewFileIsCreatedInTheMode() throws {
        let directory = try TemporaryDirectory()
        let connection = try Connection(path: directory.file("test.db"))
        let migration = Migration(version: 1, name: "a", sql: "PRAGMA auto_vacuum = INCREMENTAL;\nCREATE TABLE a (x INTEGER) STRICT;")
        #expect(try connection.migrate([migration]) == 1)
        #expect(try connection.scalar("PRAGMA auto_vacuum").int == AutoVacuum.incremental.rawValue)
    }
}

@Suite(.ownThread) struct OnlineBackupTests {
    /// Commits by another connection between the steps neither restart nor leak into the copy: it is
    /// the snapshot of the moment the backup began.
    @Test func theCopyIsOneSnapshotWhileAnotherConnectionCommits() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("source.db")
        let writer = try Connection(path: path)
        try writer.execute("CREATE TABLE t (x BLOB) STRICT")
        try writer.run("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO t SELECT randomblob(1000) FROM n")
        let reader = try Connection(path: path, options: ConnectionOptions(readOnly: true, create: false))
        let copy = try Connection(path: directory.file("copy.db"))
        var steps = 0
        try reader.backup(into: copy, pagesPerStep: 10) { copied, total in
            steps += 1
            #expect(copied <= total)
            _ = try? writer.run("INSERT INTO t VALUES (randomblob(1000))")
        }
        #expect(steps > 10, "copied in steps")
        #expect(try copy.scalar("SELECT count(*) FROM t").int == 2000)
        #expect(try writer.scalar("SELECT count(*) FROM t").int == 2000 + steps)
        #expect(try copy.integrityCheck() == ["ok"])
    }
}
