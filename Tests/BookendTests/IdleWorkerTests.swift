@testable import Bookend
import Foundation
import Synchronization
import Testing

/// The worker that makes spare task folders: its jobs run one at a time in the order queued, on a
/// thread at `SCHED_IDLE`, and the thread ends when idle and comes back for the next job.
@Suite struct IdleWorkerTests {
    @Test func jobsRunInOrderOnOneIdlePolicyThreadThatEndsWhenIdle() throws {
        let worker = IdleWorker(name: "idle-worker-test", idleLifetime: .milliseconds(100))
        let seen = Mutex<[Int]>([])
        let policies = Mutex<Set<Int32>>([])
        let threads = Mutex<[String]>([])
        for i in 0..<50 {
            worker.async {
                seen.withLock { $0.append(i) }
                policies.withLock { _ = $0.insert(sched_getscheduler(0)) }
                // "<pid>/task/<tid>": the thread running this job.
                let thread = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? "?"
                threads.withLock { $0.append(thread) }
            }
        }
        worker.sync()
        #expect(seen.withLock { $0 } == Array(0..<50))
        #expect(policies.withLock { $0 } == [5])  // SCHED_IDLE, for every job
        let first = try #require(threads.withLock { Set($0) }.first)
        #expect(threads.withLock { Set($0) }.count == 1)
        // Idle past its lifetime, the thread is gone; the next job starts another one.
        let ended = (0..<200).contains { _ in
            usleep(10_000)
            return access("/proc/" + first, F_OK) != 0
        }
        #expect(ended, "the worker's thread is still there after two seconds without work")
        let ran = Mutex(false)
        worker.async { ran.withLock { $0 = true } }
        worker.sync()
        #expect(ran.withLock { $0 })
    }
}
