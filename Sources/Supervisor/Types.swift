/// Identity of a process that survives pid reuse: `startTime` is field 22 of
/// `/proc/<pid>/stat` (clock ticks after boot), which differs for any later process
/// that happens to get the same pid.
public struct ProcessIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public var pid: Int32
    public var startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    public var description: String { "\(pid)@\(startTime)" }
}

/// Credentials the user command runs with (supplementary groups are dropped).
public struct RunAs: Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32

    public init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }
}

/// Everything needed to start a user command; all paths are already resolved by the caller.
public struct LaunchRequest: Sendable {
    public var executablePath: String
    /// argv, argv[0] included.
    public var arguments: [String]
    public var environment: [String: String]
    public var workingDirectory: String
    /// Opened with O_APPEND|O_CREAT|O_NOFOLLOW (mode 0600) by the command's own account (`runAs`), after
    /// it switched to it, so relaunches append and a link in their place is refused.
    public var stdoutPath: String
    public var stderrPath: String
    /// Receives the `pid` and `exit` files; created (mkdir -p, 0700) if missing.
    public var statusDirectory: String
    /// nil = run as the engine's own user.
    public var runAs: RunAs?
    /// The shim syncs the `exit` file to disk before it exits even while the process that started it
    /// is alive to record the outcome. Without it, that sync is left out while that process lives
    /// (its own durable commit records the outcome), and done once the shim has been orphaned.
    public var exitAlwaysDurable: Bool
    /// The caller has made `statusDirectory` and removed any `pid` and `exit` in it (a recycled status
    /// folder): the launch skips its own `mkdir` and the two removals, three path lookups on the way
    /// to every command's start.
    public var statusDirectoryPrepared = false
    /// How long the launch waits for the command to reach exec. Past it the shim and the command are
    /// killed and the launch fails (stage `start-timeout`): nothing before an exec should take
    /// long, and the caller (the engine's one thread) must never wait without end.
    public var startTimeout: Duration = .seconds(10)
    /// With `runAs`: the most processes and threads that account may hold at once (`RLIMIT_NPROC`,
    /// lowered for good before the switch). nil leaves the limit the engine has. Ignored without
    /// `runAs`: the command then runs as the engine's own user, whose count includes the engine's
    /// own threads, so a cap there would stop the engine's account, not a task's.
    public var processLimit: UInt32?
    /// Tests only: the shim waits this long before it starts the command, as one stuck before its
    /// exec would.
    var testDelayMilliseconds: UInt32 = 0

    public init(
        executablePath: String, arguments: [String], environment: [String: String] = [:],
        workingDirectory: String, stdoutPath: String, stderrPath: String,
        statusDirectory: String, runAs: RunAs? = nil, exitAlwaysDurable: Bool = false
    ) {
        self.executablePath = executablePath
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        self.statusDirectory = statusDirectory
        self.runAs = runAs
        self.exitAlwaysDurable = exitAlwaysDurable
    }
}

/// How a user command ended, as recorded in `<statusDirectory>/exit`.
public enum ExitStatus: Sendable, Hashable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    /// The command never started; `stage` is one of open, chdir, setuid, exec, status, fork, setsid.
    case launchFailed(stage: String, errno: Int32)

    /// Shell-style exit code: exited → code, signaled → 128 + n, launchFailed → nil.
    public var exitCode: Int32? {
        switch self {
        case .exited(let code): return code
        case .signaled(let n): return 128 + n
        case .launchFailed: return nil
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): return "exit \(code)"
        case .signaled(let n): return "signal \(n)"
        case .launchFailed(let stage, let err): return "launch \(stage) \(err)"
        }
    }
}

public struct SupervisorError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The shim process could not be created (pipe/fork failed, bad status directory path).
        public static let spawnFailed = Code(rawValue: "spawnFailed")
        /// The shim started but the user command did not reach execve, or (stage "status") the shim could
        /// not record its identity and killed the command it had started; see `stage`.
        public static let launchFailed = Code(rawValue: "launchFailed")
        public static let notFound = Code(rawValue: "notFound")
        /// Strings containing NUL bytes, empty argv, malformed environment names.
        public static let invalidArgument = Code(rawValue: "invalidArgument")
        /// The status directory could not be created or cleaned.
        public static let statusDirectory = Code(rawValue: "statusDirectory")
        /// CommandLineSplitter rejected the command line.
        public static let invalidCommandLine = Code(rawValue: "invalidCommandLine")
        /// ExitWatcher could not create its epoll/eventfd descriptors.
        public static let watcherFailed = Code(rawValue: "watcherFailed")
    }

    public var code: Code
    /// 0 when not applicable.
    public var errno: Int32
    public var message: String
    /// For `.launchFailed`: open, chdir, setuid, exec, status, fork or setsid.
    public var stage: String?

    public init(code: Code, errno: Int32 = 0, message: String, stage: String? = nil) {
        self.code = code
        self.errno = errno
        self.message = message
        self.stage = stage
    }

    public var description: String {
        var s = "\(code): \(message)"
        if let stage { s += " [stage \(stage)]" }
        if errno != 0 { s += " (errno \(errno): \(errnoDescription(errno)))" }
        return s
    }
}
