import Foundation
import SQLite

/// Opens a Bookend data directory: creates it if needed, opens `<dir>/bookend.db` and brings its
/// schema up to date.
public enum DataDirectory {
    /// Why a data directory could not be opened. Each case names the path and the cause.
    public struct OpenError: Error, Sendable, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// The database file of a data directory.
    public static func databasePath(_ directory: String) -> String {
        (directory as NSString).appendingPathComponent(Schema.databaseFileName)
    }

    /// Creates `directory` when its parent exists; fails with a clear message otherwise.
    public static func prepare(_ directory: String) throws(OpenError) {
        guard !directory.isEmpty else { throw OpenError(path: "\"\"", reason: "the data directory's path is empty") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw OpenError(path: directory, reason: "exists and is not a directory") }
            guard access(directory, W_OK | X_OK) == 0 else {
                throw OpenError(path: directory, reason: "directory is not writable (\(String(cString: strerror(errno))))")
            }
            return
        }
        let parent = Paths.parent(of: directory)
        if !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) {
            throw OpenError(path: directory, reason: "cannot create the data directory: \(parent) does not exist")
        }
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw OpenError(path: directory, reason: "cannot create the data directory (\(String(cString: strerror(errno))))")
        }
    }

    /// Creates the database file with mode 0600 whatever the umask, and takes group and other access
    /// away from an existing one and its `-wal` and `-shm`: it holds every job's command lines,
    /// environment settings and URLs, which no task account may read. SQLite creates `-wal` and `-shm`
    /// with the mode of the database file, so they stay 0600 as well.
    static func makePrivate(_ path: String) throws(OpenError) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw OpenError(path: path, reason: "cannot open the database file (\(String(cString: strerror(errno))))")
        }
        let changed = fchmod(fd, 0o600)
        let cause = errno
        close(fd)
        guard changed == 0 else { throw OpenError(path: path, reason: "cannot make the database file private (\(String(cString: strerror(cause))))") }
        for suffix in ["-wal", "-shm"] { chmod(path + suffix, 0o600) }
    }

    /// Opens a read-only connection for user SQL (history queries): it can never change the file, and
    /// in WAL mode it never blocks the engine's writer nor waits for it.
    public static func openReadOnly(_ directory: String) throws -> Database {
        let path = databasePath(directory)
        guard FileManager.default.fileExists(atPath: path) else {
            throw OpenError(path: path, reason: "no database here (run `bookend migrate --data-dir \(directory)` first)")
        }
        return try Database(path: path, options: ConnectionOptions(readOnly: true, create: false), label: "bookend.readonly")
    }

    /// Opens the writer connection and migrates the file to `Schema.version`.
    ///
    /// `upgrading` is called before an existing file is migrated, with its version and the target: a
    /// migration that rebuilds tables takes time on a large file, and the caller says so rather than
    /// starting in silence.
    public static func openMigrated(
        _ directory: String, options: ConnectionOptions = ConnectionOptions(),
        upgrading: (_ from: Int, _ to: Int) -> Void = { _, _ in }
    ) throws -> (connection: Connection, version: Int) {
        try prepare(directory)
        let path = databasePath(directory)
        try makePrivate(path)
        let connection = try Connection(path: path, options: options)
        let current = try connection.userVersion()
        if current > 0 && current < Schema.version { upgrading(current, Schema.version) }
        let version = try connection.migrate(Schema.migrations) { migration in
            CrashPoint.hit("migration.\(migration.version).before-commit")
        }
        return (connection, version)
    }
}
