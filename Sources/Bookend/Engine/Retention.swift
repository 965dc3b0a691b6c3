import Foundation
import Logging
import SQLite

/// Free space to keep on a file system: a share of it (`10%`) or a number of bytes (`5G`).
public enum DiskSpace: Sendable, Equatable, CustomStringConvertible {
    case percent(Double)
    case bytes(UInt64)

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let text: String
        public var description: String {
            "'\(text)' is not an amount of free space such as 10% or 5G (K, M, G, T are powers of 1024; a bare number is bytes)"
        }
    }

    /// Parses `10%`, `2.5%`, `512M`, `5G`, `5GiB`, `1T` or a number of bytes.
    public init(parsing text: String) throws(ParseError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix("%") {
            guard let value = Double(trimmed.dropLast()), value >= 0, value < 100 else { throw ParseError(text: text) }
            self = .percent(value)
            return
        }
        var number = Substring(trimmed.uppercased())
        for suffix in ["IB", "B"] where number.hasSuffix(suffix) {
            number = number.dropLast(suffix.count)
            break
        }
        let units: [Character: Double] = ["K": 1024, "M": 1024 * 1024, "G": 1024 * 1024 * 1024, "T": 1024 * 1024 * 1024 * 1024]
        var scale = 1.0
        if let last = number.last, let unit = units[last] {
            scale = unit
            number = number.dropLast()
        }
        guard let value = Double(number), value >= 0, (value * scale) < Double(UInt64.max) else { throw ParseError(text: text) }
        self = .bytes(UInt64(value * scale))
    }

    public var description: String {
        switch self {
        case .percent(let value): "\(value.formatted())%"
        case .bytes(let value): FileSystemSpace.human(value)
        }
    }
}

/// The size and free space of the file system holding a path (`statvfs`).
public struct FileSystemSpace: Sendable, Equatable {
    public let totalBytes: UInt64
    /// Space an unprivileged process may still use (`f_bavail`): what tasks can write.
    public let availableBytes: UInt64
    public let totalInodes: UInt64
    public let availableInodes: UInt64

    public init(totalBytes: UInt64, availableBytes: UInt64, totalInodes: UInt64, availableInodes: UInt64) {
        self.totalBytes = totalBytes
        self.availableBytes = availableBytes
        self.totalInodes = totalInodes
        self.availableInodes = availableInodes
    }

    /// The file system of `path`, or nil when it cannot be read (the path is missing).
    public static func of(_ path: String) -> FileSystemSpace? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let block = UInt64(info.f_frsize)
        return FileSystemSpace(
            totalBytes: UInt64(info.f_blocks) * block, availableBytes: UInt64(info.f_bavail) * block,
            totalInodes: UInt64(info.f_files), availableInodes: UInt64(info.f_favail))
    }

    /// The share of the file system still available, in percent.
    public var availablePercent: Double {
        totalBytes == 0 ? 100 : Double(availableBytes) * 100 / Double(totalBytes)
    }

    /// The share of inodes still available, in percent (100 on file systems without an inode limit).
    public var availableInodePercent: Double {
        totalInodes == 0 ? 100 : Double(availableInodes) * 100 / Double(totalInodes)
    }

    /// Whether less than `minimum` is available.
    public func isBelow(_ minimum: DiskSpace) -> Bool {
        switch minimum {
        case .percent(let share): availablePercent < share
        case .bytes(let bytes): availableBytes < bytes
        }
    }

    /// `1.5 GiB`, `200 MiB`, `512 B`.
    public static func human(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// How long to keep something: an ISO 8601 duration (`P7D`, `PT12H`) or a number with a unit
/// (`30d`, `12h`, `90m`, `45s`); `forever` (or the ISO unlimited value) keeps it for good.
public enum RetentionPeriod {
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let text: String
        public var description: String { "'\(text)' is not a duration such as 7d, 12h, P7D or PT12H (or forever)" }
    }

    /// The duration `text` names; nil for `forever`.
    public static func parse(_ text: String) throws(ParseError) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed == "forever" { return nil }
        if trimmed.hasPrefix("p") {
            do {
                guard let milliseconds = try ISODuration.parse(trimmed) else { return nil }
                return .milliseconds(milliseconds)
            } catch {
                throw ParseError(text: text)
            }
        }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800]
        guard let unit = trimmed.last.flatMap({ units[$0] }), let value = Double(trimmed.dropLast()), value >= 0,
            value * unit < 1e12
        else { throw ParseError(text: text) }
        return .milliseconds(Int64(value * unit * 1_000))
    }
}

