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
/// A thread of its own, not a dispatch queue's: a thread that left `SCHED_IDLE` would need a
/// privilege an unprivileged engine does not have, so the policy must stay with a thread that only
/// ever runs this work. Where the policy cannot be set the thread runs at the normal one. The thread
/// ends after a few idle seconds and starts again with the next job, so an idle engine (or one that
/// is never released) keeps no thread.
final class IdleWorker: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var running = false
    }
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let name: String
    /// `SCHED_IDLE` from <sched.h>, which Glibc's module leaves out (it is defined under _GNU_SOURCE).
    private static let schedIdle: Int32 = 5
    /// How long the thread waits for a job before it ends.
    private let idleLifetime: DispatchTimeInterval

    init(name: String, idleLifetime: DispatchTimeInterval = .seconds(5)) {
        self.name = name
        self.idleLifetime = idleLifetime
    }

    /// Queues `job` behind the jobs already queued.
    func async(_ job: @escaping @Sendable () -> Void) {
        let start = state.withLock { s -> Bool in
            s.jobs.append(job)
            defer { s.running = true }
            return !s.running
        }
        if start {
            // The thread holds the worker while it runs.
            let thread = Thread { [self] in run() }
            thread.name = name
            thread.start()
        }
        wake.signal()
    }

    /// Returns once every job queued before this call has run.
    func sync() {
        let done = DispatchSemaphore(value: 0)
        async { done.signal() }
        done.wait()
    }

    private func run() {
        var parameters = sched_param(sched_priority: 0)
        _ = sched_setscheduler(0, IdleWorker.schedIdle, &parameters)  // this thread only (Linux: pid 0)
        while true {
            let timedOut = wake.wait(timeout: .now() + idleLifetime) == .timedOut
            // Wake-ups outnumber jobs when an earlier thread ended with signals left: an empty queue
            // then means nothing to do, and only a wait that timed out on it ends the thread.
            let job = state.withLock { s -> (@Sendable () -> Void)? in
                if !s.jobs.isEmpty { return s.jobs.removeFirst() }
                if timedOut { s.running = false }
                return nil
            }
            if let job { job() } else if timedOut { return }
        }
    }
}
