import Supervisor

/// How the daemon's open-descriptor limit (`ulimit -n`) is shared, so that nothing outside the
/// engine can take what the engine needs: a quarter may be held as pidfds by the exit watcher (past
/// it, processes are polled through /proc), a fixed reserve stays for the database, a pass's exit
/// files and launch pipes and listings, and the rest is for the listeners' connections (see the API's
/// `ConnectionCap`).
public enum Descriptors {
    /// Always kept for the engine's own files, besides the exit watcher's share.
    public static let engineReserve = 128

    /// The soft limit of this process.
    public static func limit() -> Int { ExitWatcher.descriptorLimit() }

    /// The exit watcher's share of `limit`.
    public static func exitWatcherShare(of limit: Int) -> Int { ExitWatcher.pidfdShare(ofDescriptorLimit: limit) }

    /// What is left of `limit` for connections (each of which may hold two: its socket and a file it
    /// downloads).
    public static func forConnections(of limit: Int) -> Int {
        max(0, limit - engineReserve - exitWatcherShare(of: limit))
    }
}