/// Why an execution's folder was deleted, as the event log records it.
public enum FilesDeletedReason: String, Sendable, CaseIterable {
    /// Its retention deadline (`retentionTime`) passed.
    case retention
    /// Free space on the node folders' file system fell below `minFreeDisk`.
    case diskPressure = "disk-pressure"
}

/// What the engine's housekeeping has done since it opened and how big the database is: for metrics
/// and `bookend doctor`.
public struct HousekeepingReport: Sendable, Equatable {
    /// `bookend.db` and its `-wal`, in bytes.
    public var databaseBytes: UInt64
    public var walBytes: UInt64
    /// Pages of the file that hold nothing (`PRAGMA freelist_count`) and their size.
    public var freePages: Int
    public var pageSize: Int
    /// The node folders' file system, when it could be read.
    public var nodesFileSystem: FileSystemSpace?
    /// Whether free space there is below `minFreeDisk` now.
    public var underDiskPressure: Bool
    /// Execution folders deleted, by reason.
    public var filesDeletedByRetention: Int
    public var filesDeletedUnderDiskPressure: Int
    /// Events of deleted jobs removed by history retention, and how many deleted jobs' histories are gone.
    public var historyEventsPruned: Int
    public var deletedJobsPruned: Int
}

/// Counters and timers of the housekeeping steps. Written on the engine's queue; read by
/// `housekeepingReport()` from any thread.
final class Housekeeping: @unchecked Sendable {
    // Everything below is guarded by `lock`.
    private let lock = NSLock()
    private var counters = Counters()
    private var nextHistoryCheck = ContinuousClock.now
    private var warnedNothingToDelete = false

    struct Counters {
        var retention = 0
        var diskPressure = 0
        var eventsPruned = 0
        var jobsPruned = 0
    }

    func count(_ update: (inout Counters) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        update(&counters)
    }

    var snapshot: Counters {
        lock.lock()
        defer { lock.unlock() }
        return counters
    }

    /// Whether the history is due for a look, and if so, when the next one is when nothing is found.
    func historyDue() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return ContinuousClock.now >= nextHistoryCheck
    }

    func checkHistoryAgain(after interval: Duration) {
        lock.lock()
        defer { lock.unlock() }
        nextHistoryCheck = ContinuousClock.now + interval
    }

    /// True the first time in a row that disk pressure finds nothing it may delete.
    func shouldWarnNothingToDelete(_ nothing: Bool) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        defer { warnedNothingToDelete = nothing }
        return nothing && !warnedNothingToDelete
    }
}

extension Engine {
    /// How many events of deleted jobs one pruning transaction removes: small enough that the
    /// transaction (and the pass it runs in) stays short.
    static let historyPruneBatch = 500
    /// Pages one `PRAGMA incremental_vacuum` step gives back to the file system.
    static let vacuumPagesPerStep = 500
    /// Folders one pass deletes at most under disk pressure; the next pass goes on.
    static let diskPressureFoldersPerPass = 20

    /// The names an `execution.files-deleted` event carries, with the folder and the columns the
    /// choice needs.
    private static let executionWithNames = """
        SELECT e.pk, e.kind, e.attempt, e.task_dir, e.retention_deadline, n.id AS node_id, p.id AS pool_id, j.id AS job_id, t.id AS task_id
        FROM execution e LEFT JOIN node n ON n.pk = e.node_pk LEFT JOIN pool p ON p.pk = n.pool_pk
        LEFT JOIN job j ON j.pk = e.job_pk LEFT JOIN task t ON t.pk = e.task_pk
        """

    /// Deletes the folders of executions whose retention deadline has passed (at most 100 per pass).
    func enforceRetentionDeadlines(now: String) throws {
        let due = try db.query(
            Engine.executionWithNames + " WHERE e.files_deleted_time IS NULL AND e.retention_deadline IS NOT NULL AND e.retention_deadline <= ? LIMIT 100",
            [now])
        guard !due.isEmpty else { return }
        var deleted: [Row] = []
        var superseded: [Row] = []
        for row in due {
            let directory = try row.text("task_dir", table: "execution")
            // A later execution (a reactivated task, a rerun preparation) may use the same folder: it
            // is that one's now, and goes with that one's retention.
            if try db.counted("SELECT count(*) FROM execution WHERE task_dir = ? AND pk > ? AND (state <> 'completed' OR retention_deadline IS NULL OR retention_deadline > ?)",
                [directory, row["pk"], now]) > 0 {
                superseded.append(row)
                continue
            }
            CrashPoint.hit("retention.before-delete")
            FileAccess.removeTree(atPath: directory)
            CrashPoint.hit("retention.after-delete")
            deleted.append(row)
        }
        try recordFilesDeleted(deleted, superseded: superseded, reason: .retention, detail: [:], now: now)
    }

