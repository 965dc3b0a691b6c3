import Foundation
import SQLite
import Testing

@Suite struct ValueTests {
    let directory: TemporaryDirectory
    let connection: Connection

    init() throws {
        directory = try TemporaryDirectory()
        connection = try Connection(path: directory.file("test.db"))
        // No declared type: values are stored exactly as bound.
        try connection.execute("CREATE TABLE value (id INTEGER PRIMARY KEY, v)")
    }

    /// Stores `value` and reads it back both from the table and as a bare parameter.
    func roundTrip(_ value: any SQLiteBindable) throws -> (stored: SQLiteValue, selected: SQLiteValue) {
        try connection.run("INSERT INTO value (v) VALUES (?)", [value])
        let id = connection.lastInsertRowID
        return (try connection.scalar("SELECT v FROM value WHERE id = ?", [id]), try connection.scalar("SELECT ?", [value]))
    }

    @Test(arguments: [Int64.min, Int64.min + 1, -1, 0, 1, Int64(Int32.max) + 1, Int64.max])
    func int64RoundTrips(_ number: Int64) throws {
        let (stored, selected) = try roundTrip(number)
        #expect(stored == .integer(number))
        #expect(selected == .integer(number))
        #expect(stored.int64 == number)
    }

    @Test func intAndInt32RoundTrip() throws {
        #expect(try roundTrip(Int.max).stored.int == Int.max)
        #expect(try roundTrip(Int32.min).stored.int64 == Int64(Int32.min))
    }

    @Test(arguments: [0.0, -0.5, 3.141592653589793, 1e-300, -1.7976931348623157e308, Double.leastNonzeroMagnitude])
    func doubleRoundTrips(_ number: Double) throws {
        let (stored, selected) = try roundTrip(number)
        #expect(stored == .real(number))
        #expect(selected == .real(number))
        #expect(stored.double == number)
    }

    @Test(arguments: [
        "", "plain", "héllo wörld 日本語 🎉👩‍👩‍👧", "it's \"quoted\"; '); DROP TABLE value; --", "back\\slash\ttab\nnewline",
        "embedded\u{0}nul",
    ])
    func textRoundTrips(_ text: String) throws {
        let (stored, selected) = try roundTrip(text)
        #expect(stored == .text(text))
        #expect(selected == .text(text))
        #expect(try connection.scalar("SELECT length(CAST(v AS BLOB)) FROM value").int == text.utf8.count)
    }

    @Test(arguments: [[UInt8](), [0], [0, 1, 2, 255, 0, 128], [UInt8](repeating: 0xAB, count: 100_000)])
    func blobRoundTrips(_ bytes: [UInt8]) throws {
        let (stored, selected) = try roundTrip(SQLiteValue.blob(bytes))
        #expect(stored == .blob(bytes))
        #expect(selected == .blob(bytes))
        #expect(try connection.scalar("SELECT typeof(v) FROM value") == .text("blob"))
    }

    @Test func nullRoundTrips() throws {
        #expect(try roundTrip(SQLiteValue.null).stored == .null)
        let missing: String? = nil
        let (stored, selected) = try roundTrip(missing)
        #expect(stored.isNull && selected.isNull)
        #expect(stored.string == nil && stored.int64 == nil && stored.double == nil && stored.bool == nil)
        let present: String? = "here"
        #expect(try roundTrip(present).stored == .text("here"))
    }

    @Test func boolRoundTrips() throws {
        #expect(try roundTrip(true).stored == .integer(1))
        #expect(try roundTrip(false).stored == .integer(0))
        #expect(try roundTrip(true).stored.bool == true)
        #expect(try roundTrip(false).stored.bool == false)
    }

    @Test func rowsExposeColumnsByNameAndIndex() throws {
        let row = try #require(try connection.query("SELECT 1 AS one, 'two' AS two, NULL AS three").first)
        #expect(row.columns == ["one", "two", "three"])
        #expect(row["one"] == .integer(1) && row[1] == .text("two") && row["three"] == .null)
        #expect(row["no such column"] == .null)
    }

    @Test func aRepeatedColumnNameFindsTheFirstColumn() throws {
        let row = try #require(try connection.query("SELECT 1 AS same, 2 AS other, 3 AS same").first)
        #expect(row.columns == ["same", "other", "same"])
        #expect(row["same"] == .integer(1) && row[2] == .integer(3))
        #expect(row.position(of: "other") == 1 && row.position(of: "missing") == nil)
    }

    /// The layout's own hash table against a plain scan, over names that collide in a small table:
    /// the task table's columns, prefixes of each other, the empty name, non-ASCII, repeats.
    @Test func aLayoutFindsWhatAScanFinds() {
        let taskColumns = ["pk", "job_pk", "id", "display_name", "command_line", "spec", "state", "previous_state",
            "state_transition_time", "previous_state_transition_time", "e_tag", "last_modified", "creation_time",
            "max_wall_clock_time_ms", "retention_time_ms", "max_task_retry_count", "required_slots", "node_pk",
            "retry_count", "requeue_count", "start_time", "end_time", "exit_code", "failure_info", "result"]
        let names = taskColumns + ["", "a", "ab", "abc", "é", "naïve", "state", "id", "x y", "job_id", "node_id", "node_pool_id"]
        let layout = ColumnLayout(names)
        for probe in names + ["missing", "i", "pk ", "STATE", "e", "abcd", "state_transition_tim"] {
            #expect(layout.position(of: probe) == names.firstIndex(of: probe), "\(probe)")
        }
        #expect(ColumnLayout([]).position(of: "") == nil)
    }

