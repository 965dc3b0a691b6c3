import Glibc
import CSQLite

/// How a connection is opened.
public struct ConnectionOptions: Sendable {
    /// `PRAGMA synchronous` level. `FULL` (the default) makes a committed transaction survive power loss
    /// in WAL mode; `NORMAL` may lose the last transactions on power loss (never on a process crash).
    public enum Synchronous: String, Sendable { case off = "OFF", normal = "NORMAL", full = "FULL" }

    public var readOnly: Bool
    public var synchronous: Synchronous
    /// How long a connection waits for another connection's lock before failing with SQLITE_BUSY.
    public var busyTimeoutMilliseconds: Int32
    /// Create the file if it does not exist (read-write connections only).
    public var create: Bool

    public init(
        readOnly: Bool = false, synchronous: Synchronous = .full, busyTimeoutMilliseconds: Int32 = 5_000,
        create: Bool = true
    ) {
        self.readOnly = readOnly
        self.synchronous = synchronous
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.create = create
    }
}

/// One SQLite connection with its pragmas applied and a cache of prepared statements.
///
/// A connection is used from one queue at a time (the `Database` actor's), never concurrently.
public final class Connection {
    let handle: OpaquePointer
    public let path: String
    private var cache: [String: Statement] = [:]
    /// Answers `ReaderPool.remembering` kept on this connection.
    var remembered = RememberedReads()
    /// The same statements as `cache`, keyed by the address of a `StaticString` text.
    private var staticCache: [UnsafeRawPointer: Statement] = [:]
    /// The same statements as `cache`, keyed by where a `String` text's bytes were (see `statement(_:)`).
    private var byAddress: [AddressKey: Statement] = [:]
    /// Transactions (`transaction(_:)`) that committed having changed at least one row: what the
    /// engine's write cost is counted in (a transaction that changed nothing writes no WAL frame).
    public private(set) var writeTransactions = 0
    /// Called after each successful `COMMIT` of `transaction` with the instant the COMMIT began, so an
    /// owner can time commits (the WAL append and its fsync) without wrapping every transaction.
    public var commitObserver: ((ContinuousClock.Instant) -> Void)?
    /// The `synchronous` level this connection was opened with.
    public let synchronous: ConnectionOptions.Synchronous
    /// The level in effect now: `synchronous`, or NORMAL around a `.deferred` commit (see
    /// `transaction(sync:_:)`; a level that could not be put back is put back before the next one).
    private var levelInEffect: ConnectionOptions.Synchronous
    /// Set while `.deferred` commits wrote to the log that no sync has covered yet: how long their
    /// COMMITs took together.
    public private(set) var unsyncedCommit: Duration?

    /// The process-wide settings of `bookend_sqlite_configure`, applied before the first connection
    /// opens. Ignored if the process initialized SQLite already: those settings only make it faster.
    private static let configured: Int32 = bookend_sqlite_configure()

    public init(path: String, options: ConnectionOptions = ConnectionOptions()) throws(SQLiteError) {
        _ = Connection.configured
        self.path = path
        synchronous = options.synchronous
        levelInEffect = synchronous
        var flags = SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX
        if options.readOnly {
            flags |= SQLITE_OPEN_READONLY
        } else {
            flags |= SQLITE_OPEN_READWRITE
            if options.create { flags |= SQLITE_OPEN_CREATE }
        }
        var db: OpaquePointer?
        let code = sqlite3_open_v2(path, &db, flags, nil)
        guard code == SQLITE_OK, let db else {
            // "Whether or not an error occurs when it is opened, resources associated with the database
            // connection handle should be released by passing it to sqlite3_close() when it is no longer
            // required."
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            let extended = db.map { sqlite3_extended_errcode($0) } ?? code
            sqlite3_close_v2(db)
            throw SQLiteError(extendedCode: extended, message: Self.explain(message, code: extended), path: path)
        }
        self.handle = db
        do {
            try setUp(options)
        } catch {
            sqlite3_close_v2(db)
            throw SQLiteError(
                extendedCode: error.extendedCode, message: Self.explain(error.message, code: error.extendedCode),
                sql: error.sql, path: path)
        }
    }