    /// Under disk pressure (`minFreeDisk`), deletes completed executions' folders before their
    /// retention deadline: those past it first, then the oldest completed, until free space is back
    /// above the minimum (at most `diskPressureFoldersPerPass` per pass).
    ///
    /// Never the folder of an execution that runs or may run again: only completed executions with a
    /// retention deadline (a reactivated task has none), only the last execution to use the folder
    /// (a retried task's earlier attempts share it), never a start task's (the node's `startup/`),
    /// and a preparation's only once its job has completed (its tasks and release may read it).
    func relieveDiskPressure(now: String) throws {
        guard let minimum = configuration.minFreeDisk, var space = FileSystemSpace.of(nodesDirectory), space.isBelow(minimum) else {
            _ = housekeeping.shouldWarnNothingToDelete(false)
            return
        }
        // Deleted jobs' task folders kept as spares go first: nothing anyone asked to keep is in them.
        let dropped = taskFolders.dropReclaimed()
        if dropped > 0 {
            logger.notice("removed \(dropped) task folder(s) of deleted jobs kept as spares: free space on \(nodesDirectory) was below \(minimum)")
            space = FileSystemSpace.of(nodesDirectory) ?? space
            guard space.isBelow(minimum) else { return }
        }
        let candidates = try db.query(
            Engine.executionWithNames + """
                 WHERE e.state = 'completed' AND e.files_deleted_time IS NULL AND e.retention_deadline IS NOT NULL AND e.kind <> 'start'
                  AND (e.kind <> 'preparation' OR j.state = 'completed')
                  AND NOT EXISTS (SELECT 1 FROM execution l WHERE l.pk > e.pk AND (
                      (e.kind = 'task' AND l.task_pk = e.task_pk)
                      OR (e.kind <> 'task' AND l.job_pk = e.job_pk AND l.kind = e.kind AND l.node_pk = e.node_pk)))
                ORDER BY e.retention_deadline > ?, e.end_time, e.pk
                LIMIT ?
                """, [now, Engine.diskPressureFoldersPerPass])
        if housekeeping.shouldWarnNothingToDelete(candidates.isEmpty) {
            logger.warning("free space on \(nodesDirectory) is below --min-free-disk \(minimum) and no completed execution's folder is left to delete",
                metadata: ["available": "\(FileSystemSpace.human(space.availableBytes))"])
        }
        var deleted: [Row] = []
        var available = space
        for row in candidates {
            guard available.isBelow(minimum) else { break }
            CrashPoint.hit("retention.before-delete")
            FileAccess.removeTree(atPath: try row.text("task_dir", table: "execution"))
            CrashPoint.hit("retention.after-delete")
            deleted.append(row)
            available = FileSystemSpace.of(nodesDirectory) ?? available
        }
        guard !deleted.isEmpty else { return }
        logger.notice("deleted \(deleted.count) completed execution folder(s) before their retention deadline: free space on \(nodesDirectory) was below \(minimum)",
            metadata: ["available": "\(FileSystemSpace.human(available.availableBytes))"])
        try recordFilesDeleted(deleted, superseded: [], reason: .diskPressure,
            detail: ["availableBytes": "\(space.availableBytes)", "minFreeDisk": "\(minimum)"], now: now)
    }

