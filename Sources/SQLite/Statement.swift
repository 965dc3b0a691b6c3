import CSQLite

/// A prepared statement. Lives on its connection's queue and is finalized when released.
public final class Statement {
    let handle: OpaquePointer
    public let sql: String
    private unowned let connection: Connection

    init(connection: Connection, sql: String) throws(SQLiteError) {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(connection.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw connection.error(code: code, sql: sql)
        }
        self.handle = statement
        self.sql = sql
        self.connection = connection
    }

    deinit { sqlite3_finalize(handle) }

    /// How many statements `sql` holds (comments and whitespace between them are none), each
    /// prepared and finalized on `connection` without running: for a command that runs exactly one
    /// statement a person typed, which would otherwise run the first and ignore the rest.
    public static func count(in sql: String, on connection: Connection) throws(SQLiteError) -> Int {
        var count = 0
        var failure: SQLiteError?
        sql.withCString { start in
            var rest: UnsafePointer<CChar>? = start
            while let current = rest, current.pointee != 0 {
                var statement: OpaquePointer?
                var tail: UnsafePointer<CChar>?
                let code = sqlite3_prepare_v2(connection.handle, current, -1, &statement, &tail)
                guard code == SQLITE_OK else { failure = connection.error(code: code, sql: sql); return }
                if let statement { count += 1; sqlite3_finalize(statement) }
                guard let tail, tail != current else { return }
                rest = tail
            }
        }
        if let failure { throw failure }
        return count
    }

    /// Binds values to `?` parameters in order (1-based in SQLite).
    public func bind(_ values: [any SQLiteBindable]) throws(SQLiteError) {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        for (offset, value) in values.enumerated() {
            try bind(value.sqliteValue, at: Int32(offset + 1))
        }
    }

    /// Binds values of their own types to `?` parameters in order. The caller's copy of this function
    /// is specialized for its values' types, so no value is boxed in an existential and no array is
    /// built: for the 16 columns of a task row, binding an `[any SQLiteBindable]` was a fifth of an
    /// ingest's own CPU, and this form about two thirds of that.
    @inlinable
    public func bind<each Value: SQLiteBindable>(each values: repeat each Value) throws(SQLiteError) {
        resetForBinding()
        var index: Int32 = 1
        // A pack expansion of a generic call, not a `for … in repeat each` loop: the loop handled
        // each element through value witnesses, which cost as much as the array form did.
        repeat try bindNext(each values, at: &index)
    }

    @inlinable
    func bindNext<Value: SQLiteBindable>(_ value: Value, at index: inout Int32) throws(SQLiteError) {
        try bind(value.sqliteValue, at: index)
        index += 1
    }

    /// Binds values of their own types from the 1-based parameter `index` on, advancing it past
    /// them, without resetting: a multi-row INSERT binds its rows one call at a time, after one
    /// `resetForBinding()`.
    @inlinable
    public func bind<each Value: SQLiteBindable>(row values: repeat each Value, from index: inout Int32) throws(SQLiteError) {
        repeat try bindNext(each values, at: &index)
    }

    /// Clears the statement's last run and its bindings, before binding anew.
    public func resetForBinding() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Steps the statement to its end, discarding any rows (an INSERT, UPDATE or DELETE).
    public func runToEnd() throws(SQLiteError) {
        defer { sqlite3_reset(handle) }
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else { throw connection.error(code: code, sql: sql) }
        }
    }

    /// The first column of the first row as an integer (nil without a row), the statement reset
    /// after: for pragmas and counts that answer one number, without building a `Row`.
    public func firstInteger() throws(SQLiteError) -> Int64? {
        defer { sqlite3_reset(handle) }
        let code = sqlite3_step(handle)
        if code == SQLITE_DONE { return nil }
        guard code == SQLITE_ROW else { throw connection.error(code: code, sql: sql) }
        return sqlite3_column_int64(handle, 0)
    }

    /// Binds one value to the 1-based parameter `index`.
    @usableFromInline
    func bind(_ value: SQLiteValue, at index: Int32) throws(SQLiteError) {
        let code: Int32
        switch value {
        case .integer(let number): code = sqlite3_bind_int64(handle, index, number)
        case .real(let number): code = sqlite3_bind_double(handle, index, number)
        case .text(let text):
            // Pass the byte count: with -1 SQLite would stop at the first embedded NUL.
            // A nil pointer (which an empty string may give) would bind NULL instead of ''.
            var text = text
            code = text.withUTF8 { bytes in
                guard let base = bytes.baseAddress, bytes.count > 0 else {
                    return sqlite3_bind_text(handle, index, "", 0, bookend_sqlite_transient())
                }
                return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                    sqlite3_bind_text(handle, index, $0, Int32(bytes.count), bookend_sqlite_transient())
                }
            }
        case .blob(let bytes):
            // A nil pointer (which an empty array may give) would bind NULL instead of an empty blob.
            code =
                bytes.isEmpty
                ? sqlite3_bind_zeroblob(handle, index, 0)
                : bytes.withUnsafeBytes { buffer in
                    sqlite3_bind_blob(handle, index, buffer.baseAddress, Int32(buffer.count), bookend_sqlite_transient())
                }
        case .null: code = sqlite3_bind_null(handle, index)
        }
        guard code == SQLITE_OK else { throw connection.error(code: code, sql: sql) }
    }

    /// The result columns as of the last run, and the schema generation they were read at.
    private var layout: ColumnLayout?
    private var layoutReprepares: Int32 = -1

    /// The names of the statement's result columns, known before it runs (so also when it returns
    /// no row); empty for a statement that returns none.
    public var columnNames: [String] {
        (0..<sqlite3_column_count(handle)).map { String(cString: sqlite3_column_name(handle, $0)) }
    }

    /// Runs the statement to completion and returns every row it produced.
    public func rows() throws(SQLiteError) -> [Row] {
        defer { sqlite3_reset(handle) }
        var result: [Row] = []
        var layout: ColumnLayout?
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else { throw connection.error(code: code, sql: sql) }
            let columns = layout ?? currentLayout()
            layout = columns
            let count = columns.names.count
            var values: [SQLiteValue] = []
            values.reserveCapacity(count)
            for index in 0..<Int32(count) { values.append(column(index)) }
            result.append(Row(layout: columns, values: values))
        }
        return result
    }

    /// The statement's result columns, read once and kept for later runs. A schema change makes
    /// SQLite prepare the statement again on its first step (a `SELECT *` may then have other
    /// columns), so they are read again whenever its count of such re-preparations moved; reading
    /// them after the step sees the statement as it now is.
    private func currentLayout() -> ColumnLayout {
        let reprepares = sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_REPREPARE, 0)
        if let layout, reprepares == layoutReprepares { return layout }
        let fresh = ColumnLayout(columnNames)
        layout = fresh
        layoutReprepares = reprepares
        return fresh
    }

    private func column(_ index: Int32) -> SQLiteValue {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, index))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(handle, index))
        case SQLITE_TEXT:
            // Read by byte count, not up to the first NUL, so text with embedded NULs comes back whole.
            guard let text = sqlite3_column_text(handle, index) else { return .text("") }
            let count = Int(sqlite3_column_bytes(handle, index))
            return .text(String(decoding: UnsafeRawBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(handle, index))
            guard count > 0, let pointer = sqlite3_column_blob(handle, index) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: pointer, count: count)))
        default: return .null
        }
    }
}

// Statements must stay on the queue of the connection that prepared them.
@available(*, unavailable)
extension Statement: Sendable {}
