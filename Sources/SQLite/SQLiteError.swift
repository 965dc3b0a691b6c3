import CSQLite

/// A failure reported by SQLite: the extended result code, SQLite's own message and the SQL text.
///
/// Bound values are never included, because they may hold secrets (environment settings, keys).
public struct SQLiteError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The extended result code (e.g. `SQLITE_CONSTRAINT_CHECK` = 275).
    public let extendedCode: Int32
    /// SQLite's message for the failure.
    public let message: String
    /// The SQL being run, or nil for errors outside a statement (open, pragmas).
    public let sql: String?
    /// The database file, when the error concerns opening it.
    public let path: String?

    public init(extendedCode: Int32, message: String, sql: String? = nil, path: String? = nil) {
        self.extendedCode = extendedCode
        self.message = message
        self.sql = sql
        self.path = path
    }

    /// The primary result code: the low byte of the extended code.
    public var primaryCode: Int32 { extendedCode & 0xFF }

    public var isConstraintViolation: Bool { primaryCode == SQLITE_CONSTRAINT }
    // Extended codes are macros built with `|` and `<<`, which Swift cannot import; these are their values.
    public var isUniqueViolation: Bool {
        extendedCode == SQLITE_CONSTRAINT | (8 << 8) || extendedCode == SQLITE_CONSTRAINT | (6 << 8)
    }
    public var isCheckViolation: Bool { extendedCode == SQLITE_CONSTRAINT | (1 << 8) }
    public var isForeignKeyViolation: Bool { extendedCode == SQLITE_CONSTRAINT | (3 << 8) }
    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }
    public var isReadOnly: Bool { primaryCode == SQLITE_READONLY }
    public var isCorrupt: Bool { primaryCode == SQLITE_CORRUPT || primaryCode == SQLITE_NOTADB }
    public var isFull: Bool { primaryCode == SQLITE_FULL }
    public var isIOError: Bool { primaryCode == SQLITE_IOERR }

    public var description: String {
        var text = "SQLite error \(extendedCode)"
        if let codeName = String(validatingCString: sqlite3_errstr(extendedCode)) { text += " (\(codeName))" }
        text += ": \(message)"
        if let path { text += " [file: \(path)]" }
        if let sql { text += " [sql: \(sql.count > 200 ? String(sql.prefix(200)) + "…" : sql)]" }
        return text
    }
}