    /// Sets `files_deleted_time` on the executions whose folders were removed (each with its event)
    /// and on those whose folder a later execution took over (no event: nothing was removed).
    private func recordFilesDeleted(_ deleted: [Row], superseded: [Row], reason: FilesDeletedReason, detail: [String: String], now: String) throws {
        guard !deleted.isEmpty || !superseded.isEmpty else { return }
        let recorded = try transaction { db in
            for row in superseded {
                _ = try ExecutionStore.markFilesDeleted(db, pk: row.int64("pk", table: "execution"), now: now)
            }
            var recorded = 0
            for row in deleted {
                // Guarded: a crash after the removal and before this commit removes (nothing) again and
                // records it once.
                guard try ExecutionStore.markFilesDeleted(db, pk: row.int64("pk", table: "execution"), now: now) else { continue }
                var fields = detail
                fields["reason"] = reason.rawValue
                fields["execution"] = try row.text("kind", table: "execution")
                fields["attempt"] = "\(try row.int("attempt", table: "execution"))"
                // Deleted early for disk pressure, a folder may have had no deadline (kept "forever").
                fields["retentionDeadline"] = try row.optionalText("retention_deadline", table: "execution") ?? ""
                try record(db, "execution.files-deleted", pool: row["pool_id"].string, node: row["node_id"].string, job: row["job_id"].string,
                    task: row["task_id"].string, detail: encodeJSON(fields), now: now)
                recorded += 1
            }
            return recorded
        }
        housekeeping.count { counters in
            switch reason {
            case .retention: counters.retention += recorded
            case .diskPressure: counters.diskPressure += recorded
            }
        }
    }

    /// Removes the events of jobs deleted longer ago than `historyRetention`, one small transaction
    /// per pass (`historyPruneBatch` rows), then gives the freed pages back to the file system.
    ///
    /// A job's events go before its `job.deleted` event, which goes last: the log's delete trigger
    /// (migration 8) allows removing an event only while a `job.deleted` event of its job follows it.
    func pruneDeletedJobHistory(now: Date) throws {
        guard let retention = configuration.historyRetention, housekeeping.historyDue() else { return }
        let seconds = Double(retention.components.seconds) + Double(retention.components.attoseconds) / 1e18
        let cutoff = Timestamp.string(now.addingTimeInterval(-seconds))
        guard let deletion = try db.query(
            "SELECT seq, job_id FROM event WHERE kind = 'job.deleted' AND job_id IS NOT NULL AND time <= ? ORDER BY job_id, seq LIMIT 1", [cutoff]).first,
            let seq = deletion["seq"].int64, let jobID = deletion["job_id"].string
        else {
            // Nothing old enough: look again in a while (sooner for a short retention).
            housekeeping.checkHistoryAgain(after: min(.seconds(60), max(retention / 2, configuration.tickInterval)))
            return
        }
        let (removed, finished) = try transaction { db -> (Int, Bool) in
            let removed = try EventLog.pruneJob(db, jobID: jobID, before: seq, limit: Engine.historyPruneBatch)
            guard removed < Engine.historyPruneBatch else { return (removed, false) }
            // The job's last rows are gone with this transaction: its deletion goes too.
            return (removed + (try EventLog.remove(db, seq: seq)), true)
        }
        housekeeping.count { counters in
            counters.eventsPruned += removed
            if finished { counters.jobsPruned += 1 }
        }
        try giveBackFreePages()
    }

    /// `PRAGMA incremental_vacuum` in small steps: the file shrinks by the pages pruning freed.
    func giveBackFreePages() throws {
        guard try db.counted("PRAGMA freelist_count") > 0 else { return }
        try db.execute("PRAGMA incremental_vacuum(\(Engine.vacuumPagesPerStep))")
    }

    /// What housekeeping has done since the engine opened, the database's size and the node folders'
    /// free space.
    public nonisolated func housekeepingReport() throws -> HousekeepingReport {
        let path = DataDirectory.databasePath(dataDirectory)
        let (freePages, pageSize) = try readers.read { connection in
            (try connection.counted("PRAGMA freelist_count"), try connection.counted("PRAGMA page_size"))
        }
        let space = FileSystemSpace.of(nodesDirectory)
        let counters = housekeeping.snapshot
        return HousekeepingReport(
            databaseBytes: Engine.fileSize(path), walBytes: Engine.fileSize(path + "-wal"), freePages: freePages, pageSize: pageSize,
            nodesFileSystem: space, underDiskPressure: configuration.minFreeDisk.map { space?.isBelow($0) ?? false } ?? false,
            filesDeletedByRetention: counters.retention, filesDeletedUnderDiskPressure: counters.diskPressure,
            historyEventsPruned: counters.eventsPruned, deletedJobsPruned: counters.jobsPruned)
    }

    nonisolated static func fileSize(_ path: String) -> UInt64 {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_size) : 0
    }
}
