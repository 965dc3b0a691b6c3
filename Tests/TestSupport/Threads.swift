import Foundation

/// Runs blocking work (waiting for a process, reading a pipe to its end, a synchronous socket) on a
/// thread of its own and awaits its result. Not on `DispatchQueue.global()`: on Linux that queue's
/// few threads (twice the cores) also carry Swift's cooperative pool, so a handful of tests waiting
/// there starve the engines and servers that would answer them, until a 60 s timeout.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Runs `body`, then `cleanup` on every path, and returns once both are done: the `defer` Swift does
/// not allow to `await`. A `defer { Task { … } }` would leave the cleanup (an engine's shutdown) to run
/// at some later time, into the next test.
public func withCleanup<T>(_ cleanup: () async -> Void, _ body: () async throws -> T) async throws -> T {
    let value: T
    do {
        value = try await body()
    } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    return value
}
