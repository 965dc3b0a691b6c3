import Foundation
import SQLite
import Testing

/// `Connection.run(_:binding:)` binds each value by its own type instead of through an array of
/// existentials. It must store exactly what the array form stores, for every kind of value, and a
/// statement reused with fewer non-NULL values must not keep an earlier call's bindings.
@Suite struct TypedBindingTests {
    @Test func typedAndArrayBindingStoreTheSameValues() throws {
        let directory = try TemporaryDirectory()
        let db = try Connection(path: directory.path + "/t.db")
        try db.execute("CREATE TABLE t (k TEXT, a, b, c, d, e)")
        let text = "nul\u{0}inside é"
        let none: String? = nil
        let some: Int64? = 42
        try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", ["array", text, "", none, some, true])
        try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)" as StaticString, binding: "typed", text, "", none, some, true)
        let rows = try db.query("SELECT a, b, c, d, e, typeof(b), typeof(c) FROM t ORDER BY k")
        #expect(rows.count == 2)
        #expect(rows[0].values == rows[1].values)
        #expect(rows[1]["a"].string == text)
        #expect(rows[1][5].string == "text")
        #expect(rows[1][6].string == "null")
        // The same statement again, with NULLs where the last call bound values.
        let otherNone: Int64? = nil
        #expect(try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)" as StaticString, binding: "again", 1.5, none, none, otherNone, false) == 1)
        let again = try #require(db.query("SELECT a, b, c, d, e FROM t WHERE k = 'again'").first)
        #expect(again.values == [.real(1.5), .null, .null, .null, .integer(0)])
    }
}
