import CBeneath
import Foundation
import Synchronization

/// Task folders made ahead of time, per node (`<node>/volatile/spare-tasks/t<n>`, each with `wd/`,
/// `certs/`, an empty `stdout.txt` and `stderr.txt`), and moved into place by one `rename` when a
/// task, preparation, release or start task launches there for the first time.
///
/// Why: a launch made the task's folder, `wd/` and `certs/`, and the command's process created
/// `stdout.txt` and `stderr.txt`: five new inodes between the dispatch commit and the command's
/// `exec`. On ext4 shortly after deletions (a finished job's folders), each allocation steps over the
/// recently freed inodes, and on the journal-less `/var/tmp` of this machine those five took about
/// 1.1 ms of a 3 ms submit → start (docs/performance.md, "Where a submitted task's time goes"). Made
/// after the launch instead, for the next one, they leave that path; what is left on it is a
/// `rename` and, for a task account, one `fchown` per inode (no allocation).
///
/// Why it is safe:
/// - `spare-tasks` is the engine's, mode 0700, inside `volatile/` (the engine's, 0755): no task
///   account can enter it, so nothing a task did can be in a spare tree. Each tree is made by this
///   engine (root or not), with modes 0700 (folders) and 0600 (files), exactly as a launch makes them.
/// - A tree is moved only onto a name that does not exist (`RENAME_NOREPLACE`): a folder an earlier
///   attempt left (a retry, a rerun after a reboot) is never replaced; that launch makes or reuses
///   its folders as before (`NodeFolders.descend`), and the spare stays for the next one.
/// - The destination's parent is opened beneath the node root without following links
///   (`NodeFolders.makeParent`), and the new folder's inodes are given to the task account children
///   first, the folder itself last, so until the last `fchown` only the engine can enter it.
/// - A crash leaves spare trees nobody knows about: `reconcile` removes `spare-tasks` on every start,
///   as it does `spare-status`.
///
/// Trees are made on a serial queue of the pool's own, not on the engine's thread. Why: the engine's
/// thread is the one every task passes through, and making five inodes is the costliest thing it did
/// per task: a third of it with nothing freed recently, three fifths shortly after deletions (ext4's
/// `recently_deleted` scan, see above), while the other core sat idle a third of the time
/// (docs/performance.md, "Changes of 2026-12-03"). The engine's thread only takes ready trees and
/// asks for more; a launch that finds none makes its folders itself, as before.
///
/// A deleted job's task folders are kept as spares too, instead of removed (`reclaim`). Why: removing
/// a 10,000-task job frees 50,000 inodes, and on journal-less ext4 every inode allocated in the next
/// one to six minutes steps over the recently freed ones: the next job's refills then took a fifth of
/// all CPU and the job ran at 0.6 of the first one's rate (docs/performance.md, "What bounds each
/// figure", History).
///
/// Why it is safe: a kept tree is handed only to a launch that runs as the account that owns it
/// already, so nothing that account could have done to it (an open descriptor kept by a process that
/// outlived its task, a link, an ACL) reaches anything it could not reach anyway: a later folder of
/// the same account is its own. Trees of task-scoped accounts (never given out twice) are therefore
/// removed, as before. Before a tree is kept, every inode in it is checked through a descriptor
/// opened without following links (kind, owner, one link per file), `wd/` and `certs/` emptied, the
/// files truncated and the modes and ACLs set back (`bk_reset_task_tree`); anything else is removed.
final class TaskFolderPool: Sendable {
    /// What a task folder holds from its launch on, whether it was made ahead or at the launch.
    static let folders = ["wd", "certs"]
    static let files = ["stdout.txt", "stderr.txt"]

    /// Spare trees kept per node. Zero keeps none: every launch makes its folders (as before), so the
    /// two can be measured against each other (`BOOKEND_TASK_FOLDER_POOL_OFF=1`), and a umask that
    /// takes the owner's own bits away (modes could not be what a launch sets) keeps none either.
    let capacity: Int
    /// Reclaimed trees kept per node at most; the rest of a deleted job's folders are removed.
    let reclaimLimit: Int
    /// How long a reclaimed tree no launch took is kept before it is removed.
    let reclaimedLifetime: Duration

    /// Who owns a tree's inodes.
    struct Owner: Hashable {
        var uid: uid_t
        var gid: gid_t
    }

    /// A reclaimed tree in `spare-tasks`, and when it was put there.
    struct Reclaimed {
        var name: String
        var at: ContinuousClock.Instant
    }

