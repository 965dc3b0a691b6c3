import CSupervisor
import Dispatch
import Foundation
import Glibc
import Synchronization

/// Watches processes (our own shims, or processes adopted after an engine restart that are
/// not our children) and reports each watched identity exactly once when it exits.
///
/// One dedicated `Thread` (not the cooperative pool) blocks in `epoll_wait` over one
/// `pidfd_open` descriptor per process plus an eventfd used for `stop()`. Exited children
/// are reaped (`waitid(P_PIDFD)`) before they are reported, so no zombies remain. If no pidfd
/// can be opened (e.g. EMFILE), the process is polled via /proc every 250 ms instead.
/// The exit callback runs on the watcher thread: keep it short, hand work off elsewhere.
///
/// `@unchecked Sendable` is safe: the only stored property is the immutable reference to
/// `WatcherCore`, whose mutable state is entirely behind a `Mutex` and whose descriptors
/// are immutable `let`s that are closed only after the watcher thread has finished.
public final class ExitWatcher: @unchecked Sendable {
    private let core: WatcherCore

    public convenience init(onExit: @escaping @Sendable (ProcessIdentity) -> Void) throws(SupervisorError) {
        try self.init(usePidfd: true, onExits: { ids in ids.forEach(onExit) })
    }

    /// `onExits` is given every process found ended by one wake-up of the watcher at once, in one
    /// call. Why: a caller that starts work per report (the engine wakes its loop) then sees the
    /// processes that ended together as one batch, not the first alone and the rest a moment later.
    public convenience init(onExits: @escaping @Sendable ([ProcessIdentity]) -> Void) throws(SupervisorError) {
        try self.init(usePidfd: true, onExits: onExits)
    }

    /// `usePidfd: false` forces the /proc polling fallback (for tests).
    convenience init(usePidfd: Bool, onExit: @escaping @Sendable (ProcessIdentity) -> Void) throws(SupervisorError) {
        try self.init(usePidfd: usePidfd, onExits: { ids in ids.forEach(onExit) })
    }

    init(usePidfd: Bool, onExits: @escaping @Sendable ([ProcessIdentity]) -> Void) throws(SupervisorError) {
        core = try WatcherCore(usePidfd: usePidfd, onExits: onExits)
        let core = self.core
        let thread = Thread { core.run() }
        thread.name = "bookend.exit-watcher"
        thread.start()
    }

    deinit { core.stop() }

    /// Starts watching `id`. Safe from any thread. If the process is already gone (or its
    /// pid now belongs to another process), it is reported right away on this thread.
    /// Watching an identity that is already being watched is a no-op.
    public func watch(_ id: ProcessIdentity) { core.watch(id) }

    /// The errno a shim this watcher reaped exited with because it could not write its `exit` file
    /// (see `BKS_SHIM_EXIT_LIMIT`), or nil (it wrote the file, it was killed, or it was not our child).
    /// Call after the exit callback reported `id`; each value is handed out once.
    public func takeExitFileError(_ id: ProcessIdentity) -> Int32? { core.takeExitFileError(id) }

    /// True while `id` is watched and its exit not yet reported. A dead process still watched is
    /// being reaped: its shim's exit status (`takeExitFileError`) is known only once this is false.
    public func isWatching(_ id: ProcessIdentity) -> Bool { core.isWatching(id) }

    /// Number of identities currently being watched.
    public var watchedCount: Int { core.watchedCount }

    /// How many of a process's `limit` descriptors an exit watcher may hold as pidfds: a quarter.
    /// (The daemon sizes its connection cap with the same share set aside.)
    public static func pidfdShare(ofDescriptorLimit limit: Int) -> Int { max(0, limit / 4) }

    /// The process's soft limit on open descriptors (`ulimit -n`); 1024 when it cannot be read.
    public static func descriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return limit.rlim_cur >= rlim_t(Int32.max) ? Int(Int32.max) : Int(limit.rlim_cur)
    }

    /// Stops the watcher thread and closes all descriptors; pending processes are no longer
    /// reported. Idempotent; waits for the thread unless called from the exit callback itself.
    public func stop() { core.stop() }
}

