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

/// A task executor with one thread of its own. Code that measures how long a wait takes runs under it
/// (`withTaskExecutorPreference`), so the figure is the wait's own: on two cores the cooperative
/// pool has two threads, and tests that block them (a `waitpid`, a synchronous test body) would
/// otherwise add their time to every hop of the measured code.
public final class OwnThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    public init() {
        Thread { [self] in loop() }.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread once the jobs already queued have run.
    public func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll()
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
