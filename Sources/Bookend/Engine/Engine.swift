import BatchModels
import Dispatch
import Foundation
import Synchronization
import Logging
import ServiceLifecycle
import SQLite
import Supervisor

/// Runs pools of local nodes, jobs, tasks, and job preparation and release tasks, keeping every
/// state change in `<data-dir>/bookend.db` in the same transaction as the event that records it.
///
/// All state lives in SQLite; the actor holds only caches and wake-up plumbing. Its executor is a
/// private dispatch queue, so sqlite3 calls and fork() never block Swift's cooperative pool. The
/// scheduling loop runs on that queue from `open` until `shutdown`, driven by two dispatch sources
/// (a timer and coalescing wake-ups) rather than by a Swift task, so no stall of the cooperative pool
/// can delay a pass. As a `Service`, `run()` is the loop's lifetime in a `ServiceGroup`: it returns on
/// graceful shutdown or cancellation, after shutting the engine down. Processes the engine starts run
/// under a shim in their own session and outlive it; the next open adopts them.
public actor Engine {
    let executor: QueueExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    // Confined to this actor's queue.
    let db: Connection
    /// Read-only connections for lookups that need no write transaction (the API's GETs), so they
    /// do not queue behind the scheduling loop on the actor.
    nonisolated let readers: ReaderPool
    public nonisolated let dataDirectory: String
    public nonisolated let configuration: EngineConfiguration
    let logger: Logger
    let watcher: ExitWatcher
    let exits: ExitInbox
    /// Submits, follows and cancels the allocations of Slurm nodes on its own thread (idle without any).
    nonisolated let slurm: SlurmProvider
    /// What starts a scheduling pass on the engine's queue: wake-ups and the periodic tick.
    private nonisolated let passes: PassSources
    /// Opened by the first `shutdown` (or a stop request to `run()`); `run()` waits on it.
    private nonisolated let stopRequest = Latch()
    /// Opened when `shutdown` has finished, so a second caller returns only then.
    private nonisolated let shutDown = Latch()
    private var shuttingDown = false
    var subscribers: [UUID: AsyncStream<EngineEvent>.Continuation] = [:]
    var pendingEvents: [EngineEvent] = []
    /// Counts the transaction in progress leaves for after its commit (see `EngineMetrics`).
    var pendingObservations: [EngineMetrics.Observation] = []
    let metrics: EngineMetrics
    /// Executions Bookend has signalled, with when to escalate to SIGKILL.
    var killEscalations: [Int64: ContinuousClock.Instant] = [:]
    /// Executions whose resource files are being downloaded (not yet spawned).
    var downloading: Set<Int64> = []
    /// Executions whose launch failed for want of the machine's resources (descriptors, memory, disk),
    /// kept `starting` and tried again later: see `deferLaunches`.
    nonisolated let deferredLaunches = DeferredLaunches()
    /// Where node folders live (`configuration.nodesDirectory`, else `<data-dir>/nodes`), absolute.
    public nonisolated let nodesDirectory: String
    /// The reserved uids task accounts come from; nil when the engine is not root (tasks then share
    /// its account).
    let accountRange: ClosedRange<UInt32>?
    let isRoot: Bool
    var stopped = false
    /// `bookend.db-wal` was found removed under the running engine, and every commit is copied into
    /// the database file from then on (`watchWriteAheadLog`).
    var logRemoved = false
    /// The device and inode of `bookend.db-wal` as the first pass found it: SQLite keeps that file open
    /// for as long as the engine runs, so another file at the path means the log was replaced.
    var logIdentity: (device: UInt64, inode: UInt64)?
    /// This engine's claim on the data directory, released by `shutdown`.
    let lock: DataDirectoryLock
    /// Status folders of executions completed by the transaction in progress; emptied for reuse (or
    /// removed) once it has committed, by `finishAfterCommit`.
    var retiredStatusDirectories: [String] = []
    /// Committed, not yet finished (`finishAfterCommit`).
    var afterCommit = AfterCommit()
    /// `addTasks` calls waiting for the next ingest transaction (see Engine+Tasks.swift).
    var pendingIngests: [PendingIngest] = []
    /// Status folders of completed executions, kept per node for the next launches there.
    /// `BOOKEND_STATUS_FOLDER_POOL_OFF=1` keeps none (a folder made and removed per execution, as
    /// before), so the two can be measured against each other in one sitting.
    var statusFolders = StatusFolderPool(files: Engine.statusFiles,
        capacity: ProcessInfo.processInfo.environment["BOOKEND_STATUS_FOLDER_POOL_OFF"] == "1" ? 0 : 64)
    /// Task folders made ahead per node, moved into place by the next first launch of a task there
    /// (`TaskFolderPool`). `BOOKEND_TASK_FOLDER_POOL_OFF=1` keeps none (every launch makes its
    /// folders, as before), so the two can be measured against each other in one sitting.
    let taskFolders = TaskFolderPool(
        capacity: ProcessInfo.processInfo.environment["BOOKEND_TASK_FOLDER_POOL_OFF"] == "1" ? 0 : 4)
    /// Whether `step` runs its body in a savepoint: false only while a pass runs without them (`applyPass`).
    var stepsInSavepoints = true
    /// `BOOKEND_PASS_SAVEPOINTS=1`: every pass runs its steps in savepoints from the start (`applyPass`).
    static let passSavepointsAlways = ProcessInfo.processInfo.environment["BOOKEND_PASS_SAVEPOINTS"] == "1"
    /// The last failure of each scheduler-pass step that is failing now, by step name: a step that
    /// fails the same way every pass (a corrupt row) is logged once as an error, not 50 times a second.
    var failingSteps: [String: String] = [:]
    /// Launch outcomes the "record the process" transaction could not store: processes it could not
    /// record were killed and complete as `LaunchNotRecorded`, launch failures as themselves, as soon
    /// as a transaction commits again (each tick tries).
    var unrecordedOutcomes: [Int64: Outcome] = [:]
    /// Processes spawned after their intent committed whose identity is not stored yet: the next pass
    /// records them in its own apply transaction (group commit), so a task costs one commit, not two.
    /// A crash before that leaves the intent without a pid, which `reconcile` adopts through the
    /// shim's pid file (docs/recovery.md).
    var spawnedUnrecorded: [Int64: ProcessIdentity] = [:]
    /// When a pass next looks at every running execution's process and exit file, not only at those
    /// the exit watcher reported ended (`observeExits`).
    var nextFullExitScan = ContinuousClock.now
    /// The execution of each process this engine has the watcher watch (launched or adopted), so a
    /// pass can read the rows of the processes reported ended by key instead of every running row.
    var watchedExecutions: [ProcessIdentity: Int64] = [:]
    /// The last processes this engine launched, whose exit files a pass tries when too many run for it
    /// to try them all (`observeExits`).
    var recentLaunches = RecentLaunches()
    /// Rows of `task_folder_removal` whose folder `deleteTask` has removed: the next pass forgets them
    /// (in `applyPass`), so a deletion costs no commit of its own for it.
    var removedTaskFolders: [Int64] = []
    /// What retention and history pruning have done, and when history is next looked at (Retention.swift).
    let housekeeping = Housekeeping()

    /// Opens (creating if needed) the data directory, migrates its database, settles executions a
    /// previous engine left behind, and starts scheduling.
    public static func open(
        dataDirectory: String, configuration: EngineConfiguration = EngineConfiguration(),
        logger: Logger = Logger(label: "bookend")
    ) async throws -> Engine {
        try configuration.validate()
        // Locking and migrating block (fsync, waiting out a fork's hold on the lock): on a thread of
        // their own, not on the caller's (often one of the cooperative pool's few) nor on a global
        // dispatch queue, whose threads the cooperative pool shares on Linux.
        let engine = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Engine, any Error>) in
            Thread {
                continuation.resume(with: Result {
                    let options = ConnectionOptions(synchronous: configuration.synchronous == .full ? .full : .normal)
                    try DataDirectory.prepare(dataDirectory)
                    // Before anything that writes: a second engine must not migrate, reconcile or dispatch here.
                    let lock = try DataDirectoryLock(directory: dataDirectory)
                    let (connection, _) = try DataDirectory.openMigrated(dataDirectory, options: options) { from, to in
                        logger.notice("upgrading \(DataDirectory.databasePath(dataDirectory)) from schema version \(from) to \(to) before starting; a large file takes a while")
                    }
                    return try Engine(connection: connection, dataDirectory: dataDirectory, configuration: configuration, logger: logger, lock: lock)
                })
            }.start()
        }
        // Reconciling runs on the engine's own queue.
        try await engine.start()
        return engine
    }

    private init(
        connection: Connection, dataDirectory: String, configuration: EngineConfiguration, logger: Logger, lock: DataDirectoryLock
    ) throws {
        self.lock = lock
        executor = QueueExecutor(label: "bookend.engine")
        db = connection
        readers = ReaderPool(path: connection.path)
        // Node roots and execution folders are stored as absolute paths: processes change directory,
        // and a relative data directory would mean something else to them.
        let absolute = dataDirectory.hasPrefix("/")
            ? dataDirectory : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(dataDirectory)
        self.dataDirectory = (absolute as NSString).standardizingPath
        self.configuration = configuration
        self.logger = logger
        let metrics = EngineMetrics(factory: configuration.metricsFactory)
        self.metrics = metrics
        // Every write transaction's COMMIT (the fsync of the WAL) is timed where it happens.
        connection.commitObserver = { started in metrics.record(metrics.commitDuration, since: started) }
        let inbox = ExitInbox()
        exits = inbox
        let passes = PassSources(queue: executor.queue)
        self.passes = passes
        // One wake per batch of exits the watcher found together, after all of them are queued: the
        // pass it starts then collects them all (one commit), not the first alone.
        watcher = try ExitWatcher(onExits: { identities in
            inbox.append(identities)
            passes.wake()
        })
        slurm = SlurmProvider(settings: configuration.slurm, logger: logger) { passes.wake() }
        nodesDirectory = Engine.absoluteNodesDirectory(configuration.nodesDirectory, dataDirectory: self.dataDirectory)
        isRoot = geteuid() == 0
        if isRoot {
            guard let range = TaskAccounts.usableRange() else {
                throw BookendError(.invalidRequest, "InvalidConfiguration",
                    "no reserved uid range for task accounts is mapped in this user namespace (/proc/self/uid_map); non-admin work never runs as root")
            }
            accountRange = range
            try Engine.checkReachable(nodesDirectory: nodesDirectory, dataDirectory: self.dataDirectory)
            // Said once at start, not refused: the host's setting, which `bookend doctor` checks too.
            let hardLinks = Doctor.hardLinkProtection(asRoot: true, setting: Doctor.protectedHardLinks())
            if hardLinks.status != .ok { logger.warning("\(hardLinks.detail) (fix: \(hardLinks.fix))") }
            switch configuration.taskProcessLimit {
            case let limit? where limit < 1:
                throw BookendError(.invalidRequest, "InvalidConfiguration", "taskProcessLimit must be at least 1 (or nil for no cap), not \(limit)")
            case let limit?:
                logger.debug("each task account may hold at most \(limit) processes and threads at once (--task-process-limit)")
            case nil:
                logger.notice("task accounts have no process cap of Bookend's own (--task-process-limit none): a fork bomb in a non-admin task can take every pid of this machine")
            }
            // Nodes made under another --nodes-dir (an earlier start with that flag, a restore given
            // one) keep their folders there; a start without the flag must reach those too, or every
            // task on them fails with "could not start" (a restore to a private folder did that).
            if configuration.nodesDirectory == nil, let existing = Doctor.liveNodesParent(connection),
                !existing.hasPrefix(nodesDirectory + "/"), existing != nodesDirectory
            {
                try Engine.checkReachable(nodesDirectory: existing, dataDirectory: self.dataDirectory,
                    flag: "--nodes-dir (the nodes of this data directory were made under \(existing): start with the --nodes-dir they were made with, or make that path reachable)")
            }
            // Slurm nodes' folders may live elsewhere (a shared file system): the same rule holds there.
            if let slurmRoot = configuration.slurm.nodeRoot {
                try Engine.checkReachable(nodesDirectory: Engine.absoluteNodesDirectory(slurmRoot, dataDirectory: self.dataDirectory),
                    dataDirectory: self.dataDirectory, flag: "--slurm-node-root (SlurmSettings.nodeRoot)")
            }
        } else {
            accountRange = nil
        }
    }

    /// `configured` made absolute, or `<data-dir>/nodes`.
    static func absoluteNodesDirectory(_ configured: String?, dataDirectory: String) -> String {
        guard let configured else { return (dataDirectory as NSString).appendingPathComponent("nodes") }
        let absolute = configured.hasPrefix("/")
            ? configured : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(configured)
        return (absolute as NSString).standardizingPath
    }

    /// As root, non-admin tasks run under uids of their own that belong to no group: a node folder
    /// below a folder they cannot search (a data directory under `/root`, or made by `mktemp -d`) would
    /// make every task fail with "Permission denied" and every job wait forever. So nothing starts
    /// then, and the one line says which folder blocks and the ways out.
    ///
    /// A data directory the engine owns that holds the node folders is given search permission for
    /// others (`o+x`, not read: nobody can list it, and the database and key inside are 0600).
    static func checkReachable(nodesDirectory: String, dataDirectory: String,
        flag: String = "--nodes-dir (EngineConfiguration.nodesDirectory)") throws {
        var blocking = NodeFolders.unsearchableFolder(on: nodesDirectory)
        var info = stat()
        if let folder = blocking, nodesDirectory.hasPrefix(dataDirectory + "/"),
            folder == (dataDirectory as NSString).resolvingSymlinksInPath, stat(folder, &info) == 0, info.st_uid == geteuid()
        {
            chmod(folder, (info.st_mode & 0o7777) | S_IXGRP | S_IXOTH)
            blocking = NodeFolders.unsearchableFolder(on: nodesDirectory)
        }
        if let blocking {
            throw BookendError(.invalidRequest, "InvalidConfiguration",
                Engine.unreachableMessage(blocking: blocking, nodesDirectory: nodesDirectory, dataDirectory: dataDirectory, flag: flag))
        }
    }

    static func unreachableMessage(blocking: String, nodesDirectory: String, dataDirectory: String? = nil,
        flag: String = "--nodes-dir (EngineConfiguration.nodesDirectory)") -> String {
        var mode = ""
        var info = stat()
        if stat(blocking, &info) == 0 { mode = " (mode " + String(format: "%04o", info.st_mode & 0o7777) + ")" }
        let isFolder = stat(blocking, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        var text = "task accounts cannot reach the node folders \(nodesDirectory): \(blocking)\(mode) "
            + (isFolder ? "is not searchable by other users" : "is not a folder")
            + "; put them on a reachable path with \(flag), e.g. /var/lib/bookend/nodes"
        // Only when the data directory is what blocks (the node folders' default place) is moving it a way out.
        if let dataDirectory, nodesDirectory.hasPrefix(dataDirectory + "/"), dataDirectory.hasPrefix(blocking) {
            text += ", or use a data directory outside \(blocking)"
        }
        return text
    }

    /// The folder on the way to `nodesDirectory` that task accounts could not search if the engine ran
    /// as root, or nil (callers such as the sample pick another place for the node folders then).
    public static func unreachableFolder(nodesDirectory: String) -> String? {
        NodeFolders.unsearchableFolder(on: nodesDirectory)
    }

    /// Opens the engine, runs `body` with it, and shuts it down on every path (after `body` returns
    /// or throws), so no engine outlives the scope that used it.
    public static func withEngine<T>(
        dataDirectory: String, configuration: EngineConfiguration = EngineConfiguration(),
        logger: Logger = Logger(label: "bookend"), isolation: isolated (any Actor)? = #isolation,
        _ body: (Engine) async throws -> T
    ) async throws -> T {
        let engine = try await open(dataDirectory: dataDirectory, configuration: configuration, logger: logger)
        let value: T
        do {
            value = try await body(engine)
        } catch {
            await engine.shutdown()
            throw error
        }
        await engine.shutdown()
        return value
    }

    private func start() throws {
        try reconcile()
        // Both handlers run on the engine's queue, which is this actor's executor: a pass never waits
        // for a thread of the cooperative pool, which tests and request handlers may be blocking.
        passes.start(every: configuration.tickInterval) { [weak self] in self?.scheduledPass() }
        wake()
    }

    /// One pass, from a dispatch source's handler on the engine's queue.
    private nonisolated func scheduledPass() {
        assumeIsolated { engine in
            let started = ContinuousClock.now
            engine.tick()
            engine.metrics.record(engine.metrics.passDuration, since: started)
        }
    }

    /// Runs `body` on the engine's queue as part of the actor, from code that is not a Swift task (a
    /// callback on another thread). Used where a `Task {}` would otherwise wait for the cooperative pool.
    nonisolated func onQueue(_ body: @escaping @Sendable (isolated Engine) -> Void) {
        executor.queue.async { [weak self] in self?.assumeIsolated(body) }
    }

    /// Stops scheduling. Running executions keep running (they are adopted by the next `open`),
    /// unless `configuration.drainOnShutdown` asks to wait for them first. A second call (or `run()`
    /// returning) waits for the first to finish; later calls return at once.
    public func shutdown() async {
        stopRequest.open()
        guard !shuttingDown else {
            await shutDown.wait()
            return
        }
        shuttingDown = true
        if let drain = configuration.drainOnShutdown {
            let deadline = ContinuousClock.now + drain
            stopped = true
            while ContinuousClock.now < deadline, (try? liveExecutionCount()) ?? 0 > 0 {
                tick(dispatching: false)
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        stopped = true
        passes.stop()
        // Spawned processes the next pass would have recorded: stored now, so the next engine finds
        // their pids in the rows instead of having to adopt them through their pid files.
        recordSpawnedAlone()
        finishAfterCommit()
        // A spare task folder still being made would outlive the engine in its data directory.
        taskFolders.stop()
        watcher.stop()
        slurm.stop()
        for continuation in subscribers.values { continuation.finish() }
        subscribers.removeAll()
        lock.release()
        shutDown.open()
    }

    /// Runs a lookup (any of the engine's `nonisolated` reads: `job(id:)`, `task(jobID:taskID:)`,
    /// `whyWaiting(jobID:taskID:)`, ...) on a reader thread and awaits it, so an async caller (a request
    /// handler) does not block its own thread, often one of the cooperative pool's, on SQLite.
    public nonisolated func lookup<T: Sendable>(_ body: @escaping @Sendable (Engine) throws -> T) async throws -> T {
        try await readers.perform { try body(self) }
    }

    /// Asks the scheduling loop to run soon. Cheap; wake-ups coalesce.
    nonisolated func wake() { passes.wake() }

    /// Events as they are committed: state changes of pools, nodes, jobs and tasks.
    public func events() -> AsyncStream<EngineEvent> {
        let (stream, continuation) = AsyncStream<EngineEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id = UUID()
        subscribers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            self?.onQueue { engine in engine.unsubscribe(id) }
        }
        return stream
    }

    private func unsubscribe(_ id: UUID) { subscribers[id] = nil }

    func liveExecutionCount() throws -> Int {
        try db.counted("SELECT count(*) FROM execution WHERE state <> 'completed'")
    }

    /// Runs `body` in one write transaction; events it records are published after the commit.
    func transaction<T>(_ body: (Connection) throws -> T) throws -> T {
        let value = try transactionDeferringAfterCommit(body)
        finishAfterCommit()
        return value
    }

    /// Commits like `transaction(_:)` but leaves what follows a commit (metrics, the events to
    /// subscribers, emptying the finished executions' status folders) for `finishAfterCommit()`, so
    /// a caller that has processes to start starts them first: between a preparation's exit and its
    /// job's first task that work was a third of the engine's time on the path. Any later
    /// transaction finishes it first, so subscribers still see events in commit order.
    ///
    /// With `sync: .deferred` the COMMIT does not wait for the disk: the caller starts the processes
    /// the transaction decided, then `finishAfterCommit()` (or `syncCommitted()`) syncs the log. The
    /// spawn and the sync overlap instead of following each other (the sync was a third of the time
    /// from a submission to its process on this project's test machine). A crash of the engine loses
    /// nothing by it: the commit is in the page cache before anything starts. See docs/recovery.md,
    /// "Limits", for what a power cut in that millisecond means.
    func transactionDeferringAfterCommit<T>(sync: Connection.CommitSync = .inCommit, _ body: (Connection) throws -> T) throws -> T {
        finishAfterCommit()
        let value: T
        do {
            value = try db.transaction(sync: sync, body)
        } catch {
            pendingEvents.removeAll()
            pendingObservations.removeAll()
            retiredStatusDirectories.removeAll()
            throw error
        }
        // Crash points after the commit of every transaction that changed a state: one per kind of
        // event it recorded (`after-commit:task.running`, `after-commit:release.completed`, ...).
        if CrashPoint.isArmed {
            for kind in Set(pendingEvents.map(\.kind)).sorted() { CrashPoint.hit("after-commit:" + kind) }
        }
        afterCommit.events += pendingEvents
        afterCommit.observations += pendingObservations
        afterCommit.retiredStatusDirectories += retiredStatusDirectories
        pendingEvents.removeAll()
        pendingObservations.removeAll()
        retiredStatusDirectories.removeAll()
        return value
    }

    /// Makes a deferred commit durable (see `transactionDeferringAfterCommit`); nothing when none is owed.
    /// Before a caller is told that what it submitted is stored.
    func syncCommitted() throws {
        try db.syncCommitted()
    }

    /// Does what the commits since the last call left (see `transactionDeferringAfterCommit`), once
    /// they are durable: subscribers hear only of what a power cut cannot take back, and the status
    /// folder of an execution is emptied only once its recorded exit is on disk. When the sync fails,
    /// it all waits for a later commit's sync.
    func finishAfterCommit() {
        do {
            try syncCommitted()
        } catch {
            logger.error("\(error)")
            return
        }
        guard !afterCommit.isEmpty else { return }
        let done = afterCommit
        afterCommit = AfterCommit()
        metrics.record(committed: done.events)
        for observation in done.observations { metrics.record(observation) }
        for event in done.events {
            for continuation in subscribers.values { continuation.yield(event) }
        }
        removeRetiredStatusDirectories(done.retiredStatusDirectories)
    }

    /// What committed transactions leave to do after their commit.
    struct AfterCommit {
        var events: [EngineEvent] = []
        var observations: [EngineMetrics.Observation] = []
        var retiredStatusDirectories: [String] = []
        var isEmpty: Bool { events.isEmpty && observations.isEmpty && retiredStatusDirectories.isEmpty }
    }

    /// Appends to the event log (inside the caller's transaction).
    func record(
        _ db: Connection, _ kind: String, pool: String? = nil, node: String? = nil, job: String? = nil,
        task: String? = nil, from: String? = nil, to: String? = nil, detail: String? = nil, now: String
    ) throws {
        pendingEvents.append(try EventLog.append(db, kind, pool: pool, node: node, job: job, task: task, from: from, to: to, detail: detail, now: now))
    }

    /// A new version tag, `0x` and 16 uppercase hex digits: the next value of `ETagSequence`.
    nonisolated static func newETag() -> String {
        ETagSequence.shared.next().hex16(uppercase: true, prefix: "0x")
    }

    nonisolated static func now() -> String { Timestamp.string(Date()) }
}

extension Engine: Service {
    /// The engine as a service of a `ServiceGroup`: scheduling runs (it has since `open`) until a
    /// graceful shutdown is triggered, the calling task is cancelled, or someone calls `shutdown()`;
    /// then this shuts the engine down (draining first when `configuration.drainOnShutdown` says so)
    /// and returns. Outside a group, cancel the task that runs it.
    public func run() async throws {
        let stopRequest = self.stopRequest
        await withTaskCancellationOrGracefulShutdownHandler {
            await stopRequest.wait()
        } onCancelOrGracefulShutdown: {
            stopRequest.open()
        }
        await shutdown()
    }
}

/// The two dispatch sources that start scheduling passes on the engine's queue: a user-data source
/// whose events coalesce (many wake-ups while a pass runs make one more pass, not many), and a timer.
/// Neither needs a Swift task or a thread of the cooperative pool.
final class PassSources: @unchecked Sendable {
    // @unchecked: dispatch sources are thread-safe objects; both are only configured in `start`
    // (on the actor, before any pass) and cancelled in `stop`.
    private let wakeups: any DispatchSourceUserDataAdd
    private let timer: any DispatchSourceTimer

    init(queue: DispatchQueue) {
        wakeups = DispatchSource.makeUserDataAddSource(queue: queue)
        timer = DispatchSource.makeTimerSource(queue: queue)
        // Active from the start without handlers (a wake-up before `start` is dropped, and `start`
        // wakes the engine itself): a dispatch source released while still suspended would trap.
        wakeups.activate()
        timer.activate()
    }

    func start(every interval: Duration, _ pass: @escaping @Sendable () -> Void) {
        wakeups.setEventHandler(handler: pass)
        timer.setEventHandler(handler: pass)
        let every = DispatchTimeInterval(max(interval, .nanoseconds(1)))
        timer.schedule(deadline: .now() + every, repeating: every)
    }

    func wake() { wakeups.add(data: 1) }

    func stop() {
        timer.cancel()
        wakeups.cancel()
    }

    // An engine dropped without `shutdown()` (its `open` failed after `init`, say) leaves no timer.
    deinit { stop() }
}

/// A one-shot gate: `wait()` suspends until `open()` has been called (from any thread), then returns
/// at once forever after. Resuming needs no task of its own, so a handler that may not await (a
/// cancellation or graceful-shutdown handler) can open it.
final class Latch: @unchecked Sendable {
    // `isOpen` and `waiters` are guarded by `lock`.
    private let lock = NSLock()
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func open() {
        lock.lock()
        isOpen = true
        let resumed = waiters
        waiters.removeAll()
        lock.unlock()
        for waiter in resumed { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if isOpen {
                lock.unlock()
                continuation.resume()
            } else {
                waiters.append(continuation)
                lock.unlock()
            }
        }
    }
}

/// Exit notifications from the watcher thread, drained by the engine's loop.
final class ExitInbox: @unchecked Sendable {
    // Guarded by `lock`: appended from the watcher's thread, drained on the engine's queue.
    private let lock = NSLock()
    private var identities: [ProcessIdentity] = []

    func append(_ batch: [ProcessIdentity]) {
        lock.lock()
        identities += batch
        lock.unlock()
    }

    func drain() -> [ProcessIdentity] {
        lock.lock()
        defer { lock.unlock() }
        let drained = identities
        identities.removeAll()
        return drained
    }
}

let jsonEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

func encodeJSON<T: Encodable>(_ value: T) -> String {
    // Encoding our own Codable value types cannot fail.
    String(decoding: (try? jsonEncoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
}

func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String?) -> T? {
    guard let text else { return nil }
    return try? decodeStoredJSON(type, text)
}

/// Stored JSON text as `type`, with its kept-verbatim values read from the text itself
/// (`OpaqueJSON.Source`); the one way the engine decodes what it stored.
func decodeStoredJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    let decoder = JSONDecoder()
    decoder.userInfo[OpaqueJSON.sourceKey] = OpaqueJSON.Source { Array(text.utf8) }
    return try decoder.decode(type, from: Data(text.utf8))
}

/// Where ETags come from. An ETag only has to differ from every other version of the entity, so it
/// needs no fresh randomness per tag: a counter from a random start, put through SplitMix64's
/// finalizer (a bijection, so no two values of one process repeat) gives tags that look as random as
/// before. `UInt64.random(in:)` per tag was a `getrandom` system call and a generic range walk, a
/// quarter of the engine's time while it stored an `addTasks` batch.
final class ETagSequence: Sendable {
    static let shared = ETagSequence()

    private let counter: Mutex<UInt64>

    init() {
        var system = SystemRandomNumberGenerator()
        counter = Mutex(system.next())
    }

    func next() -> UInt64 {
        var value = counter.withLock { counter in
            counter &+= 0x9E37_79B9_7F4A_7C15
            return counter
        }
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

extension DispatchTimeInterval {
    /// `duration` in whole nanoseconds (saturating), for Dispatch's timers and delays.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(Int(clamping: seconds).multipliedReportingOverflow(by: 1_000_000_000).partialValue
            + Int(attoseconds / 1_000_000_000))
    }
}
