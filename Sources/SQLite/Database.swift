import Dispatch

/// Owns one SQLite connection and runs every use of it on a private serial queue, so blocking
/// sqlite3 calls (including busy-timeout waits and fsync) never occupy Swift's cooperative pool.
public actor Database {
    private let executor: QueueExecutor
    // Only touched from `queue` (this actor's executor). Non-Sendable by design.
    private let connection: Connection
    public nonisolated let path: String

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Opens (and with `options.create`, creates) the database at `path`.
    public init(path: String, options: ConnectionOptions = ConnectionOptions(), label: String = "bookend.sqlite")
        throws(SQLiteError)
    {
        self.executor = QueueExecutor(label: label)
        self.path = path
        self.connection = try Connection(path: path, options: options)
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction that commits on return and rolls back on any throw.
    public func write<T: Sendable>(_ body: @Sendable (Connection) throws -> T) throws -> T {
        try connection.transaction(body)
    }

    /// Runs `body` with the connection outside any explicit transaction (reads, pragmas, migrations).
    public func withConnection<T: Sendable>(_ body: @Sendable (Connection) throws -> T) rethrows -> T {
        try body(connection)
    }

    /// Runs `body` in a read transaction, so every query in it sees one consistent snapshot.
    public func read<T: Sendable>(_ body: @Sendable (Connection) throws -> T) throws -> T {
        try connection.execute("BEGIN DEFERRED")
        defer { try? connection.execute("COMMIT") }
        return try body(connection)
    }
}
