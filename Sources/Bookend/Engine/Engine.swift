import Foundation
import Logging
import SQLite
import Supervisor

/// Runs pools of local nodes, jobs, tasks, and job preparation and release tasks, keeping every
/// state change in `<data-dir>/bookend.db` in the same transaction as the event that records it.
///
/// All state lives in SQLite; the actor holds only caches and wake-up plumbing. Its executor is a
/// private dispatch queue, so sqlite3 calls and fork() never block Swift's cooperative pool. The
/// scheduling loop runs inside the engine from `open` until `shutdown`; processes it starts run
/// under a shim in their own session and outlive the engine, which adopts them on the next open.
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
    let wakeSignal: AsyncStream<Void>.Continuation
    private let wakeStream: AsyncStream<Void>
    private var loop: Task<Void, Never>?
    private var ticker: Task<Void, Never>?
    var subscribers: [UUID: AsyncStream<EngineEvent>.Continuation] = [:]
    var pendingEvents: [EngineEvent] = []
    /// Executions Bookend has signalled, with when to escalate to SIGKILL.
    var killEscalations: [Int64: ContinuousClock.Instant] = [:]
    /// Executions whose resource files are being downloaded (not yet spawned).
    var downloading: Set<Int64> = []
    /// Where node folders live (`configuration.nodesDirectory`, else `<data-dir>/nodes`), absolute.
    public nonisolated let nodesDirectory: String
    /// The reserved uids task accounts come from; nil when the engine is not root (tasks then share
    /// its account).
    let accountRange: ClosedRange<UInt32>?
    let isRoot: Bool
    var stopped = false
    /// This engine's claim on the data directory, released by `shutdown`.
    let lock: DataDirectoryLock
    /// Status folders of executions completed by the transaction in progress; removed once it commits.
    var retiredStatusDirectories: [String] = []
    /// Launch outcomes the "record the process" transaction could not store: processes it could not
    /// record were killed and complete as `LaunchNotRecorded`, launch failures as themselves, as soon
    /// as a transaction commits again (each tick tries).
    var unrecordedOutcomes: [Int64: Outcome] = [:]

    /// Opens (creating if needed) the data directory, migrates its database, settles executions a
    /// previous engine left behind, and starts scheduling.
    public static func open(
        dataDirectory: String, configuration: EngineConfiguration = EngineConfiguration(),
        logger: Logger = Logger(label: "bookend")
    ) async throws -> Engine {
        let options = ConnectionOptions(synchronous: configuration.synchronous == .full ? .full : .normal)
        try DataDirectory.prepare(dataDirectory)
        // Before anything that writes: a second engine must not migrate, reconcile or dispatch here.
        let lock = try DataDirectoryLock(directory: dataDirectory)
        let (connection, _) = try DataDirectory.openMigrated(dataDirectory, options: options)
        let engine = try Engine(connection: connection, dataDirectory: dataDirectory, configuration: configuration, logger: logger, lock: lock)
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
        let inbox = ExitInbox()
        exits = inbox
        (wakeStream, wakeSignal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let signal = wakeSignal
        watcher = try ExitWatcher { identity in
            inbox.append(identity)
            signal.yield()
        }
        nodesDirectory = Engine.absoluteNodesDirectory(configuration.nodesDirectory, dataDirectory: self.dataDirectory)
        isRoot = geteuid() == 0
        if isRoot {
            guard let range = TaskAccounts.usableRange() else {
                throw BookendError(.invalidRequest, "InvalidConfiguration",
                    "no reserved uid range for task accounts is mapped in this user namespace (/proc/self/uid_map); non-admin work never runs as root")
            }
            accountRange = range
            try Engine.checkReachable(nodesDirectory: nodesDirectory, dataDirectory: self.dataDirectory)
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
    static func checkReachable(nodesDirectory: String, dataDirectory: String) throws {
        var blocking = NodeFolders.unsearchableFolder(on: nodesDirectory)
        var info = stat()
        if let folder = blocking, nodesDirectory.hasPrefix(dataDirectory + "/"),
            folder == (dataDirectory as NSString).resolvingSymlinksInPath, stat(folder, &info) == 0, info.st_uid == geteuid()
        {
            chmod(folder, (info.st_mode & 0o7777) | S_IXGRP | S_IXOTH)
            blocking = NodeFolders.unsearchableFolder(on: nodesDirectory)
        }
        if let blocking {
            throw BookendError(.invalidRequest, "InvalidConfiguration", Engine.unreachableMessage(blocking: blocking, nodesDirectory: nodesDirectory))
        }
    }

    static func unreachableMessage(blocking: String, nodesDirectory: String) -> String {
        var mode = ""
        var info = stat()
        if stat(blocking, &info) == 0 { mode = " (mode " + String(format: "%04o", info.st_mode & 0o7777) + ")" }
        return "task accounts cannot reach the node folders \(nodesDirectory): \(blocking)\(mode) is not searchable by other users; "
            + "put them on a reachable path with --nodes-dir (EngineConfiguration.nodesDirectory), e.g. /var/lib/bookend/nodes, "
            + "or use a data directory outside \(blocking)"
    }

    /// The folder on the way to `nodesDirectory` that task accounts could not search if the engine ran
    /// as root, or nil (callers such as the sample pick another place for the node folders then).
    public static func unreachableFolder(nodesDirectory: String) -> String? {
        NodeFolders.unsearchableFolder(on: nodesDirectory)
    }

    private func start() throws {
        try reconcile()
        let stream = wakeStream
        loop = Task { [weak self] in
            for await _ in stream {
                guard let self, !Task.isCancelled else { break }
                await self.tick()
            }
        }
        let interval = configuration.tickInterval
        let signal = wakeSignal
        ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                signal.yield()
            }
        }
        wake()
    }

    /// Stops scheduling. Running executions keep running (they are adopted by the next `open`),
    /// unless `configuration.drainOnShutdown` asks to wait for them first.
    public func shutdown() async {
        if let drain = configuration.drainOnShutdown {
            let deadline = ContinuousClock.now + drain
            stopped = true
            while ContinuousClock.now < deadline, (try? liveExecutionCount()) ?? 0 > 0 {
                tick(dispatching: false)
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        stopped = true
        ticker?.cancel()
        loop?.cancel()
        wakeSignal.finish()
        watcher.stop()
        for continuation in subscribers.values { continuation.finish() }
        subscribers.removeAll()
        lock.release()
    }

    /// Asks the scheduling loop to run soon. Cheap; wake-ups coalesce.
    nonisolated func wake() { wakeSignal.yield() }

    /// Events as they are committed: state changes of pools, nodes, jobs and tasks.
    public func events() -> AsyncStream<EngineEvent> {
        let (stream, continuation) = AsyncStream<EngineEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id = UUID()
        subscribers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            Task { await self.unsubscribe(id) }
        }
        return stream
    }

    private func unsubscribe(_ id: UUID) { subscribers[id] = nil }

    func liveExecutionCount() throws -> Int {
        try db.scalar("SELECT count(*) FROM execution WHERE state <> 'completed'").int ?? 0
    }

    /// Runs `body` in one write transaction; events it records are published after the commit.
    func transaction<T>(_ body: (Connection) throws -> T) throws -> T {
        let value: T
        do {
            value = try db.transaction(body)
        } catch {
            pendingEvents.removeAll()
            retiredStatusDirectories.removeAll()
            throw error
        }
        // Crash points after the commit of every transaction that changed a state: one per kind of
        // event it recorded (`after-commit:task.running`, `after-commit:release.completed`, ...).
        if CrashPoint.isArmed {
            for kind in Set(pendingEvents.map(\.kind)).sorted() { CrashPoint.hit("after-commit:" + kind) }
        }
        publishEvents()
        removeRetiredStatusDirectories()
        return value
    }

    private func publishEvents() {
        guard !pendingEvents.isEmpty else { return }
        for event in pendingEvents {
            for continuation in subscribers.values { continuation.yield(event) }
        }
        pendingEvents.removeAll()
    }

    /// Appends to the event log (inside the caller's transaction).
    func record(
        _ db: Connection, _ kind: String, pool: String? = nil, node: String? = nil, job: String? = nil,
        task: String? = nil, from: String? = nil, to: String? = nil, detail: String? = nil, now: String
    ) throws {
        pendingEvents.append(try EventLog.append(db, kind, pool: pool, node: node, job: job, task: task, from: from, to: to, detail: detail, now: now))
    }

    nonisolated static func newETag() -> String {
        String(format: "0x%016llX", UInt64.random(in: 0...UInt64.max))
    }

    nonisolated static func now() -> String { Timestamp.string(Date()) }
}

/// Exit notifications from the watcher thread, drained by the engine's loop.
final class ExitInbox: @unchecked Sendable {
    // Guarded by `lock`: appended from the watcher's thread, drained on the engine's queue.
    private let lock = NSLock()
    private var identities: [ProcessIdentity] = []

    func append(_ identity: ProcessIdentity) {
        lock.lock()
        identities.append(identity)
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
    return try? JSONDecoder().decode(type, from: Data(text.utf8))
}
