import Foundation

/// Named points where a test can make the process die abruptly, as a power cut or `kill -9` would.
///
/// Set `BOOKEND_CRASH_AT=<name>` (and optionally `BOOKEND_CRASH_AFTER=<n>` to die on the n-th hit).
/// Unset, each hit costs one comparison. `docs/recovery.md` lists every point and what holds there.
public enum CrashPoint {
    private static let target: String? = ProcessInfo.processInfo.environment["BOOKEND_CRASH_AT"]
    private static let after: Int = Int(ProcessInfo.processInfo.environment["BOOKEND_CRASH_AFTER"] ?? "") ?? 1
    private static let counter = HitCounter()

    /// True when a crash point is configured (lets callers skip building names).
    public static var isArmed: Bool { target != nil }

    /// Dies with SIGKILL when `name` is the configured crash point (on its configured hit).
    public static func hit(_ name: String) {
        guard let target, target == name || (target.hasSuffix("*") && name.hasPrefix(target.dropLast())) else { return }
        if counter.increment() >= after {
            kill(getpid(), SIGKILL)
        }
    }
}

/// A counter shared across threads; crash points can be hit from any queue.
private final class HitCounter: @unchecked Sendable {
    // Guarded by `lock`; @unchecked because NSLock-protected state is not visible to the compiler.
    private let lock = NSLock()
    private var count = 0
    func increment() -> Int {
        lock.lock()
        defer { lock.unlock() }
        count += 1
        return count
    }
}