    /// What the engine's thread (taking trees) and the queue (adding them) share.
    private struct State {
        /// Node root → names of the ready trees in its `spare-tasks`, as this engine made them.
        var spares: [String: [String]] = [:]
        /// Node roots where a spare tree cannot be made or moved (no `volatile/`, a file system without
        /// `RENAME_NOREPLACE`): their launches make their folders, without trying again each time.
        var unusable: Set<String> = []
        /// Node roots with a refill queued or running: asking again meanwhile queues nothing more.
        var filling: Set<String> = []
        /// Node root → owner → reclaimed trees in its `spare-tasks`, newest last.
        var reclaimed: [String: [Owner: [Reclaimed]]] = [:]
        /// A removal of stale reclaimed trees is queued.
        var sweepQueued = false
        /// The engine stopped: a sweep due later does nothing (the data directory may be gone).
        var stopped = false
        var made = 0
    }
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "bookend.spare-task-folders")

    init(capacity: Int, reclaimLimit: Int = 8_192, reclaimedLifetime: Duration = .seconds(600)) {
        self.capacity = Self.umaskKeepsOwnerBits() ? capacity : 0
        self.reclaimLimit = reclaimLimit
        self.reclaimedLifetime = reclaimedLifetime
    }

    /// `<node>/volatile/spare-tasks`.
    static func spareFolder(ofNodeRoot root: String) -> String {
        (root as NSString).appendingPathComponent("volatile/spare-tasks")
    }

    /// Moves a spare tree of `nodeRoot` to the name `leaf` in the folder `parent` and gives its inodes
    /// to `owner` (nil: they stay the engine's). Returns the placed folder's descriptor (the caller
    /// closes it), or nil when no tree was placed: none is ready, or something is at `leaf` already.
    ///
    /// A tree this account left (a deleted job's, `reclaim`) is taken first: it is the account's
    /// already, so it needs no `fchown`, and taking it allocates nothing.
    func take(nodeRoot: String, into parent: Int32, _ leaf: String, path: String, owner: (uid: uid_t, gid: gid_t)?) throws -> Int32? {
        guard capacity > 0 else { return nil }
        let account = Owner(uid: owner?.uid ?? geteuid(), gid: owner?.gid ?? getegid())
        for kept in [true, false] {
            while let name = state.withLock({ s -> String? in
                guard !s.unusable.contains(nodeRoot) else { return nil }
                return kept ? s.reclaimed[nodeRoot]?[account]?.popLast()?.name : s.spares[nodeRoot]?.popLast()
            }) {
                let tree = Self.spareFolder(ofNodeRoot: nodeRoot) + "/" + name
                if bk_rename_noreplace(AT_FDCWD, tree, parent, leaf) != 0 {
                    switch errno {
                    case EEXIST, ENOTEMPTY:
                        // The launch's folder exists (an earlier attempt's): it is reused, not replaced.
                        state.withLock {
                            if kept {
                                $0.reclaimed[nodeRoot, default: [:]][account, default: []].append(Reclaimed(name: name, at: .now))
                            } else {
                                $0.spares[nodeRoot, default: []].append(name)
                            }
                        }
                        return nil
                    case ENOENT:
                        continue  // gone with its node's folders
                    default:
                        // No RENAME_NOREPLACE here, or another file system: make folders from now on.
                        state.withLock { _ = $0.unusable.insert(nodeRoot) }
                        _ = bk_remove_at(AT_FDCWD, tree)
                        return nil
                    }
                }
                let folder = openat(parent, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard folder >= 0 else {
                    throw NodeFolders.UnsafeFolder(path: path, reason: "cannot open the folder just placed (\(String(cString: strerror(errno))))")
                }
                // A tree made ahead is the engine's: only another account needs the fchowns.
                if !kept, let owner, owner.uid != geteuid() || owner.gid != getegid() {
                    for name in Self.folders + Self.files where fchownat(folder, name, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0 {
                        let reason = String(cString: strerror(errno))
                        close(folder)
                        throw NodeFolders.UnsafeFolder(path: path + "/" + name, reason: "cannot change the owner (\(reason))")
                    }
                    if fchown(folder, owner.uid, owner.gid) != 0 {
                        let reason = String(cString: strerror(errno))
                        close(folder)
                        throw NodeFolders.UnsafeFolder(path: path, reason: "cannot change the owner (\(reason))")
                    }
                }
                return folder
            }
        }
        return nil
    }

    /// Asks for spare trees for `nodeRoot` until `capacity` are ready, made on the pool's queue. Called
    /// after a pass's launches, off the path between a dispatch and its command's start.
    func refill(nodeRoot: String) {
        guard capacity > 0 else { return }
        let queued = state.withLock { s -> Bool in
            guard !s.unusable.contains(nodeRoot), (s.spares[nodeRoot]?.count ?? 0) < capacity, !s.filling.contains(nodeRoot) else { return false }
            s.filling.insert(nodeRoot)
            return true
        }
        guard queued else { return }
        queue.async { [self] in
            fill(nodeRoot)
            state.withLock { _ = $0.filling.remove(nodeRoot) }
        }
    }

    /// On the queue: makes trees until `capacity` are ready (counting those taken meanwhile).
    private func fill(_ nodeRoot: String) {
        let spare = Self.spareFolder(ofNodeRoot: nodeRoot)
        if state.withLock({ $0.spares[nodeRoot] == nil }) {
            // First use in this engine's life (`reconcile` removed what an earlier one made). No
            // parents: a node whose `volatile/` is gone (it left its pool) gets no spares.
            guard mkdir(spare, 0o700) == 0 || errno == EEXIST else {
                state.withLock { _ = $0.unusable.insert(nodeRoot) }
                return
            }
            state.withLock { $0.spares[nodeRoot] = $0.spares[nodeRoot] ?? [] }
        }
        while let name = state.withLock({ s -> String? in
            guard !s.unusable.contains(nodeRoot), s.spares[nodeRoot, default: []].count < capacity else { return nil }
            s.made += 1
            return "t\(s.made)"
        }) {
            guard Self.makeTree(spare + "/" + name) else {
                // `spare-tasks` itself gone (removed by hand, say): made again by the next refill.
                if errno == ENOENT, access(spare, F_OK) != 0 { state.withLock { $0.spares[nodeRoot] = nil } }
                _ = bk_remove_at(AT_FDCWD, spare + "/" + name)
                return
            }
            state.withLock { $0.spares[nodeRoot, default: []].append(name) }
        }
    }

    /// Removes the folder of a node that left its pool, spares included, on the pool's queue: after any
    /// tree being made there (so none appears after the removal) and off the engine's thread (a pool
    /// resized from 1,000 nodes to none removes 1,000 trees). The root is marked unusable first, so
    /// no later refill or reclaim makes anything in it again.
    func removeNodeRoot(_ nodeRoot: String) {
        state.withLock {
            _ = $0.unusable.insert(nodeRoot)
            $0.spares[nodeRoot] = nil
            $0.reclaimed[nodeRoot] = nil
        }
        queue.async {
            FileAccess.removeTree(atPath: nodeRoot)
        }
    }

    /// Waits until no tree is being made or reclaimed: before the spare folders are removed.
    func settle() {
        queue.sync {}
    }

    /// When the engine stops (its data directory may be removed next): what is queued finishes, and
    /// a removal of stale reclaimed trees due later does nothing.
    func stop() {
        state.withLock { $0.stopped = true }
        settle()
    }

    /// Forgets every spare tree; the caller removes them from disk next. Trees being made are
    /// finished first, so none appears after that removal.
    func forgetAll() {
        settle()
        state.withLock {
            $0.spares.removeAll()
            $0.reclaimed.removeAll()
            $0.unusable.removeAll()
        }
    }

    /// Takes the folder of a deleted job (`<node>/workitems/<job>`) out of the node's work items by one
    /// `rename` into `spare-tasks` and, on the pool's queue, keeps those of its task folders that
    /// `owners` own as spares for those accounts' next launches (see the type's comment) and removes
    /// the rest. `owners` are the accounts that can launch on this node again (the engine's own, the
    /// pool's account, root for admin work), never a task-scoped one. Returns false when
    /// it took nothing (no spares on this node in this engine's life, a rename that failed): the
    /// caller then removes the folder itself, as before. A crash leaves the moved folder in
    /// `spare-tasks`, which `reconcile` removes.
    func reclaim(nodeRoot: String, jobFolder: String, owners: Set<Owner>) -> Bool {
        guard capacity > 0, reclaimLimit > 0, !owners.isEmpty else { return false }
        guard let name = state.withLock({ s -> String? in
            guard !s.stopped, !s.unusable.contains(nodeRoot), s.spares[nodeRoot] != nil else { return nil }
            s.made += 1
            return "j\(s.made)"
        }) else { return false }
        let spare = FileDescriptor(open(Self.spareFolder(ofNodeRoot: nodeRoot), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
        guard spare.rawValue >= 0 else { return false }
        guard bk_rename_noreplace(AT_FDCWD, jobFolder, spare.rawValue, name) == 0 else {
            // Nothing at `jobFolder`: nothing to remove either.
            return errno == ENOENT
        }
        queue.async { [self] in
            keepTrees(nodeRoot, spare, name, owners: owners)
            _ = bk_remove_at(spare.rawValue, name)
        }
        return true
    }

    /// On the queue: the task folders of the moved job folder `name` (`job-1/<task>`) in `spare` (the
    /// node's `spare-tasks`) become reclaimed spares, up to `reclaimLimit` for the node.
    private func keepTrees(_ nodeRoot: String, _ spare: FileDescriptor, _ name: String, owners: Set<Owner>) {
        let job = FileDescriptor(openat(spare.rawValue, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
        guard job.rawValue >= 0 else { return }
        var kept = 0
        for (group, _) in FileAccess.entries(job) {
            let folder = FileDescriptor(openat(job.rawValue, group, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))
            guard folder.rawValue >= 0 else { continue }
            for (task, info) in FileAccess.entries(folder) {
                guard state.withLock({ !$0.stopped && Self.count($0.reclaimed[nodeRoot]) < reclaimLimit }) else { break }
                // Another account's folder is not even reset: it goes with the job's folder.
                guard owners.contains(Owner(uid: info.st_uid, gid: info.st_gid)) else { continue }
                var uid: uid_t = 0
                var gid: gid_t = 0
                guard bk_reset_task_tree(folder.rawValue, task, &uid, &gid) == 0, owners.contains(Owner(uid: uid, gid: gid)) else { continue }
                let tree = state.withLock { s -> String in
                    s.made += 1
                    return "r\(s.made)"
                }
                guard bk_rename_noreplace(folder.rawValue, task, spare.rawValue, tree) == 0 else { continue }
                state.withLock { $0.reclaimed[nodeRoot, default: [:]][Owner(uid: uid, gid: gid), default: []].append(Reclaimed(name: tree, at: .now)) }
                kept += 1
            }
        }
        if kept > 0 { scheduleSweep() }
    }

    /// How many reclaimed trees a node has, whoever owns them.
    private static func count(_ owners: [Owner: [Reclaimed]]?) -> Int {
        owners?.values.reduce(0) { $0 + $1.count } ?? 0
    }

    /// Removes, on the queue, reclaimed trees no launch took within `reclaimedLifetime`: they hold
    /// disk space (three folder blocks each) the deleted job's owner expected to get back.
    private func scheduleSweep() {
        guard state.withLock({ s -> Bool in
            guard !s.sweepQueued, !s.stopped else { return false }
            s.sweepQueued = true
            return true
        }) else { return }
        queue.asyncAfter(deadline: .now() + DispatchTimeInterval(reclaimedLifetime)) { [self] in
            let cutoff = ContinuousClock.now - reclaimedLifetime
            let (stale, more) = state.withLock { s -> ([(String, String)], Bool) in
                s.sweepQueued = false
                guard !s.stopped else { return ([], false) }
                var stale: [(String, String)] = []
                for (root, owners) in s.reclaimed {
                    for (owner, trees) in owners {
                        let keep = trees.filter { $0.at > cutoff }
                        stale += trees.filter { $0.at <= cutoff }.map { (root, $0.name) }
                        s.reclaimed[root]?[owner] = keep.isEmpty ? nil : keep
                    }
                }
                return (stale, s.reclaimed.values.contains { Self.count($0) > 0 })
            }
            Self.remove(stale)
            if more { scheduleSweep() }
        }
    }

    /// Removes every reclaimed tree now (they are only a cache of inodes) and returns how many: what
    /// disk pressure gives back before any execution's folder.
    func dropReclaimed() -> Int {
        queue.sync {
            let dropped = state.withLock { s -> [(String, String)] in
                let all = s.reclaimed.flatMap { root, owners in owners.values.flatMap { $0.map { (root, $0.name) } } }
                s.reclaimed.removeAll()
                return all
            }
            Self.remove(dropped)
            return dropped.count
        }
    }

    /// Removes reclaimed trees, each named by its node root and its name in that node's `spare-tasks`.
    private static func remove(_ trees: [(root: String, name: String)]) {
        for (root, name) in trees { _ = bk_remove_at(AT_FDCWD, spareFolder(ofNodeRoot: root) + "/" + name) }
    }

    private static func makeTree(_ path: String) -> Bool {
        guard mkdir(path, 0o700) == 0 else { return false }
        let tree = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard tree >= 0 else { return false }
        defer { close(tree) }
        for name in folders where mkdirat(tree, name, 0o700) != 0 { return false }
        for name in files {
            let fd = openat(tree, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return false }
            close(fd)
        }
        return true
    }

    /// Whether the process's umask leaves the owner's bits alone (every umask in use does: 022, 027,
    /// 077), read from /proc so that no other thread ever sees a changed umask.
    private static func umaskKeepsOwnerBits() -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Umask:") }),
            let mask = mode_t(line.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8)
        else { return false }
        return mask & 0o700 == 0
    }
}