    @Test func rowsOfOneStatementShareOneLayout() throws {
        try connection.run("INSERT INTO value (id, v) VALUES (1, 'one'), (2, 'two')")
        let rows = try connection.query("SELECT id, v FROM value ORDER BY id")
        #expect(rows.count == 2 && rows[0].layout === rows[1].layout)
        #expect(rows.map { $0["v"] } == [.text("one"), .text("two")])
    }

    @Test func aCachedSelectStarSeesColumnsAddedLater() throws {
        let sql = "SELECT * FROM value"
        try connection.run("INSERT INTO value (id, v) VALUES (1, 'one')")
        #expect(try connection.query(sql).first?.columns == ["id", "v"])
        // The schema change makes SQLite prepare the cached statement again, with one more column:
        // the rows must be read with the new names, not the ones kept from the first run.
        try connection.execute("ALTER TABLE value ADD COLUMN extra TEXT DEFAULT 'added'")
        let row = try #require(try connection.query(sql).first)
        #expect(row.columns == ["id", "v", "extra"])
        #expect(row["extra"] == .text("added") && row["v"] == .text("one"))
    }

    @Test func statementCacheReusesPreparedStatements() throws {
        let sql = "SELECT v FROM value WHERE id = ?"
        let first = try connection.statement(sql)
        let second = try connection.statement(sql)
        #expect(first === second)
        #expect(try connection.statement("SELECT 1") !== first)
        // Reused with different arguments, the statement is reset and rebound each time.
        try connection.run("INSERT INTO value (id, v) VALUES (1, 'one'), (2, 'two')")
        #expect(try connection.scalar(sql, [1]) == .text("one"))
        #expect(try connection.scalar(sql, [2]) == .text("two"))
        #expect(try connection.statement(sql) === first)
        // Fewer arguments than parameters: the rest are NULL, not left over from the previous call.
        #expect(try connection.scalar("SELECT ? IS NULL", []) == .integer(1))
    }

    @Test func runReturnsChangedRowCount() throws {
        try connection.run("INSERT INTO value (v) VALUES (1), (2), (3)")
        #expect(try connection.run("UPDATE value SET v = v + 1 WHERE v >= ?", [2]) == 2)
        #expect(try connection.run("DELETE FROM value") == 3)
    }
}

@Suite struct ErrorTests {
    let directory: TemporaryDirectory
    let connection: Connection

    init() throws {
        directory = try TemporaryDirectory()
        connection = try Connection(path: directory.file("test.db"))
        try connection.execute(
            "CREATE TABLE credential (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, value TEXT NOT NULL CHECK (length(value) < 8)) STRICT"
        )
    }

    @Test func errorCarriesCodeMessageAndSQLButNeverBoundValues() throws {
        let secret = "hunter2-TOPSECRET-\(UUID().uuidString)"
        let sql = "INSERT INTO credential (name, value) VALUES (?, ?)"
        let error = try #require(throws: SQLiteError.self) { try connection.run(sql, ["api-key", secret]) }
        #expect(error.extendedCode == 275)  // SQLITE_CONSTRAINT_CHECK
        #expect(error.primaryCode == 19)  // SQLITE_CONSTRAINT
        #expect(error.isCheckViolation && error.isConstraintViolation)
        #expect(error.message.contains("CHECK constraint failed"))
        #expect(error.sql == sql)
        #expect(error.description.contains("275"))
        #expect(error.description.contains("CHECK constraint failed"))
        #expect(error.description.contains(sql))
        #expect(!error.description.contains(secret))
        #expect(!error.description.contains("hunter2"))
        #expect(!String(reflecting: error).contains("hunter2"))
        #expect(try connection.count("credential") == 0)
    }

    @Test func uniqueViolationDoesNotLeakTheValue() throws {
        let secret = "s3cr3t"
        try connection.run("INSERT INTO credential (name, value) VALUES (?, 'x')", [secret])
        let error = try #require(throws: SQLiteError.self) {
            try connection.run("INSERT INTO credential (name, value) VALUES (?, 'y')", [secret])
        }
        #expect(error.isUniqueViolation)
        #expect(error.extendedCode == 2067)  // SQLITE_CONSTRAINT_UNIQUE
        #expect(error.message.contains("credential.name"))
        #expect(!error.description.contains(secret))
    }

    @Test func syntaxErrorNamesTheSQL() throws {
        let error = try #require(throws: SQLiteError.self) { try connection.query("SELEC 1") }
        #expect(error.extendedCode == 1)
        #expect(error.message.contains("syntax error"))
        #expect(error.sql == "SELEC 1")
        let scriptError = try #require(throws: SQLiteError.self) {
            try connection.execute("CREATE TABLE ok (a); CREATE TABLE ok (a)")
        }
        #expect(scriptError.message.contains("already exists"))
    }

    @Test func tooManyArgumentsIsARangeError() throws {
        let error = try #require(throws: SQLiteError.self) { try connection.query("SELECT ?", [1, 2]) }
        #expect(error.primaryCode == 25)  // SQLITE_RANGE
        #expect(error.sql == "SELECT ?")
    }

    @Test func strictTypeMismatchIsReported() throws {
        let error = try #require(throws: SQLiteError.self) {
            try connection.run("INSERT INTO credential (id, name, value) VALUES (?, 'n', 'v')", ["not a number"])
        }
        #expect(error.primaryCode == 20)  // SQLITE_MISMATCH
        #expect(error.message.contains("mismatch"))
        #expect(!error.description.contains("not a number"))
    }
}
