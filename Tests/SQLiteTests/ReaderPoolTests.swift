import Foundation
import SQLite
import Testing

@Suite struct ReaderPoolTests {
    @Test func readersSeeCommittedWritesAndCannotWrite() throws {
        let directory = try TemporaryDirectory()
        let writer = try Connection(path: directory.file("db.sqlite"))
        try writer.execute("CREATE TABLE item (x INTEGER) STRICT")
        let pool = ReaderPool(path: writer.path, limit: 2)
        #expect(try pool.read { try $0.count("item") } == 0)
        try writer.transaction { db in _ = try db.run("INSERT INTO item VALUES (1)") }
        // A connection lent before the commit reads the new row on its next read transaction.
        #expect(try pool.read { try $0.count("item") } == 1)
        #expect(throws: SQLiteError.self) { try pool.read { _ = try $0.run("INSERT INTO item VALUES (2)") } }
        #expect(try writer.count("item") == 1)
    }

    @Test func aReadTransactionIsOneSnapshotWhileTheWriterCommits() throws {
        let directory = try TemporaryDirectory()
        let writer = try Connection(path: directory.file("db.sqlite"))
        try writer.execute("CREATE TABLE item (x INTEGER) STRICT")
        try writer.transaction { db in _ = try db.run("INSERT INTO item VALUES (1)") }
        let pool = ReaderPool(path: writer.path)
        let (before, after) = try pool.read { reader -> (Int, Int) in
            let before = try reader.count("item")
            try writer.transaction { db in _ = try db.run("INSERT INTO item VALUES (2)") }
            return (before, try reader.count("item"))
        }
        #expect(before == 1)
        #expect(after == 1, "the second statement of the same read sees the same snapshot")
        #expect(try pool.read { try $0.count("item") } == 2)
    }
}
