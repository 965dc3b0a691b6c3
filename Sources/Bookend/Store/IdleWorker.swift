import Foundation
import Synchronization

/// A thread of its own, at the `SCHED_IDLE` policy, that runs queued work one job at a time: the
/// kernel gives it a core only when nothing else wants that core.
///
/// Why: what it runs (making spare task folders, `TaskFolderPool`) is work ahead of need, and on a
/// machine with few cores it ran at the same priority as the processes it was meant to speed up: a
/// refill started right after a launch, while the command's program loaded and the shim wrote its
/// pid file, and took a core from them (five new inodes, several milliseconds of CPU shortly after
/// deletions on ext4). At `SCHED_IDLE` it waits for an idle core instead; when it cannot keep up,
/// launches make their folders themselves, as without spares.
///
/// A dedicated thread, not a dispatch queue's: a thread that left `SCHED_IDLE` would need a privilege
/// an unprivileged engine does not have, so the policy must stay with work that is always ahead of
/// need. Where the policy cannot be set the thread runs at the normal one.
final class IdleWorker: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var stopping = false
    }
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    /// `SCHED_IDLE` from <sched.h>, which Glibc's module leaves out (it is defined under _GNU_SOURCE).
    private static let schedIdle: Int32 = 5

    init(name: String) {
        // The thread holds the worker until `stop` ends it.
        let thread = Thread { [self] in
            var parameters = sched_param(sched_priority: 0)
            _ = sched_setscheduler(0, IdleWorker.schedIdle, &parameters)  // this thread only (Linux: pid 0)
            while true {
                wake.wait()
                guard let job = state.withLock({ s -> (@Sendable () -> Void)? in
                    s.jobs.isEmpty ? nil : s.jobs.removeFirst()
                }) else {
                    if state.withLock({ $0.stopping }) { return }
                    continue
                }
                job()
            }
        }
        thread.name = name
        thread.start()
    }

    /// Queues `job` behind the jobs already queued.
    func async(_ job: @escaping @Sendable () -> Void) {
        state.withLock { $0.jobs.append(job) }
        wake.signal()
    }

    /// Returns once every job queued before this call has run.
    func sync() {
        let done = DispatchSemaphore(value: 0)
        async { done.signal() }
        done.wait()
    }

    /// Ends the thread once the jobs queued so far have run.
    func stop() {
        state.withLock { $0.stopping = true }
        wake.signal()
    }
}
