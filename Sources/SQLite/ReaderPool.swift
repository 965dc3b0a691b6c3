import Dispatch
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

    /// Threads for reads awaited from async code: a read blocks (disk, a busy file) and must not hold
    /// a thread of Swift's cooperative pool, which the engine's callers and request handlers share.
    private static let threads = DispatchQueue(label: "bookend.readers", attributes: .concurrent)

    /// Runs `body` on a dispatch thread of the pool's own (not the caller's, not the cooperative
    /// pool) and returns its result: for blocking lookups made from async code.
    public func perform<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            ReaderPool.threads.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// `read(_:)` on a dispatch thread of the pool's own, for async callers.
    public func readOffCaller<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
        try await perform { try self.read(body) }
    }

    /// Runs `body` with a read-only connection, in one read transaction, so every statement in it
    /// sees the same snapshot.
    public func read<T>(_ body: (Connection) throws -> T) throws -> T {
        try withConnection { connection in
            // Prepared BEGIN and COMMIT, kept by the connection: `execute` parsed both texts on every read.
            try connection.readTransaction(body)
        }
    }

    /// `finish(read(…))`, or the value it gave last time for `key` on the connection lent now when
    /// nothing was committed since (see `RememberedReads`). `read` runs in one read transaction;
    /// `finish` after it, on the same thread (for work that needs no snapshot: files), and says how
    /// many bytes its value holds, or nil to not keep it. The key must name everything the value
    /// depends on besides the database; nothing that throws is kept.
    public func remembering<Read, T: Sendable>(
        _ key: String, read: (Connection) throws -> Read, finish: (Read) throws -> (value: T, bytes: Int?)
    ) throws -> T {
        try withConnection { connection in
            // Read before the snapshot starts: a commit in between makes the kept answer newer than
            // its version says, never older, so the next check only misses.
            let version = try connection.dataVersion()
            if let kept = connection.remembered.value(key, at: version, as: T.self) { return kept }
            let (value, bytes) = try finish(try connection.readTransaction(read))
            if let bytes { connection.remembered.keep(key, value, bytes: bytes, at: version) }
            return value
        }
    }

    private func withConnection<T>(_ body: (Connection) throws -> T) throws -> T {
        lock.lock()
        let lent = idle.popLast()
        lock.unlock()
        let connection = try lent ?? Connection(path: path, options: ConnectionOptions(readOnly: true, create: false))
        defer {
            lock.lock()
            if idle.count < limit { idle.append(connection) }
            lock.unlock()
        }
        return try body(connection)
    }
}
