import Foundation
import SQLite

/// The accounts non-admin work runs as when the engine is root (Azure's `autoUser`): one per pool for
/// scope `pool`, one per task for scope `task`. Like systemd's DynamicUser, they are bare uids from a
/// reserved range with no `/etc/passwd` entry, gid = uid and no supplementary groups, so no account
/// database is touched and no task shares a uid with a login or a service.
///
/// A data directory takes a random block of `blockSize` uids and hands them out in order, recording
/// each in SQLite (`pool.uid`, `task.uid`, `execution.uid`); a used-up block is followed by another
/// random one that no recorded uid falls in. So a uid is never given to two owners within a data
/// directory. Two data directories on one machine pick their blocks independently: see
/// docs/security/isolation.md for the odds that they meet.
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

    /// Hands out the next unused uid (inside the caller's transaction).
    static func allocate(_ db: Connection, range: ClosedRange<UInt32>) throws -> UInt32 {
        let size = min(blockSize, range.upperBound - range.lowerBound + 1)
        let block = try SettingStore.value(db, "task_uid_block").flatMap { UInt32($0) }
        let next = try SettingStore.value(db, "task_uid_next").flatMap { UInt32($0) }
        if let block, let next, range.contains(block), next >= block, next - block < size {
            try store(db, block: block, next: next + 1)
            return next
        }
        let blocks = (range.upperBound - range.lowerBound + 1) / size
        for _ in 0..<64 {
            let start = range.lowerBound + UInt32.random(in: 0..<blocks) * size
            let end = start + (size - 1)
            let used = try db.scalar(
                """
                SELECT EXISTS (SELECT 1 FROM pool WHERE uid BETWEEN ?1 AND ?2)
                    OR EXISTS (SELECT 1 FROM task WHERE uid BETWEEN ?1 AND ?2)
                    OR EXISTS (SELECT 1 FROM execution WHERE uid BETWEEN ?1 AND ?2)
                """, [Int64(start), Int64(end)]).int ?? 1
            guard used == 0 else { continue }
            try store(db, block: start, next: start + 1)
            return start
        }
        throw BookendError(.internalError, "TaskAccountsExhausted",
            "no block of unused uids is left in \(range.lowerBound)...\(range.upperBound) for this data directory")
    }

    private static func store(_ db: Connection, block: UInt32, next: UInt32) throws {
        for (name, value) in [("task_uid_block", block), ("task_uid_next", next)] {
            try SettingStore.set(db, name, String(value))
        }
    }
}

extension Engine {
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
                    uid = Int64(try TaskAccounts.allocate(db, range: range))
                    try TaskStore.setAccount(db, pk: taskPK, uid: uid)
                }
            } else {
                uid = Int64(try TaskAccounts.allocate(db, range: range))
            }
        } else if let existing = pool["uid"].int64 {
            uid = existing
        } else {
            uid = Int64(try TaskAccounts.allocate(db, range: range))
            try PoolStore.setAccount(db, pk: pool.int64("pk", table: "pool"), uid: uid)
        }
        try ExecutionStore.setAccount(db, pk: executionPK, uid: uid)
    }
}
