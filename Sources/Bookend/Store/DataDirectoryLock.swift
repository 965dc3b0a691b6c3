import Foundation

/// The exclusive claim of one engine (or one `bookend migrate`) on a data directory.
///
/// Two engines on one directory would each restart the other's executions and book the same node
/// slots twice, so `Engine.open` takes this lock before it migrates or reconciles anything, and holds
/// it until `shutdown`. It is a `flock(2)` on `<data-dir>/bookend.lock`: the kernel drops it when the
/// holder dies however it dies (`kill -9` included), so crash recovery needs no clean-up. The holder's
/// pid is written into the file, only so that the next opener can say who holds it.
///
/// Read-only users (`bookend sql`, `sqlite3 -readonly`) do not take it: SQLite's WAL mode already
/// lets them read while the engine writes.
public final class DataDirectoryLock: @unchecked Sendable {
    // Written once in init and once in release, both by the owner; the class is only handed around
    // so that the engine can release it from its own queue.
    private var descriptor: Int32

    /// The lock file of a data directory.
    public static func path(_ directory: String) -> String {
        (directory as NSString).appendingPathComponent("bookend.lock")
    }

    /// Why the lock could not be taken.
    public struct HeldError: Error, Sendable, CustomStringConvertible {
        public let directory: String
        /// The pid written by the holder, when it could be read.
        public let holder: Int32?
        public var description: String {
            let who = holder.map { "another Bookend process (pid \($0))" } ?? "another Bookend process"
            return "\(directory) is in use by \(who); stop it first, or use another --data-dir"
        }
    }

    /// How long a lock whose recorded holder is already dead may still be held. A shim is a fork
    /// of the engine and shares its open lock file until it closes every inherited descriptor, a
    /// few microseconds after fork; if the engine dies in that window, the lock outlives it briefly.
    static let deadHolderGrace: Duration = .seconds(3)

    /// Takes the lock on `directory` (which must exist), or throws `HeldError` naming the holder at
    /// once when a live process holds it.
    public init(directory: String) throws {
        let path = DataDirectoryLock.path(directory)
        // O_CLOEXEC: a program an embedding app execs must not carry the lock away. Shims (forks
        // that never exec the engine) close it themselves before anything else (spawn.c close_from).
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw DataDirectory.OpenError(path: path, reason: "cannot open the lock file (\(String(cString: strerror(errno))))")
        }
        let started = ContinuousClock.now
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            if error == EINTR { continue }
            guard error == EWOULDBLOCK else {
                close(fd)
                throw DataDirectory.OpenError(path: path, reason: "cannot lock (\(String(cString: strerror(error))))")
            }
            let holder = DataDirectoryLock.recordedHolder(fd)
            // A live holder is another engine: refuse at once. A dead one left a fork of itself
            // holding the file for an instant (see deadHolderGrace): wait for it to let go. So did
            // this process when it names itself but holds no lock on the file any more: an engine
            // here released it while a fork of this process (a shim of another engine, a program
            // being spawned) still had it open, until that fork closes its inherited descriptors.
            let forkOfDeadHolder = holder.map { $0 != getpid() && kill($0, 0) != 0 && errno == ESRCH } ?? false
            let forkOfThisProcess = holder == getpid() && !DataDirectoryLock.isHeldHere(fd)
            if forkOfDeadHolder || forkOfThisProcess, ContinuousClock.now - started < DataDirectoryLock.deadHolderGrace {
                usleep(20_000)
                continue
            }
            close(fd)
            throw HeldError(directory: directory, holder: holder)
        }
        let line = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
        descriptor = fd
        file = DataDirectoryLock.identity(fd)
        DataDirectoryLock.heldHere.withLock { _ = $0.insert(file) }
    }

    /// The lock file (device, inode), as recorded in `heldHere`.
    private var file: FileIdentity = FileIdentity(device: 0, inode: 0)
    private struct FileIdentity: Hashable { let device: UInt64; let inode: UInt64 }

    /// Lock files this process holds a lock on now: one that names this process as its holder but is
    /// not in here is held only by a fork that has not closed it yet.
    private static let heldHere = LockedSet()

    private final class LockedSet: @unchecked Sendable {
        // `files` is guarded by `lock`.
        private let lock = NSLock()
        private var files: Set<FileIdentity> = []
        func withLock<T>(_ body: (inout Set<FileIdentity>) -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body(&files)
        }
    }

    private static func identity(_ fd: Int32) -> FileIdentity {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return FileIdentity(device: 0, inode: 0) }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    private static func isHeldHere(_ fd: Int32) -> Bool {
        let file = identity(fd)
        return heldHere.withLock { $0.contains(file) }
    }

    /// The pid the holder wrote into the file, if any.
    private static func recordedHolder(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Lets the next engine open the directory. The file stays: removing it would let two openers
    /// lock two different files of the same name.
    public func release() {
        guard descriptor >= 0 else { return }
        DataDirectoryLock.heldHere.withLock { _ = $0.remove(file) }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