final class WatcherCore: @unchecked Sendable {
    // Safe to share: `state` is a Mutex; `epfd`/`eventfd`/`onExits`/`done` are immutable and the
    // descriptors are closed only by the watcher thread as its very last action.
    private struct Entry { var id: ProcessIdentity; var fd: Int32 }
    private struct State {
        var entries: [UInt64: Entry] = [:]          // epoll token → pidfd entry
        var polled: [ProcessIdentity] = []           // no pidfd available: /proc polling
        var watched: Set<ProcessIdentity> = []
        var nextToken: UInt64 = 1                    // 0 is the eventfd
        var stopped = false
        var threadID: pthread_t? = nil
        /// Reaped shims that exited non-zero: they could not write their exit file (rare; each entry
        /// is taken by the engine when it completes the execution).
        var exitFileErrors: [ProcessIdentity: Int32] = [:]
    }

    private let state = Mutex(State())
    private let epfd: Int32
    private let eventfd: Int32
    private let onExits: @Sendable ([ProcessIdentity]) -> Void
    private let done = DispatchSemaphore(value: 0)

    private let usePidfd: Bool
    /// The most pidfds held at once; past it processes are polled. Each running task would otherwise
    /// hold a descriptor: a few thousand running tasks used up the daemon's limit and with it the
    /// descriptors its database, pipes and connections need.
    private let maximumPidfds: Int

    init(usePidfd: Bool, onExits: @escaping @Sendable ([ProcessIdentity]) -> Void) throws(SupervisorError) {
        self.onExits = onExits
        self.usePidfd = usePidfd
        maximumPidfds = ExitWatcher.pidfdShare(ofDescriptorLimit: ExitWatcher.descriptorLimit())
        epfd = bks_epoll_create()
        guard epfd >= 0 else { throw SupervisorError(code: .watcherFailed, errno: errno, message: "epoll_create1 failed") }
        eventfd = bks_eventfd()
        guard eventfd >= 0 else {
            let e = errno
            close(epfd)
            throw SupervisorError(code: .watcherFailed, errno: e, message: "eventfd failed")
        }
        guard bks_epoll_add(epfd, eventfd, 0) == 0 else {
            let e = errno
            close(epfd); close(eventfd)
            throw SupervisorError(code: .watcherFailed, errno: e, message: "epoll_ctl(eventfd) failed")
        }
    }

    var watchedCount: Int { state.withLock { $0.watched.count } }

    func isWatching(_ id: ProcessIdentity) -> Bool { state.withLock { $0.watched.contains(id) } }

    func takeExitFileError(_ id: ProcessIdentity) -> Int32? {
        state.withLock { $0.exitFileErrors.removeValue(forKey: id) }
    }

    /// Reaps `id` if it is our exited child, remembering a non-zero exit of the shim.
    private func reap(_ fd: Int32, _ id: ProcessIdentity) {
        var code: Int32 = -1
        if bks_reap_status(fd, id.pid, &code) == 1, code > 0 {
            state.withLock { $0.exitFileErrors[id] = code }
        }
    }

    func watch(_ id: ProcessIdentity) {
        let reserved = state.withLock { s -> Bool in
            guard !s.stopped, !s.watched.contains(id) else { return false }
            s.watched.insert(id)
            return true
        }
        guard reserved else { return }

        let underShare = usePidfd && state.withLock { $0.entries.count < maximumPidfds }
        let fd = underShare ? bks_pidfd_open(id.pid) : -1
        if fd < 0 {
            let e = underShare ? errno : EMFILE
            if e == ESRCH || id.pid <= 0 {
                finishImmediately(id)
            } else {
                // EMFILE/ENFILE/ENOSYS…: fall back to polling /proc.
                state.withLock { $0.polled.append(id) }
                _ = bks_eventfd_signal(eventfd)  // re-evaluate the epoll timeout
            }
            return
        }
        // The pidfd pins the process it refers to; make sure that is still *our* process
        // (the pid may have been reused before pidfd_open). Zombies still match. When /proc cannot
        // be read now (descriptors used up), the process is polled instead: taking it for ended
        // would report a running command's end.
        switch ProcStat.lookup(pid: id.pid) {
        case .found(let stat) where stat.startTime == id.startTime:
            break
        case .found, .absent:
            close(fd)
            finishImmediately(id)
            return
        case .unknown:
            close(fd)
            state.withLock { $0.polled.append(id) }
            _ = bks_eventfd_signal(eventfd)
            return
        }
        let added = state.withLock { s -> Bool in
            guard !s.stopped else { return false }
            let token = s.nextToken
            s.nextToken += 1
            guard bks_epoll_add(epfd, fd, token) == 0 else { return false }
            s.entries[token] = Entry(id: id, fd: fd)
            return true
        }
        if !added {
            close(fd)
            state.withLock { _ = $0.watched.remove(id) }
        }
    }

