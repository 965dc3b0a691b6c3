import Dispatch

/// A serial executor backed by a dedicated `DispatchQueue`, so an actor using it runs blocking
/// work (sqlite3 calls, fsync, busy waits) on its own thread instead of Swift's cooperative pool.
public final class QueueExecutor: SerialExecutor, @unchecked Sendable {
    // @unchecked: the only stored property is an immutable DispatchQueue, which is thread-safe.
    public let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { unowned.runSynchronously(on: executor) }
    }

    /// Code on the queue that is not a Swift job (a dispatch source's handler, a block from
    /// `queue.async`) is isolated to the actor too: the queue is serial and runs every job of the
    /// actor, so nothing else of the actor runs meanwhile. This lets such code `assumeIsolated`.
    public func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
