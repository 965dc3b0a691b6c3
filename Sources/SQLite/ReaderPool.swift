import Foundation

/// Read-only connections to one database file, lent one at a time so readers run beside the writer.
///
/// In WAL mode a reader sees every transaction committed before its statement began and never waits
/// for the writer, so reads that need no write transaction (an API GET, say) need not queue behind
/// the thread that owns the writer connection. Connections are opened on first need, up to `limit`;
/// a caller that finds all of them lent opens a temporary one rather than wait.
public final class ReaderPool: @unchecked Sendable {
    // `idle` is guarded by `lock`; a lent connection is used by one thread at a time.
    private let lock = NSLock()
    private var idle: [Connection] = []
    private let path: String
    private let limit: Int

    public init(path: String, limit: Int = 4) {
        self.path = path
        self.limit = limit
    }

    /// Runs `body` with a read-only connection, in one read transaction, so every statement in it
    /// sees the same snapshot.
    public func read<T>(_ body: (Connection) throws -> T) throws -> T {
        lock.lock()
        let lent = idle.popLast()
        lock.unlock()
        let connection = try lent ?? Connection(path: path, options: ConnectionOptions(readOnly: true, create: false))
        defer {
            lock.lock()
            if idle.count < limit { idle.append(connection) }
            lock.unlock()
        }
        try connection.execute("BEGIN")
        do {
            let value = try body(connection)
            try connection.execute("COMMIT")
            return value
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }
}
