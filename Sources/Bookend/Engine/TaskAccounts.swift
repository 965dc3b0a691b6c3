import Foundation
import Logging
import SQLite

/// The accounts non-admin work runs as when the engine is root (Azure's `autoUser`): one per pool for
/// scope `pool`, one per task for scope `task`. Like systemd's DynamicUser, they are bare uids from a
/// reserved range with no `/etc/passwd` entry, gid = uid and no supplementary groups, so no account
/// database is touched and no task shares a uid with a login or a service.
///
/// A data directory takes a random block of `blockSize` uids and hands them out in order, recording
/// each in SQLite (`pool.uid`, `task.uid`, `execution.uid`); a used-up block is followed by another
/// random one that no recorded uid falls in. So a uid is never given to two owners within a data
/// directory. Across data directories on one machine, blocks are claimed in a registry file
/// (`TaskAccounts.Registry`, `/var/lib/bookend/task-uid-blocks`): a block another data directory
/// claimed is not taken again, so two daemons (or a daemon and `bookend sample`) never hand their
/// tasks the same uid. Before it, each picked at random: about 1 chance in 12,288 per pair of sharing
/// a block, and the test suite, with hundreds of engines at once, met that several times a run.
enum TaskAccounts {
    static let blockSize: UInt32 = 65_536

    /// Where blocks come from, preferred first: far above regular users and the subordinate ids that
    /// `useradd` hands out from 100000; then systemd's DynamicUser range, for user namespaces (rootless
    /// containers) that map only the first 65536 uids.
    static let candidateRanges: [ClosedRange<UInt32>] = [0x4000_0000...0x6FFF_FFFF, 61_184...65_519]

    /// The first candidate range that this process's user namespace maps in full for uids and gids
    /// (a uid outside the map cannot be switched to), or nil.
    static func usableRange() -> ClosedRange<UInt32>? {
        let uids = mappedRanges("/proc/self/uid_map")
        let gids = mappedRanges("/proc/self/gid_map")
        func maps(_ mapped: [ClosedRange<UInt64>], _ candidate: ClosedRange<UInt32>) -> Bool {
            mapped.contains { $0.contains(UInt64(candidate.lowerBound)) && $0.contains(UInt64(candidate.upperBound)) }
        }
        return candidateRanges.first(where: { maps(uids, $0) && maps(gids, $0) })
    }

    /// The ids usable inside this namespace, from `/proc/self/{uid,gid}_map` (`inside outside count`
    /// per line). Without the file (no user namespaces) every id is usable.
    private static func mappedRanges(_ path: String) -> [ClosedRange<UInt64>] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [0...UInt64(UInt32.max)] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).compactMap { UInt64($0) }
            guard fields.count == 3, fields[2] > 0 else { return nil }
            return fields[0]...(fields[0] + fields[2] - 1)
        }
    }

    /// The name tasks see in `USER` and `AZ_BATCH_TASK_USER` for a reserved uid.
    static func name(_ uid: UInt32) -> String { "bookend-\(uid)" }

    /// The machine-wide record of claimed uid blocks: one line per claim, `<first uid> <data directory>`,
    /// appended under an exclusive `flock`. Read and written only as root (only root hands out task
    /// accounts). A claim is never given back: a block whose data directory is gone may still own
    /// files (in `/tmp`, say), and 12,288 blocks last a long time.
    struct Registry: Sendable {
        var path: String
        /// For the claim's line: which data directory holds the block.
        var dataDirectory: String

        static let defaultPath = "/var/lib/bookend/task-uid-blocks"

        /// Runs `choose` with the blocks claimed so far, under the registry's lock, and records the
        /// block it answers. Throws when the registry cannot be opened or written.
        func claim(_ choose: (Set<UInt32>) throws -> UInt32) throws -> UInt32 {
            let folder = Paths.folder(containing: path)
            if mkdir(folder, 0o755) != 0, errno != EEXIST {
                throw BookendError.internalError("cannot create \(folder) for the uid block registry: \(String(cString: strerror(errno)))")
            }
            let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw BookendError.internalError("cannot open the uid block registry \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else { throw BookendError.internalError("cannot lock \(path): \(String(cString: strerror(errno)))") }
            }
            var claimed: Set<UInt32> = []
            var text = Data()
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(text.count)) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                text.append(contentsOf: buffer[..<count])
            }
            for line in String(decoding: text, as: UTF8.self).split(separator: "\n") {
                if let first = line.split(separator: " ", maxSplits: 1).first, let start = UInt32(first) { claimed.insert(start) }
            }
            let start = try choose(claimed)
            let line = Array("\(start) \(dataDirectory)\n".utf8)
            let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == line.count, fsync(fd) == 0 else {
                throw BookendError.internalError("cannot write the uid block registry \(path): \(String(cString: strerror(errno)))")
            }
            return start
        }
    }

    /// Hands out the next unused uid (inside the caller's transaction). A new block is claimed in
    /// `registry` when one is given (see `Registry`); when it cannot be used, the block is picked as
    /// before it existed (random, unused in this data directory), and `warn` says why.
    static func allocate(_ db: Connection, range: ClosedRange<UInt32>, registry: Registry? = nil,
                         warn: (String) -> Void = { _ in }) throws -> UInt32 {
        let size = min(blockSize, range.upperBound - range.lowerBound + 1)
        let block = try SettingStore.value(db, "task_uid_block").flatMap { UInt32($0) }
        let next = try SettingStore.value(db, "task_uid_next").flatMap { UInt32($0) }
        if let block, let next, range.contains(block), next >= block, next - block < size {
            try store(db, block: block, next: next + 1)
            return next
        }
        let blocks = (range.upperBound - range.lowerBound + 1) / size
        func unusedHere(_ start: UInt32) throws -> Bool {
            try db.scalar(
                """
                SELECT EXISTS (SELECT 1 FROM pool WHERE uid BETWEEN ?1 AND ?2)
                    OR EXISTS (SELECT 1 FROM task WHERE uid BETWEEN ?1 AND ?2)
                    OR EXISTS (SELECT 1 FROM execution WHERE uid BETWEEN ?1 AND ?2)
                """, [Int64(start), Int64(start + (size - 1))]).int == 0
        }
        // A block unused here and, when `claimed` is given, claimed by no data directory; nil when
        // there is none. Random tries first (the common case: few blocks are claimed), then every
        // block in a random order (many are: random tries would miss the few left).
        func pick(avoiding claimed: Set<UInt32>?) throws -> UInt32? {
            for _ in 0..<64 {
                let start = range.lowerBound + UInt32.random(in: 0..<blocks) * size
                if claimed?.contains(start) == true { continue }
                if try unusedHere(start) { return start }
            }
            for index in (0..<blocks).shuffled() {
                let start = range.lowerBound + index * size
                if claimed?.contains(start) == true { continue }
                if try unusedHere(start) { return start }
            }
            return nil
        }
        var chosen: UInt32?
        if let registry {
            do {
                chosen = try registry.claim { claimed in
                    if let free = try pick(avoiding: claimed) { return free }
                    // The range holds few blocks (a namespace mapping only 65536 uids has one): share.
                    warn("every uid block tried is claimed by another data directory in \(registry.path); this one may share uids with it")
                    guard let any = try pick(avoiding: nil) else { throw exhausted(range) }
                    return any
                }
            } catch let error as BookendError where error.code == "TaskAccountsExhausted" {
                throw error
            } catch {
                warn("\(error); the uid block is picked at random, and another data directory on this machine may hold it too")
            }
        }
        guard let start = try chosen ?? pick(avoiding: nil) else { throw exhausted(range) }
        try store(db, block: start, next: start + 1)
        return start
    }

    private static func exhausted(_ range: ClosedRange<UInt32>) -> BookendError {
        BookendError(.internalError, "TaskAccountsExhausted",
            "no block of unused uids is left in \(range.lowerBound)...\(range.upperBound) for this data directory")
    }

    private static func store(_ db: Connection, block: UInt32, next: UInt32) throws {
        for (name, value) in [("task_uid_block", block), ("task_uid_next", next)] {
            try SettingStore.set(db, name, String(value))
        }
    }
}

