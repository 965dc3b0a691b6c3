import Foundation

/// The status folders of executions (`<node>/volatile/executions/<pk>-<nonce>`, where the shim writes
/// `pid` and `exit`), recycled instead of made and removed once per execution.
///
/// Why: every `mkdir` of a new folder allocates a directory inode, and on ext4 finding one (the
/// inode bitmap searched past recently freed ones: `find_inode_bit`, `recently_deleted`) was the
/// largest kernel cost of a launch in the throughput profile. So a folder whose execution's exit is
/// recorded is emptied of everything but its two kept files (see `kept`) and renamed to
/// `<node>/volatile/spare-status/<its name>`, and the next launch on that node renames it to its own
/// status folder path: one `rename` each way, the same inodes.
/// Owner (the engine) and mode (0700, as the supervisor made it) travel with the inode, so no task
/// account can enter a recycled folder, exactly as it could not enter a new one; `spare-status`
/// itself is the engine's, mode 0700.
///
/// Why reuse is safe: a status folder's path (key and nonce) is never handed out twice, and a path
/// reaches a folder only while the folder has that name. A shim still alive when its folder was
/// retired (its task was deleted before its launch was stored, say) resolves its files by its old
/// path, which no longer exists once the folder moved, so it cannot write into the next execution's
/// folder. An `exit`, `pid` or `step-exit` such a shim created an instant before the move is removed
/// when the folder is taken (that removal is the only one: the launch tells the supervisor so,
/// `LaunchRequest.statusDirectoryPrepared`, and it skips its own); what it left in a kept `exit.tmp`
/// or `pid.tmp` is truncated by the next shim before it writes, and only `exit` and `pid` are ever
/// read.
struct StatusFolderPool {
    /// What the shim (and a Slurm step) write in a status folder; nothing else ever is.
    let files: [String]
    /// Spare folders kept per node. Beyond that a retired folder is removed, as before, so a burst of
    /// parallel work does not leave thousands behind.
    let capacity: Int
    /// Spare folder path → the names of the folders in it, as this engine put them there.
    private var spares: [String: [String]] = [:]

    init(files: [String], capacity: Int = 64) {
        self.files = files
        self.capacity = capacity
    }

    /// `<node>/volatile/spare-status`, for the status folder `<node>/volatile/executions/<name>`.
    ///
    /// By the last two slashes, not through `NSString`'s path methods: this runs twice per execution on
    /// the engine's thread, and those (which also tidy slashes and bridge the string) were 4 % of that
    /// thread's time in the throughput profile. Status folder paths are made by the engine, absolute
    /// and without trailing or doubled slashes.
    static func spareFolder(of statusDirectory: String) -> String {
        let (executions, _) = split(statusDirectory)
        return split(executions).parent + "/spare-status"
    }

    /// `path` before and after its last slash ("" and `path` when it has none).
    static func split(_ path: String) -> (parent: String, name: String) {
        let utf8 = path.utf8
        guard let slash = utf8.lastIndex(of: UInt8(ascii: "/")) else { return ("", path) }
        return (String(path[..<slash]), String(path[utf8.index(after: slash)...]))
    }

    /// Empties the status folder of an execution whose exit is recorded (but for the kept files) and
    /// keeps it for the next launch on its node. False when it cannot be kept (something other than the protocol's files is
    /// in it, its node's folders are gone, enough spares are kept): the caller removes it.
    mutating func retire(_ directory: String) -> Bool {
        guard capacity > 0 else { return false }
        for name in files where !keepsInode(name, in: directory) && unlink(directory + "/" + name) != 0 && errno != ENOENT {
            return false
        }
        let spare = Self.spareFolder(of: directory)
        if spares[spare] == nil {
            // First use in this engine's life (`reconcile` removed what an earlier one kept).
            guard mkdir(spare, 0o700) == 0 || errno == EEXIST else { return false }
            spares[spare] = []
        }
        guard spares[spare, default: []].count < capacity else { return false }
        let name = Self.split(directory).name
        // The target name is new (status folder names are never reused): nothing is replaced.
        guard rename(directory, spare + "/" + name) == 0 else { return false }
        spares[spare, default: []].append(name)
        return true
    }

    /// Gives `directory`, the status folder of an execution about to launch, a kept folder of its
    /// node. False when none is kept: the supervisor makes the folder.
    mutating func take(_ directory: String) -> Bool {
        let spare = Self.spareFolder(of: directory)
        while let name = spares[spare]?.popLast() {
            let folder = spare + "/" + name
            if rename(folder, directory) == 0 {
                // The kept `exit.tmp` and `pid.tmp` stay: the shim truncates them when it opens them.
                for file in files where !Self.kept.values.contains(file) { unlink(directory + "/" + file) }
                return true
            }
            // Gone with its node, or something is in the way: not used again.
            if errno != ENOENT { StatusFolderPool.remove(folder, files: files) }
        }
        return false
    }

    /// The shim writes `exit` and `pid` as `exit.tmp` and `pid.tmp` (truncated on open) and renames
    /// them into place. A retired folder's `exit` and `pid` are renamed back to those names instead of
    /// unlinked, so the next execution's shim writes into the same inodes. Why: on ext4 without a
    /// journal, every inode freed in the last seconds is stepped over, one block read each, by every
    /// later allocation in its group (`recently_deleted` in `find_inode_bit`); two unlinks per
    /// execution made every `mkdir` and file creation of a busy node slower the busier it was.
    static let kept = ["exit": "exit.tmp", "pid": "pid.tmp"]

    /// Renames `name` to its kept name when it is one of the two kept files (true when that is done,
    /// or when it is the kept name itself, which stays); false for a file that must be unlinked.
    private func keepsInode(_ name: String, in directory: String) -> Bool {
        if Self.kept.values.contains(name) { return true }
        guard let tmp = Self.kept[name] else { return false }
        // A leftover tmp (the shim died between writing and renaming it) is replaced: that frees it.
        return rename(directory + "/" + name, directory + "/" + tmp) == 0 || errno == ENOENT
    }

    /// Forgets every kept folder (they were removed from disk).
    mutating func forgetAll() { spares.removeAll() }

    /// Removes a status folder and the protocol's files in it; anything else put there is left to
    /// whole-folder removal.
    static func remove(_ directory: String, files: [String]) {
        for name in files { unlink(directory + "/" + name) }
        if rmdir(directory) != 0, errno != ENOENT {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}
