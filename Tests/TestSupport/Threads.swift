import Foundation
import Synchronization
import Testing

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

    /// The threads of the executors that run now.
    private static let threads = Mutex<Set<pthread_t>>([])

    /// Whether the caller runs on the thread of an `OwnThreadExecutor`.
    public static func isCurrent() -> Bool {
        threads.withLock { $0.contains(pthread_self()) }
    }

    private func loop() {
        _ = Self.threads.withLock { $0.insert(pthread_self()) }
        defer { _ = Self.threads.withLock { $0.remove(pthread_self()) } }
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

/// Runs each test of the suite (or the one test) it is given to on a thread of its own
/// (`OwnThreadExecutor`), not on Swift's cooperative pool. For tests that block while they wait
/// (`waitpid`, `usleep` polls, synchronous sockets): on two cores the pool has about two threads,
/// and two such tests at once left every other test's engine, server and wait without a thread,
/// for as long as a minute (CI: "no answer from 127.0.0.1 within 60 s" from an in-process server).
public struct OwnThreadTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite's own scope holds no test body; each test case gets a thread.
        guard testCase != nil else { return try await function() }
        let executor = OwnThreadExecutor()
        defer { executor.stop() }
        try await withTaskExecutorPreference(executor) { try await function() }
    }
}

extension Trait where Self == OwnThreadTrait {
    /// See `OwnThreadTrait`.
    public static var ownThread: Self { OwnThreadTrait() }
}