extension Engine {
    /// A uid for a new account, from this data directory's block or a new one claimed machine-wide.
    private func allocateAccount(_ db: Connection, range: ClosedRange<UInt32>) throws -> UInt32 {
        let registry = configuration.taskUIDRegistry.map { TaskAccounts.Registry(path: $0, dataDirectory: dataDirectory) }
        return try TaskAccounts.allocate(db, range: range, registry: registry) { logger.warning("task accounts: \($0)") }
    }

    /// Chooses and records the account an execution runs as (inside `beginExecution`'s transaction):
    /// nil for admin work and when the engine is not root, else the pool's account (scope `pool`) or
    /// the task's own (scope `task`; a preparation, release or start task with scope `task` gets a new
    /// one per execution, as it has no row of its own to keep it in).
    func assignAccount(_ db: Connection, executionPK: Int64, kind: String, nodePK: Int64, jobPK: Int64?, taskPK: Int64?) throws {
        guard isRoot, let range = accountRange else { return }
        guard let pool = try db.query(
            "SELECT p.pk, p.uid, p.start_task FROM node n JOIN pool p ON p.pk = n.pool_pk WHERE n.pk = ?", [nodePK]).first
        else { return }
        // A stored spec that does not decode throws (naming its column): it must never fall back to
        // the default identity.
        let identity: UserIdentity?
        guard let executionKind = ExecutionKind(rawValue: kind) else { throw BookendError.internalError("execution kind \(kind)") }
        switch executionKind {
        case .task:
            identity = try db.query("SELECT pk, spec FROM task WHERE pk = ?", [taskPK]).first
                .flatMap { try StoredTaskSpec.decode($0, "spec", table: "task") }?.userIdentity
        case .preparation:
            identity = try db.query("SELECT pk, job_preparation_task FROM job WHERE pk = ?", [jobPK]).first?
                .json(JobPreparationTask.self, "job_preparation_task", table: "job")?.userIdentity
        case .release:
            identity = try db.query("SELECT pk, job_release_task FROM job WHERE pk = ?", [jobPK]).first?
                .json(JobReleaseTask.self, "job_release_task", table: "job")?.userIdentity
        case .start:
            identity = try pool.json(StartTask.self, "start_task", table: "pool")?.userIdentity
        }
        let resolved = identity ?? .nonAdmin
        if resolved.isAdmin { return }
        let uid: Int64
        if resolved.isTaskScope {
            if kind == "task", let taskPK {
                if let existing = try db.scalar("SELECT uid FROM task WHERE pk = ?", [taskPK]).int64 {
                    uid = existing
                } else {
                    uid = Int64(try allocateAccount(db, range: range))
                    try TaskStore.setAccount(db, pk: taskPK, uid: uid)
                }
            } else {
                uid = Int64(try allocateAccount(db, range: range))
            }
        } else if let existing = pool["uid"].int64 {
            uid = existing
        } else {
            uid = Int64(try allocateAccount(db, range: range))
            try PoolStore.setAccount(db, pk: pool.int64("pk", table: "pool"), uid: uid)
        }
        try ExecutionStore.setAccount(db, pk: executionPK, uid: uid)
    }
}
