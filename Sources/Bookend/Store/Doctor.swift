import Foundation
import SQLite

/// The checks behind `bookend doctor`: what is wrong with a data directory's set-up, each with a
/// one-line fix. Read-only: it opens the database read-only, takes no lock and changes no mode.
public enum Doctor {
    public enum Status: String, Sendable, Codable, Comparable {
        case ok = "OK", warn = "WARN", fail = "FAIL"

        private var rank: Int {
            switch self {
            case .ok: 0
            case .warn: 1
            case .fail: 2
            }
        }
        public static func < (lhs: Status, rhs: Status) -> Bool { lhs.rank < rhs.rank }
    }

    /// One line of the report. `fix` is empty when there is nothing to do.
    public struct Check: Sendable, Codable, Equatable {
        public let name: String
        public let status: Status
        public let detail: String
        public let fix: String

        init(_ name: String, _ status: Status, _ detail: String, fix: String = "") {
            self.name = name
            self.status = status
            self.detail = detail
            self.fix = fix
        }
    }

    /// What to check.
    public struct Options: Sendable {
        public var dataDirectory: String
        /// The account key file the daemon is given (`--key-file`); nil checks `<data-dir>/account.key` if it exists.
        public var keyFile: String?
        /// `--nodes-dir`; nil means `<data-dir>/nodes`.
        public var nodesDirectory: String?
        /// The free space the daemon keeps (`--min-free-disk`); nil checks against 5%.
        public var minFreeDisk: DiskSpace?
        /// Whether the check runs as root (the daemon's task accounts exist only then).
        public var asRoot: Bool
        /// The daemon's `--node-provider`. Slurm's commands are checked when it is `.slurm`, or when
        /// the data directory holds Slurm nodes.
        public var nodeProvider: NodeProviderKind
        /// The environment Slurm's commands are found and run with (PATH, SLURM_CONF).
        public var environment: [String: String]

        public init(dataDirectory: String, keyFile: String? = nil, nodesDirectory: String? = nil, minFreeDisk: DiskSpace? = nil,
            asRoot: Bool = geteuid() == 0, nodeProvider: NodeProviderKind = .local,
            environment: [String: String] = ProcessInfo.processInfo.environment) {
            self.dataDirectory = dataDirectory
            self.keyFile = keyFile
            self.nodesDirectory = nodesDirectory
            self.minFreeDisk = minFreeDisk
            self.asRoot = asRoot
            self.nodeProvider = nodeProvider
            self.environment = environment
        }
    }

    /// The free space `doctor` expects when `--min-free-disk` is not given.
    public static let defaultMinFreeDisk = DiskSpace.percent(5)
    /// Stored times further ahead of the clock than this mean the clock went back.
    static let clockTolerance: TimeInterval = 5
    /// A WAL larger than this means checkpoints cannot keep up (usually a long-lived reader).
    static let largeWAL: UInt64 = 256 * 1024 * 1024

