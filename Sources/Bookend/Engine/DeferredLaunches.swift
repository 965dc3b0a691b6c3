import Foundation
import Synchronization

/// Executions whose launch failed for want of the machine's resources (descriptors, memory, disk):
/// kept `starting` and tried again at `due` (see `Engine.deferLaunches`). Shared so that `whyWaiting`,
/// which reads from any thread, can say why a task that looks running has not started.
final class DeferredLaunches: Sendable {
    struct Entry: Sendable {
        var attempts: Int
        var due: ContinuousClock.Instant
        /// What the last attempt lacked, in the system's words ("Too many open files").
        var reason: String
        /// When the first attempt failed.
        var since: Date
    }

    private let entries = Mutex<[Int64: Entry]>([:])

    var isEmpty: Bool { entries.withLock { $0.isEmpty } }

    func entry(_ pk: Int64) -> Entry? { entries.withLock { $0[pk] } }

    /// Records one more failed attempt of `pk` and answers its count and the wait before the next:
    /// 1 s after the first failure, twice as long after each next one, at most 30 s.
    func record(_ pk: Int64, reason: String, now: ContinuousClock.Instant = .now) -> (attempts: Int, delay: Duration) {
        entries.withLock { entries in
            var entry = entries[pk] ?? Entry(attempts: 0, due: now, reason: reason, since: Date())
            entry.attempts += 1
            let delay = Duration.seconds(min(30, 1 << min(entry.attempts - 1, 5)))
            entry.due = now + delay
            entry.reason = reason
            entries[pk] = entry
            return (entry.attempts, delay)
        }
    }

    /// The executions whose next attempt is due, in pk order.
    func due(at now: ContinuousClock.Instant) -> [Int64] {
        entries.withLock { $0.filter { $0.value.due <= now }.keys.sorted() }
    }

    func remove(_ pk: Int64) { entries.withLock { _ = $0.removeValue(forKey: pk) } }

    /// Sets `pks`' next attempt to `instant` (the engine parks them so while it launches them).
    func park(_ pks: [Int64], until instant: ContinuousClock.Instant) {
        entries.withLock { entries in for pk in pks { entries[pk]?.due = instant } }
    }

    /// Removes those of `pks` still parked at `instant`: launched, or failed for a reason of their own.
    func removeParked(_ pks: [Int64], at instant: ContinuousClock.Instant) {
        entries.withLock { entries in for pk in pks where entries[pk]?.due == instant { entries[pk] = nil } }
    }
}