    private func finishImmediately(_ id: ProcessIdentity) {
        state.withLock { _ = $0.watched.remove(id) }
        onExits([id])
    }

    func stop() {
        let (wasStopped, isWatcherThread) = state.withLock { s -> (Bool, Bool) in
            let was = s.stopped
            s.stopped = true
            let onThread = s.threadID.map { pthread_equal($0, pthread_self()) != 0 } ?? false
            return (was, onThread)
        }
        guard !wasStopped else { return }
        _ = bks_eventfd_signal(eventfd)
        if !isWatcherThread { done.wait() }
    }

    func run() {
        state.withLock { $0.threadID = pthread_self() }
        var tokens = [UInt64](repeating: 0, count: 64)
        while true {
            let timeout: Int32 = state.withLock { $0.polled.isEmpty } ? -1 : 250
            let n = tokens.withUnsafeMutableBufferPointer {
                bks_epoll_wait(epfd, $0.baseAddress, Int32($0.count), timeout)
            }
            if n < 0 && errno != EINTR {
                usleep(10_000)  // should not happen; avoid a hot loop
            }
            var exited: [ProcessIdentity] = []
            for token in tokens.prefix(Int(max(n, 0))) {
                if token == 0 {
                    bks_eventfd_drain(eventfd)
                    continue
                }
                guard let entry = state.withLock({ s -> Entry? in
                    s.entries.removeValue(forKey: token)
                }) else { continue }
                _ = bks_epoll_del(epfd, entry.fd)
                reap(entry.fd, entry.id)  // no-op (ECHILD) if not our child
                // Only now, with the shim's exit status stored: see isWatching.
                state.withLock { _ = $0.watched.remove(entry.id) }
                close(entry.fd)
                exited.append(entry.id)
            }
            exited += pollWithoutPidfd()
            let stopped = state.withLock { $0.stopped }
            if stopped { break }
            if !exited.isEmpty { onExits(exited) }
        }
        let fds = state.withLock { s -> [Int32] in
            let fds = s.entries.values.map(\.fd)
            s.entries.removeAll()
            s.polled.removeAll()
            s.watched.removeAll()
            return fds
        }
        for fd in fds { close(fd) }
        close(epfd)
        close(eventfd)
        done.signal()
    }

    /// Checks the processes that have no pidfd; returns (and unregisters) the exited ones.
    private func pollWithoutPidfd() -> [ProcessIdentity] {
        let candidates = state.withLock { $0.polled }
        guard !candidates.isEmpty else { return [] }
        var gone: [ProcessIdentity] = []
        for id in candidates {
            switch ProcStat.lookup(pid: id.pid) {
            case .found(let stat) where stat.startTime == id.startTime:
                guard stat.isZombie else { continue }
                reap(-1, id)  // a zombie's pid cannot be reused, so this is ours
            case .found, .absent:
                break
            case .unknown:
                // Unreadable is not ended (this is the fallback used when descriptors ran out).
                continue
            }
            gone.append(id)
        }
        if !gone.isEmpty {
            let goneSet = Set(gone)
            state.withLock { s in
                s.polled.removeAll { goneSet.contains($0) }
                s.watched.subtract(goneSet)
            }
        }
        return gone
    }
}
