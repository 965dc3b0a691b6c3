import Foundation
import SQLite
import TestSupport
import Testing

/// `ReaderPool.remembering`: an answer is served again only while no connection, of this process or
/// another, has committed since it was read.
@Suite(.ownThread) struct RememberedReadTests {
    /// A pool of one connection, so every call is lent the same one (and its kept answers).
    final class Counted: @unchecked Sendable {
        let pool: ReaderPool
        var reads = 0
        init(_ path: String) { pool = ReaderPool(path: path, limit: 1) }

        func items(_ key: String = "items", keep: Bool = true) throws -> Int {
            try pool.remembering(key) { db -> Int in
                reads += 1
                return try db.scalar("SELECT count(*) FROM item").int ?? -1
            } finish: { count in (count, keep ? 8 : nil) }
        }
    }

    static func database() throws -> (TemporaryDirectory, Connection) {
        let directory = try TemporaryDirectory()
        let writer = try Connection(path: directory.file("db.sqlite"))
        try writer.execute("CREATE TABLE item (x INTEGER) STRICT")
        return (directory, writer)
    }

    @Test func anAnswerIsKeptUntilTheNextCommitOfThisProcess() throws {
        let (directory, writer) = try Self.database()
        let reader = Counted(directory.file("db.sqlite"))
        #expect(try reader.items() == 0)
        #expect(try reader.items() == 0)
        #expect(reader.reads == 1, "the second call is answered from what the first read")
        try writer.transaction { db in _ = try db.run("INSERT INTO item VALUES (1)") }
        #expect(try reader.items() == 1)
        #expect(reader.reads == 2)
        // A rolled-back transaction commits nothing; the kept answer is still right either way.
        _ = try? writer.transaction { db -> Void in
            _ = try db.run("INSERT INTO item VALUES (2)")
            throw SQLiteError(extendedCode: 1, message: "roll back")
        }
        #expect(try reader.items() == 1)
        // Keys are separate answers.
        #expect(try reader.items("other") == 1)
        #expect(reader.reads == 3)
    }

    @Test func aCommitByAnotherProcessEndsTheKeptAnswer() throws {
        let (directory, writer) = try Self.database()
        try writer.execute("PRAGMA journal_mode = WAL")
        let reader = Counted(directory.file("db.sqlite"))
        #expect(try reader.items() == 0)
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        shell.arguments = [directory.file("db.sqlite"), "INSERT INTO item VALUES (7), (8)"]
        try shell.run()
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 0)
        #expect(try reader.items() == 2)
        #expect(reader.reads == 2)
    }

    @Test func failuresAndAnswersNotOfferedAreNeverKept() throws {
        let (directory, _) = try Self.database()
        let reader = Counted(directory.file("db.sqlite"))
        #expect(try reader.items(keep: false) == 0)
        #expect(try reader.items(keep: false) == 0)
        #expect(reader.reads == 2)
        var attempts = 0
        for _ in 0..<2 {
            #expect(throws: SQLiteError.self) {
                try reader.pool.remembering("broken") { db -> Int in
                    attempts += 1
                    return try db.scalar("SELECT count(*) FROM missing_table").int ?? 0
                } finish: { ($0, 8) }
            }
        }
        #expect(attempts == 2, "a read that threw is read again")
        // An answer larger than one entry may hold is answered and not kept.
        var large = 0
        for _ in 0..<2 {
            _ = try reader.pool.remembering("large") { _ in large += 1 } finish: { _ in ((), 1 << 30) }
        }
        #expect(large == 2)
    }

    @Test func dataVersionMovesOnlyWithAnotherConnectionsCommit() throws {
        let (directory, writer) = try Self.database()
        let reader = try Connection(path: directory.file("db.sqlite"), options: ConnectionOptions(readOnly: true, create: false))
        let first = try reader.dataVersion()
        #expect(try reader.dataVersion() == first)
        try writer.transaction { db in _ = try db.run("INSERT INTO item VALUES (1)") }
        #expect(try reader.dataVersion() != first)
    }
}