    public static func run(_ options: Options) -> [Check] {
        let database = DataDirectory.databasePath(options.dataDirectory)
        var checks = [sqliteLibrary()]
        let connection: Connection?
        if !FileManager.default.fileExists(atPath: database) {
            checks.append(Check("database", .fail, "\(database) does not exist",
                fix: "bookend migrate --data-dir \(options.dataDirectory) (or start bookend serve there)"))
            connection = nil
        } else {
            do {
                connection = try Connection(path: database, options: ConnectionOptions(readOnly: true, create: false))
            } catch {
                checks.append(Check("database", .fail, "\(error)", fix: "restore the file from a backup (bookend restore)"))
                connection = nil
            }
        }
        if let connection {
            checks.append(journalMode(connection))
            checks.append(schemaVersion(connection))
            checks.append(clock(connection))
            checks.append(size(connection, database: database))
        }
        if FileManager.default.fileExists(atPath: database) {
            checks.append(privateFile("database mode", database, fix: "chmod 600 \(database) \(database)-wal \(database)-shm"))
        }
        let keyFile = options.keyFile ?? (options.dataDirectory as NSString).appendingPathComponent("account.key")
        if options.keyFile != nil || FileManager.default.fileExists(atPath: keyFile) {
            checks.append(privateFile("key file mode", keyFile, fix: "chmod 600 \(keyFile)"))
        }
        checks.append(lockHolder(options.dataDirectory))
        var nodes = Engine.absoluteNodesDirectory(options.nodesDirectory, dataDirectory: options.dataDirectory)
        // Without --nodes-dir, the folders the live local nodes are in (a daemon started with
        // `--nodes-dir` elsewhere keeps its nodes there): checking the default instead reported a
        // FAIL for a set-up that works.
        if options.nodesDirectory == nil, let connection, let parent = liveNodesParent(connection) { nodes = parent }
        checks.append(taskAccounts(nodes, asRoot: options.asRoot))
        checks.append(hardLinkProtection(asRoot: options.asRoot, setting: Doctor.protectedHardLinks()))
        checks += freeSpace(on: FileManager.default.fileExists(atPath: nodes) ? nodes : options.dataDirectory,
            minimum: options.minFreeDisk ?? defaultMinFreeDisk)
        if options.nodeProvider == .slurm || (connection.map(holdsSlurmNodes) ?? false) {
            checks.append(slurm(environment: options.environment))
        }
        return checks
    }

    /// The folder the live local nodes' roots are in (each root is `<nodes-dir>/<pool>/<node>` or
    /// `<nodes-dir>/<node>`; the shortest common parent of their parents), or nil without any.
    static func liveNodesParent(_ connection: Connection) -> String? {
        guard let roots = try? connection.query("SELECT root_dir FROM node WHERE removed_time IS NULL AND provider = 'local'")
            .compactMap({ $0[0].string }), !roots.isEmpty else { return nil }
        var common = roots[0].split(separator: "/").dropLast().map(String.init)
        for root in roots.dropFirst() {
            let parts = root.split(separator: "/").dropLast().map(String.init)
            var length = 0
            while length < min(common.count, parts.count), common[length] == parts[length] { length += 1 }
            common = Array(common.prefix(length))
        }
        return common.isEmpty ? nil : "/" + common.joined(separator: "/")
    }

    /// Whether any node of the directory is (still) a Slurm allocation. A schema from before Slurm
    /// nodes has none.
    static func holdsSlurmNodes(_ connection: Connection) -> Bool {
        let count = try? connection.scalar("SELECT count(*) FROM node WHERE provider = 'slurm' AND slurm_released_time IS NULL").int64
        return (count ?? 0) > 0
    }

    /// Slurm's client commands are on PATH and slurmctld answers `sinfo`: without both, Slurm nodes
    /// get no allocation and their steps cannot start.
    static func slurm(environment: [String: String]) -> Check {
        let commands: SlurmCommands
        switch SlurmCommands.find(environment: environment) {
        case .failure(let error):
            return Check("slurm", .fail, error.stderr, fix: "apt-get install slurm-client (or put Slurm's bin folder on the daemon's PATH)")
        case .success(let found):
            commands = found
        }
        // Slurm's own commands spend a minute on DNS look-ups before they say a named file is missing.
        if let conf = environment["SLURM_CONF"], !FileManager.default.fileExists(atPath: conf) {
            return Check("slurm", .fail, "SLURM_CONF names \(conf), which does not exist",
                fix: "point SLURM_CONF at the cluster's slurm.conf")
        }
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let candidates: [String] = path.split(separator: ":").map { String($0) + "/sinfo" }
        guard let sinfo = candidates.first(where: { access($0, X_OK) == 0 }) else {
            return Check("slurm", .fail, "sinfo is not on PATH (\(path))", fix: "apt-get install slurm-client")
        }
        do throws(SlurmCommandError) {
            let out = try commands.run([sinfo, "--noheader", "--format=%P %a %D %t"])
            let partitions = out.split(separator: "\n").map { line -> String in
                let fields = line.split(separator: " ")
                guard fields.count == 4 else { return String(line) }
                return "\(fields[0]) (\(fields[1]), \(fields[2]) node\(fields[2] == "1" ? "" : "s") \(fields[3]))"
            }
            guard !partitions.isEmpty else {
                return Check("slurm", .fail, "slurmctld answers but lists no partition", fix: "add a partition to slurm.conf")
            }
            let conf = environment["SLURM_CONF"].map { " (SLURM_CONF=\($0))" } ?? ""
            return Check("slurm", .ok, "slurmctld answers\(conf): " + partitions.joined(separator: ", "))
        } catch {
            // One line in the table: Slurm's commands print one error per line.
            let detail = error.description.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; ")
            return Check("slurm", .fail, detail,
                fix: "start slurmctld (and munged), or point SLURM_CONF at the cluster's slurm.conf")
        }
    }