    deinit {
        staticCache.removeAll()
        byAddress.removeAll()
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    private func setUp(_ options: ConnectionOptions) throws(SQLiteError) {
        sqlite3_busy_timeout(handle, options.busyTimeoutMilliseconds)
        if !options.readOnly { bookend_sqlite_profile_if_asked(handle) }
        // Reading the schema here makes a non-database or corrupt file fail at open, naming the file,
        // instead of at some later query.
        _ = try query("SELECT count(*) FROM sqlite_schema")
        if options.readOnly {
            try execute("PRAGMA query_only = ON")
        } else {
            let mode = try query("PRAGMA journal_mode = WAL").first?[0].string?.lowercased()
            guard mode == "wal" else {
                throw SQLiteError(extendedCode: SQLITE_ERROR, message: "could not switch to WAL journal mode (got \(mode ?? "nothing"))")
            }
            try execute("PRAGMA synchronous = \(options.synchronous.rawValue)")
        }
        try execute("PRAGMA foreign_keys = ON")
    }

    private static func explain(_ message: String, code: Int32) -> String {
        switch code & 0xFF {
        case SQLITE_NOTADB: "\(message): the file exists but is not a SQLite database"
        case SQLITE_CORRUPT: "\(message): the database file is corrupt"
        case SQLITE_CANTOPEN: "\(message): check that the directory exists and is writable"
        case SQLITE_READONLY: "\(message): the file or its directory is read-only"
        case SQLITE_FULL: "\(message): the disk is full"
        default: message
        }
    }

    func error(code: Int32, sql: String?) -> SQLiteError {
        let extended = sqlite3_extended_errcode(handle)
        var message = String(cString: sqlite3_errmsg(handle))
        // An I/O error says only "disk I/O error"; the system's errno says which (ENOSPC: the disk is full).
        if extended & 0xFF == SQLITE_IOERR, sqlite3_system_errno(handle) != 0 {
            message += " (\(String(cString: strerror(sqlite3_system_errno(handle)))))"
        }
        return SQLiteError(extendedCode: extended != 0 ? extended : code, message: message, sql: sql)
    }

    /// Runs one or more statements without parameters (schema scripts, pragmas).
    public func execute(_ sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &message)
        if code != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            throw SQLiteError(extendedCode: sqlite3_extended_errcode(handle), message: text, sql: sql)
        }
    }

    /// The cached prepared statement for `sql`.
    ///
    /// Found first by where the text's bytes live: nearly every statement is a literal in the program,
    /// whose bytes never move, and hashing a few hundred bytes of SQL on every call (SipHash, in
    /// `[String: Statement]`) was a twentieth of a scheduler pass. The text is still compared, so a
    /// freed string whose address another one reuses finds its own statement; texts short enough
    /// to be stored inline have no lasting address and take the hashed path.
    public func statement(_ sql: String) throws(SQLiteError) -> Statement {
        let address = sql.utf8.count > 15 ? sql.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.baseAddress.map { AddressKey(address: UnsafeRawPointer($0), count: bytes.count) }
        } ?? nil : nil
        if let address, let cached = byAddress[address], cached.sql == sql { return cached }
        let statement = try hashedStatement(sql)
        if let address {
            // Texts built at run time get new addresses: the table is bounded, and refilled as used.
            if byAddress.count >= 1_024 { byAddress.removeAll(keepingCapacity: true) }
            byAddress[address] = statement
        }
        return statement
    }

    /// The statement for `sql` from the cache keyed by its text, prepared and kept on first use.
    private func hashedStatement(_ sql: String) throws(SQLiteError) -> Statement {
        if let cached = cache[sql] { return cached }
        let statement = try Statement(connection: self, sql: sql)
        cache[sql] = statement
        return statement
    }

    /// Where a statement text's UTF-8 bytes are, and how many.
    private struct AddressKey: Hashable {
        let address: UnsafeRawPointer
        let count: Int
    }

    /// The cached prepared statement for a statement text compiled into the program, found by the
    /// text's address: the `[String: Statement]` lookup hashes the whole text on every call, and the
    /// inserts that run once per stored task are a few hundred bytes long.
    public func statement(_ sql: StaticString) throws(SQLiteError) -> Statement {
        let key = UnsafeRawPointer(sql.utf8Start)
        if let cached = staticCache[key] { return cached }
        let statement = try hashedStatement(sql.withUTF8Buffer { String(decoding: $0, as: UTF8.self) })
        staticCache[key] = statement
        return statement
    }

    /// Runs a statement compiled into the program with values bound by their own types (see
    /// `Statement.bind(each:)`); returns the number of rows it changed.
    @inlinable @discardableResult
    public func run<each Value: SQLiteBindable>(_ sql: StaticString, binding values: repeat each Value) throws(SQLiteError) -> Int {
        let statement = try statement(sql)
        try statement.bind(each: repeat each values)
        try statement.runToEnd()
        return changes
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs a query with bound parameters and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws(SQLiteError) -> [Row] {
        let statement = try statement(sql)
        try statement.bind(arguments)
        return try statement.rows()
    }

    /// Runs a statement with bound parameters and returns the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws(SQLiteError) -> Int {
        try query(sql, arguments)
        return Int(sqlite3_changes(handle))
    }

    /// The first column of the first row, or `.null`.
    public func scalar(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws(SQLiteError) -> SQLiteValue {
        try query(sql, arguments).first?.values.first ?? .null
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// When a write transaction becomes durable on a connection opened at `synchronous = FULL`.
    public enum CommitSync: Sendable {
        /// Inside its COMMIT, as SQLite does at FULL: other connections see it only once it is on disk.
        case inCommit
        /// Later: the COMMIT runs at NORMAL (the log is written, not synced, so a crash of the process
        /// loses nothing; a power cut could), and the caller calls `syncCommitted()` before it tells
        /// anyone the transaction is stored. What the caller does in between (start the processes the
        /// transaction decided) then overlaps the sync instead of waiting for it. Other connections
        /// can read the transaction before it is on disk.
        case deferred
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back if anything throws and rethrowing
    /// the first error. With `sync: .deferred` (and a connection at FULL), the caller owes a
    /// `syncCommitted()`.
    public func transaction<T>(sync: CommitSync = .inCommit, _ body: (Connection) throws -> T) throws -> T {
        let changesBefore = sqlite3_total_changes64(handle)
        // SQLite refuses a change of level inside a transaction: it is set before BEGIN.
        let level: ConnectionOptions.Synchronous = sync == .deferred && synchronous == .full ? .normal : synchronous
        try setLevel(level)
        defer { try? setLevel(synchronous) }
        try execute("BEGIN IMMEDIATE")
        let value: T
        do {
            value = try body(self)
        } catch {
            if isInTransaction { try? execute("ROLLBACK") }
            throw error
        }
        let started = ContinuousClock.now
        do {
            try execute("COMMIT")
        } catch {
            if isInTransaction { try? execute("ROLLBACK") }
            throw error
        }
        guard sqlite3_total_changes64(handle) != changesBefore else {
            commitObserver?(started)
            return value
        }
        writeTransactions += 1
        if level == synchronous {
            // This COMMIT synced the log, and with it every frame an earlier deferred commit wrote.
            unsyncedCommit = nil
            commitObserver?(started)
        } else {
            unsyncedCommit = (unsyncedCommit ?? .zero) + (ContinuousClock.now - started)
        }
        return value
    }

    /// Runs `body` in one read transaction (`BEGIN … COMMIT`, nothing written), or inside the
    /// transaction already open. Its statements see one snapshot and take the log's read lock once:
    /// each statement run alone begins and ends a read transaction of its own, two `fcntl` locks on
    /// the shared-memory file every time, which a loop of reads on the engine's thread paid per row.
    public func readTransaction<T>(_ body: (Connection) throws -> T) throws -> T {
        guard !isInTransaction else { return try body(self) }
        try run("BEGIN" as StaticString)
        do {
            let value = try body(self)
            try run("COMMIT" as StaticString)
            return value
        } catch {
            if isInTransaction { _ = try? run("ROLLBACK" as StaticString) }
            throw error
        }
    }

    /// Makes the `.deferred` commits since the last sync durable (one `fdatasync` of the log, what their
    /// COMMITs skipped); nothing when there are none. The commit observer sees them once, now, timed
    /// as their COMMITs plus this sync (usually one commit: every caller syncs right after its own).
    public func syncCommitted() throws(SQLiteError) {
        guard let owed = unsyncedCommit else { return }
        let started = ContinuousClock.now
        let code = bookend_sqlite_sync_journal(handle)
        guard code == SQLITE_OK else {
            throw SQLiteError(extendedCode: code, message: "could not sync the write-ahead log of \(path): \(String(cString: sqlite3_errstr(code)))")
        }
        unsyncedCommit = nil
        commitObserver?(started - owed)
    }

    private func setLevel(_ level: ConnectionOptions.Synchronous) throws(SQLiteError) {
        guard level != levelInEffect else { return }
        switch level {
        case .off: try run("PRAGMA synchronous = OFF" as StaticString)
        case .normal: try run("PRAGMA synchronous = NORMAL" as StaticString)
        case .full: try run("PRAGMA synchronous = FULL" as StaticString)
        }
        levelInEffect = level
    }
}

// A connection is confined to one queue at a time; see `Database`.
@available(*, unavailable)
extension Connection: Sendable {}
