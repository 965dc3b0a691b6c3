import Foundation
import SQLite

/// Online backups of a data directory's database, and restoring one into a new data directory.
///
/// A backup needs no lock on the data directory: it reads one snapshot through a read-only
/// connection, which in WAL mode never blocks the running engine's writer (see
/// `Connection.backup(into:)`). Node folders are not part of it: what ran in them is either recorded
/// in the database or lost, and a restore treats it as lost.
public enum Backup {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// What `backup` wrote.
    public struct Report: Sendable {
        public let source: String
        public let destination: String
        public let bytes: UInt64
        public let pages: Int
        public let schemaVersion: Int
        /// `PRAGMA integrity_check` of the copy: `["ok"]`.
        public let integrity: [String]
    }

    /// Copies `<dataDirectory>/bookend.db` to `destination` while an engine may be running there:
    /// into `<destination>.partial` first (mode 0600: it holds command lines and environment
    /// settings), in steps of `pagesPerStep` pages, as a single file (journal mode DELETE, no `-wal`),
    /// fsynced, checked with `PRAGMA integrity_check`, then renamed over `destination` and the folder
    /// fsynced. A copy that fails the check is removed and never replaces an earlier backup.
    public static func backup(
        dataDirectory: String, to destination: String, pagesPerStep: Int32 = 256,
        progress: (_ copied: Int, _ total: Int) -> Void = { _, _ in }
    ) throws -> Report {
        let source = DataDirectory.databasePath(dataDirectory)
        guard FileManager.default.fileExists(atPath: source) else { throw Failure("\(source): no database here") }
        // A folder (`--to .`, `--to /srv/backups`) is not where the copy goes: it is written next to
        // the destination and renamed over it, which failed with EBUSY after a whole copy.
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: destination, isDirectory: &isFolder), isFolder.boolValue {
            throw Failure("\(destination) is a folder: give the path of the backup file to write, such as \(destination == "/" ? "" : destination)/bookend-backup.db")
        }
        try refuseInsideDataDirectory(destination, dataDirectory: dataDirectory, source: source)
        let partial = destination + ".partial"
        unlink(partial)
        unlink(partial + "-journal")
        let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure("\(partial): cannot create (\(String(cString: strerror(errno))))") }
        close(fd)
        do {
            do {
                let reader = try Connection(path: source, options: ConnectionOptions(readOnly: true, create: false))
                let copy = try Connection(path: partial, options: ConnectionOptions(create: false))
                try reader.backup(into: copy, pagesPerStep: pagesPerStep, progress: progress)
                // One self-contained file: the copy's WAL is checkpointed into it and removed.
                try copy.execute("PRAGMA journal_mode = DELETE")
            }
            try sync(partial)
            let (integrity, version, pages) = try check(partial)
            guard integrity == ["ok"] else {
                throw Failure("\(partial): the copy failed PRAGMA integrity_check: \(integrity.prefix(5).joined(separator: "; "))")
            }
            guard rename(partial, destination) == 0 else {
                throw Failure("\(destination): cannot rename the copy into place (\(String(cString: strerror(errno))))")
            }
            try sync(Paths.folder(containing: destination))
            return Report(source: source, destination: destination, bytes: Engine.fileSize(destination), pages: pages,
                schemaVersion: version, integrity: integrity)
        } catch {
            unlink(partial)
            throw error
        }
    }

    /// Refuses a backup file inside the data directory, or one that is (by inode, through any name) the
    /// database, its `-wal` or its `-shm`. Why: the copy is renamed over `destination`, and renamed over
    /// `bookend.db` or its WAL it replaced the running daemon's files: the daemon went on writing to the
    /// unlinked inodes, acknowledged work that no later reader could see, and lost it at its next start.
    /// A backup inside the data directory would also go with the directory it is meant to outlive.
    static func refuseInsideDataDirectory(_ destination: String, dataDirectory: String, source: String) throws {
        let parent = Paths.folder(containing: destination)
        guard let folder = realpath(parent, nil) else {
            throw Failure("\(destination): its folder \(parent) cannot be resolved (\(String(cString: strerror(errno))))")
        }
        defer { free(folder) }
        let resolved = String(cString: folder) + "/" + (destination as NSString).lastPathComponent
        if let data = realpath(dataDirectory, nil) {
            defer { free(data) }
            let root = String(cString: data)
            if resolved == root || resolved.hasPrefix(root == "/" ? "/" : root + "/") {
                throw Failure("\(destination) is inside the data directory \(root): write the backup outside it "
                    + "(files there are the daemon's own, and a backup must outlive the directory)")
            }
        }
        var target = stat()
        guard stat(destination, &target) == 0 else { return }
        for file in [source, source + "-wal", source + "-shm"] {
            var info = stat()
            if stat(file, &info) == 0, info.st_dev == target.st_dev, info.st_ino == target.st_ino {
                throw Failure("\(destination) is \(file) (the same file by another name): write the backup to a new file")
            }
        }
    }

    /// `PRAGMA integrity_check`, the schema version and the page count of a database file, read-only.
    static func check(_ path: String) throws -> (integrity: [String], version: Int, pages: Int) {
        let connection = try Connection(path: path, options: ConnectionOptions(readOnly: true, create: false))
        return (try connection.integrityCheck(), try connection.userVersion(), try connection.scalar("PRAGMA page_count").int ?? 0)
    }

    /// Whether the database at `path` has Bookend's tables (any schema version), read-only.
    static func holdsBookendSchema(_ path: String) throws -> Bool {
        let connection = try Connection(path: path, options: ConnectionOptions(readOnly: true, create: false))
        let found = try connection.scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('pool', 'node', 'job', 'task', 'execution', 'event')").int
        return found == 6
    }

    /// fsync of a file or folder.
    static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure("\(path): cannot open to fsync (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw Failure("\(path): fsync failed (\(String(cString: strerror(errno))))") }
    }

    /// What `restore` did.
    public struct RestoreReport: Sendable {
        public let database: String
        public let schemaVersion: Int
        /// The node folders' directory the backup named, and the one the restored directory uses.
        public let previousNodesDirectories: [String]
        public let nodesDirectory: String
        /// Executions that were running (or starting) when the backup was taken: the engine that
        /// opens the restored directory treats each as lost with its node (requeued; preparation runs
        /// again on the node that next runs a task of its job).
        public let lostExecutions: Int
        public let nodes: Int
    }

    /// Places the backup `file` in the new data directory `dataDirectory` (which must not hold a
    /// database yet), ready for `Engine.open` or `bookend serve`.
    ///
    /// The processes the backed-up engine was running belong to the other data directory: none of
    /// them may be adopted or signalled from here, and none of their folders exist here. So node
    /// roots and execution folders are moved to `nodesDirectory` (default `<dataDirectory>/nodes`),
    /// empty node folders are created, and every execution that had not completed is given a
    /// process identity that names no process (pid 0): reconciling on open finds neither a live
    /// process nor an exit file and handles it as lost, which requeues its task. Each node counts a
    /// new boot, so preparation runs again before a job's next task there, as after a reboot.
    /// Completed executions stay completed and never run again. The restore is recorded as a
    /// `data-directory.restored` event.
    public static func restore(from file: String, dataDirectory: String, nodesDirectory: String? = nil) throws -> RestoreReport {
        guard FileManager.default.fileExists(atPath: file) else { throw Failure("\(file): no such backup") }
        let (integrity, _, _) = try check(file)
        guard integrity == ["ok"] else { throw Failure("\(file): the backup failed PRAGMA integrity_check: \(integrity.prefix(5).joined(separator: "; "))") }
        // SQLite reads an empty file, or /dev/zero, as an empty database that passes its checks: such a
        // "restore" made a fresh, empty data directory and reported success.
        guard try holdsBookendSchema(file) else {
            throw Failure("\(file) is not a Bookend backup: it holds no Bookend tables (make one with `bookend backup`)")
        }
        try DataDirectory.prepare(dataDirectory)
        let lock = try DataDirectoryLock(directory: dataDirectory)
        defer { lock.release() }
        let database = DataDirectory.databasePath(dataDirectory)
        guard !FileManager.default.fileExists(atPath: database) else {
            throw Failure("\(database) exists: restore into a new data directory (an existing one is never overwritten)")
        }
        try DataDirectory.makePrivate(database)
        do {
            let backup = try Connection(path: file, options: ConnectionOptions(readOnly: true, create: false))
            let target = try Connection(path: database, options: ConnectionOptions(create: false))
            try backup.backup(into: target)
        }
        let (connection, version) = try DataDirectory.openMigrated(dataDirectory)
        let absolute = dataDirectory.hasPrefix("/")
            ? dataDirectory : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(dataDirectory)
        let newNodes = Engine.absoluteNodesDirectory(nodesDirectory, dataDirectory: (absolute as NSString).standardizingPath)
        let previous = Set(try connection.query("SELECT root_dir FROM node").compactMap { $0[0].string }
            .map { Paths.parent(of: $0) }).sorted()
        let lost = try connection.transaction { db -> Int in
            for old in previous where old != newNodes {
                let prefix = old + "/"
                let length = prefix.unicodeScalars.count
                for (table, column) in [("node", "root_dir"), ("execution", "task_dir"), ("execution", "status_dir")] {
                    try db.run("UPDATE \(table) SET \(column) = ? || substr(\(column), ?) WHERE substr(\(column), 1, ?) = ?",
                        [newNodes + "/", length + 1, length, prefix])
                }
            }
            // Folders of deleted tasks not yet removed are the other data directory's (their paths name
            // its nodes): removing them from here could take a folder that engine uses again. The
            // nodes here start empty, so nothing of the deleted tasks is here to remove.
            try db.run("DELETE FROM task_folder_removal")
            // pid 0 is no process: `Supervisor.isAlive` is false for it and nothing signals it.
            let lost = try db.run("UPDATE execution SET pid = 0, pid_start_time = 0 WHERE state <> 'completed'")
            // The node folders here are new and empty, as after a node reboots: a new boot makes every
            // job's preparation run again before its next task on the node (unless the job's
            // preparation says rerunOnNodeRebootAfterSuccess = false), as Azure Batch does after a
            // reboot. No state changes, so no machine is asked and no event is due for the nodes.
            try db.run("UPDATE node SET boot_count = boot_count + 1, last_boot_time = ? WHERE removed_time IS NULL", [Timestamp.string(Date())])
            let detail = encodeJSON(["backup": file, "previousNodesDirectories": previous.joined(separator: ":"),
                "nodesDirectory": newNodes, "lostExecutions": "\(lost)"])
            _ = try EventLog.append(db, "data-directory.restored", detail: detail, now: Timestamp.string(Date()))
            return lost
        }
        let roots = try connection.query("SELECT root_dir FROM node WHERE removed_time IS NULL").compactMap { $0[0].string }
        for root in roots { try NodeFolders.makeNodeRoot(root) }
        return RestoreReport(database: database, schemaVersion: version, previousNodesDirectories: previous, nodesDirectory: newNodes,
            lostExecutions: lost, nodes: roots.count)
    }
}

extension NodeFolders {
    /// An empty node root with the folders a node has from boot (as the engine makes them when a
    /// node starts): engine-owned 0755, except `shared/`, which every task account writes (1777).
    static func makeNodeRoot(_ root: String) throws {
        let base = try openTrusted(Paths.parent(of: root))
        defer { close(base) }
        let engineOwned = Access(mode: 0o755, owner: nil)
        let node = try descend(base, (root as NSString).lastPathComponent, access: engineOwned, path: root)
        defer { close(node) }
        for folder in ["startup", "workitems", "volatile", "fsmounts", "applications"] {
            close(try descend(node, folder, access: engineOwned, path: root + "/" + folder))
        }
        close(try descend(node, "shared", access: Access(mode: 0o1777, owner: nil), path: root + "/shared"))
    }
}