    /// STRICT tables need SQLite 3.37; WAL mode needs a library built with it.
    static func sqliteLibrary() -> Check {
        let version = Connection.libraryVersion
        guard Connection.libraryVersionNumber >= 3_037_000 else {
            return Check("sqlite library", .fail, "libsqlite3 \(version) is older than 3.37, which Bookend's STRICT tables need",
                fix: "install a newer libsqlite3 (Debian 12 has 3.40)")
        }
        return Check("sqlite library", .ok, "libsqlite3 \(version)")
    }

    static func journalMode(_ connection: Connection) -> Check {
        let mode = (try? connection.scalar("PRAGMA journal_mode").string?.lowercased()) ?? "unknown"
        guard mode == "wal" else {
            return Check("journal mode", .fail, "journal_mode is \(mode), not wal: readers would block the engine's writer",
                fix: "run bookend migrate (or bookend serve) on the directory once; it switches the file to WAL")
        }
        return Check("journal mode", .ok, "wal")
    }

    static func schemaVersion(_ connection: Connection) -> Check {
        let stored = (try? connection.userVersion()) ?? 0
        let known = Schema.version
        if stored > known {
            return Check("schema version", .fail, "the database has schema version \(stored); this binary knows up to \(known)",
                fix: "run a newer bookend, or restore a backup taken by this version")
        }
        if stored < known {
            return Check("schema version", .warn, "the database has schema version \(stored); this binary migrates it to \(known) when it opens it",
                fix: "take a backup (bookend backup), then bookend migrate")
        }
        return Check("schema version", .ok, "\(stored) (this binary's)")
    }

    /// Deadlines and retention count from stored times: times ahead of the clock mean it went back.
    static func clock(_ connection: Connection) -> Check {
        let latest = try? connection.scalar(
            "SELECT max(t) FROM (SELECT max(time) AS t FROM event UNION ALL SELECT max(start_time) FROM execution UNION ALL SELECT max(creation_time) FROM job)")
            .string
        guard let latest, let stored = Timestamp.date(latest) else { return Check("clock", .ok, "nothing stored yet") }
        let ahead = stored.timeIntervalSinceNow
        guard ahead <= clockTolerance else {
            return Check("clock", .fail, "stored times reach \(latest), \(Int(ahead)) s ahead of this clock: the clock went back, or the file came from a machine ahead",
                fix: "set the clock right (timedatectl set-ntp true) before starting: wall-clock limits and retention count from stored times")
        }
        return Check("clock", .ok, "latest stored time \(latest) is not ahead of the clock")
    }

    static func size(_ connection: Connection, database: String) -> Check {
        let bytes = Engine.fileSize(database)
        let wal = Engine.fileSize(database + "-wal")
        let free = (try? connection.scalar("PRAGMA freelist_count").int) ?? 0
        let pageSize = (try? connection.scalar("PRAGMA page_size").int) ?? 0
        let vacuum = AutoVacuum(rawValue: (try? connection.scalar("PRAGMA auto_vacuum").int) ?? 0) ?? .none
        let detail = "database \(FileSystemSpace.human(bytes)), WAL \(FileSystemSpace.human(wal)), "
            + "\(FileSystemSpace.human(UInt64(free * pageSize))) free inside, auto_vacuum \(vacuum.name.lowercased())"
        if wal > largeWAL {
            return Check("database size", .warn, detail + ": the WAL is not being checkpointed",
                fix: "end long-running readers of bookend.db (an open sqlite3 shell, a stuck bookend sql)")
        }
        if vacuum != .incremental {
            return Check("database size", .warn, detail + ": pruned history does not shrink the file",
                fix: "run bookend migrate (with the daemon stopped): it sets auto_vacuum and rewrites the file once")
        }
        return Check("database size", .ok, detail)
    }

    /// The database, its WAL and the key hold secrets: nobody but the owner may read them.
    static func privateFile(_ name: String, _ path: String, fix: String) -> Check {
        var problems: [String] = []
        for file in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            guard stat(file, &info) == 0 else {
                if file == path { return Check(name, .fail, "\(path): \(String(cString: strerror(errno)))", fix: "give the right path") }
                continue
            }
            if info.st_mode & 0o077 != 0 { problems.append("\(file) is mode \(String(format: "%04o", info.st_mode & 0o7777))") }
        }
        guard problems.isEmpty else {
            return Check(name, .fail, problems.joined(separator: ", ") + ": other accounts (task accounts too) can read it", fix: fix)
        }
        return Check(name, .ok, "\(path) is private (0600)")
    }

    /// Who holds `<data-dir>/bookend.lock`, from `/proc/locks` (taking the lock to find out would
    /// make a daemon starting at that moment fail).
    static func lockHolder(_ directory: String) -> Check {
        let path = DataDirectoryLock.path(directory)
        var info = stat()
        guard stat(path, &info) == 0 else { return Check("lock", .ok, "not held (no engine has run here yet)") }
        guard let holder = flockHolder(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)) else { return Check("lock", .ok, "not held: no engine runs here") }
        let command = commandLine(of: holder)
        let program = (command.first.map { ($0 as NSString).lastPathComponent }) ?? "?"
        let shown = command.joined(separator: " ")
        if program.hasPrefix("bookend") || isThisProgram(holder) {
            return Check("lock", .ok, "held by pid \(holder) (\(shown)): an engine runs here")
        }
        return Check("lock", .fail, "held by pid \(holder) (\(shown.isEmpty ? "unknown" : shown)), which is not Bookend: bookend serve cannot start here",
            fix: "stop pid \(holder), or use another --data-dir")
    }

    /// The pid holding a `flock` on the file `device`/`inode`, per `/proc/locks`.
    ///
    /// The kernel produces `/proc/locks` a page per `read`, resuming by line number: when locks
    /// listed earlier go away between two reads (SQLite takes and drops its own locks all the time),
    /// the lines behind them move up and one can be skipped. A held lock stays listed, so the file
    /// is read a few times before the lock is called free.
    static func flockHolder(device: UInt64, inode: UInt64) -> Int32? {
        for attempt in 0..<8 {
            if attempt > 0 { usleep(10_000) }
            if let pid = flockHolderOnce(device: device, inode: inode) { return pid }
        }
        return nil
    }

    private static func flockHolderOnce(device: UInt64, inode: UInt64) -> Int32? {
        // Read to the end: a /proc file reports size 0, and a single read of it stops at a page.
        guard let handle = FileHandle(forReadingAtPath: "/proc/locks"), let data = try? handle.readToEnd() else { return nil }
        try? handle.close()
        // Linux's encoding of a dev_t: 12 bits of major, 20 of minor, split as the kernel's
        // new_encode_dev does; /proc/locks prints them in hexadecimal.
        let major = (device >> 8) & 0xfff | ((device >> 32) & ~UInt64(0xfff))
        let minor = (device & 0xff) | ((device >> 12) & ~UInt64(0xff))
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; lines of a waiter start with "1: ->".
            let fields = line.split(separator: " ")
            guard fields.count >= 6, fields[1] == "FLOCK", let pid = Int32(fields[4]) else { continue }
            let file = fields[5].split(separator: ":")
            guard file.count == 3, UInt64(file[2]) == inode else { continue }
            if UInt64(file[0], radix: 16) == major, UInt64(file[1], radix: 16) == minor { return pid }
        }
        return nil
    }

    static func commandLine(of pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// An embedding program holds the lock through the library: the same executable as the caller.
    static func isThisProgram(_ pid: Int32) -> Bool {
        let other = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
        let mine = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        return other != nil && other == mine
    }

    /// As root, non-admin tasks run under task accounts that must search every folder above theirs.
    static func taskAccounts(_ nodes: String, asRoot: Bool) -> Check {
        guard asRoot else { return Check("task accounts", .ok, "not root: tasks run as this account") }
        if let blocking = NodeFolders.unsearchableFolder(on: nodes) {
            return Check("task accounts", .fail, Engine.unreachableMessage(blocking: blocking, nodesDirectory: nodes),
                fix: "chmod o+x \(blocking), or bookend serve --nodes-dir on a reachable path")
        }
        return Check("task accounts", .ok, "every folder above \(nodes) is searchable by other accounts")
    }

    /// The kernel's `fs.protected_hardlinks` (`1` on most distributions), or nil when it cannot be read.
    public static func protectedHardLinks() -> String? {
        (try? String(contentsOfFile: "/proc/sys/fs/protected_hardlinks", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// As root, the file API opens what a task names in its folder as root. Links are never followed,
    /// but a hard link is the file itself: only `fs.protected_hardlinks = 1` stops a non-admin task
    /// linking a file it could not read (`/etc/shadow`, when the node folders share its file system)
    /// into its folder for a client, or the dashboard, to fetch.
    public static func hardLinkProtection(asRoot: Bool, setting: String?) -> Check {
        guard asRoot else { return Check("hard links", .ok, "not root: the file API reads only what this account can") }
        switch setting {
        case "1"?:
            return Check("hard links", .ok, "fs.protected_hardlinks = 1: tasks can hard-link only files they may already read and write")
        case let value?:
            return Check("hard links", .warn,
                "fs.protected_hardlinks = \(value): a non-admin task can hard-link any file of the node folders' file system into its folder, and the file API, running as root, serves it",
                fix: "sysctl -w fs.protected_hardlinks=1, and keep it in /etc/sysctl.d/")
        case nil:
            return Check("hard links", .warn, "/proc/sys/fs/protected_hardlinks cannot be read: whether tasks can hard-link files they cannot read is unknown",
                fix: "check fs.protected_hardlinks on the host (it must be 1)")
        }
    }

    static func freeSpace(on path: String, minimum: DiskSpace) -> [Check] {
        guard let space = FileSystemSpace.of(path) else {
            return [Check("free disk", .fail, "\(path): \(String(cString: strerror(errno)))", fix: "create the data directory")]
        }
        let detail = "\(FileSystemSpace.human(space.availableBytes)) of \(FileSystemSpace.human(space.totalBytes)) available "
            + "(\(String(format: "%.1f", space.availablePercent))%) on \(path)"
        let disk = space.isBelow(minimum)
            ? Check("free disk", .fail, detail + ", below --min-free-disk \(minimum)",
                fix: "free space there, delete finished jobs, or shorten retentionTime; bookend serve --min-free-disk deletes old task folders early")
            : Check("free disk", .ok, detail + ", minimum \(minimum)")
        let inodeDetail = "\(space.availableInodes) of \(space.totalInodes) inodes available"
        let inodes: Check
        if space.totalInodes == 0 {
            inodes = Check("free inodes", .ok, "the file system has no inode limit")
        } else if space.availableInodePercent < 1 {
            inodes = Check("free inodes", .fail, inodeDetail, fix: "delete finished jobs' folders or many small files; each task folder takes several inodes")
        } else if space.availableInodePercent < 5 {
            inodes = Check("free inodes", .warn, inodeDetail, fix: "delete finished jobs, or shorten retentionTime")
        } else {
            inodes = Check("free inodes", .ok, inodeDetail)
        }
        return [disk, inodes]
    }
}
