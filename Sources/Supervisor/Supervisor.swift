import CSupervisor
import Glibc

func errnoDescription(_ e: Int32) -> String {
    guard let s = strerror(e) else { return "errno \(e)" }
    return String(cString: s)
}

/// Fields of `/proc/<pid>/stat` the supervisor cares about.
struct ProcStat: Sendable {
    var state: UInt8       // field 3 ('R', 'S', 'Z', ...)
    var ppid: Int32        // field 4
    var pgrp: Int32        // field 5
    var session: Int32     // field 6
    var startTime: UInt64  // field 22

    var isZombie: Bool { state == UInt8(ascii: "Z") || state == UInt8(ascii: "X") }

    /// The process's fields, or nil when there is no such process *or* its file could not be read.
    /// Where the difference matters (is it gone, or are this process's descriptors used up?), use
    /// `lookup`: taking an unreadable file for an ended process ran work twice.
    static func read(pid: Int32) -> ProcStat? {
        guard pid > 0, let bytes = readSmallFile("/proc/\(pid)/stat") else { return nil }
        return parse(bytes)
    }

    /// What `/proc/<pid>/stat` says, telling "no such process" from "could not look".
    enum Lookup {
        case found(ProcStat)
        /// No process has this pid (the file is absent, or vanished while being read).
        case absent
        /// The file could not be opened or read for another reason (EMFILE, ENOMEM…): nothing is known.
        case unknown(errno: Int32)
    }

    static func lookup(pid: Int32) -> Lookup {
        guard pid > 0 else { return .absent }
        switch readSmallFileOrErrno("/proc/\(pid)/stat") {
        case .success(let bytes):
            return parse(bytes).map(Lookup.found) ?? .unknown(errno: EIO)
        case .failure(let error):
            // ESRCH: the process was reaped between the open and the read.
            return error.code == ENOENT || error.code == ESRCH ? .absent : .unknown(errno: error.code)
        }
    }

    static func parse(_ bytes: [UInt8]) -> ProcStat? {
        // comm (field 2) may contain spaces and ')': the other fields follow the LAST ')'.
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        // fields[0] is field 3.
        guard fields.count >= 20, let state = fields[0].first,
              let ppid = Int32(decoding(fields[1])), let pgrp = Int32(decoding(fields[2])),
              let session = Int32(decoding(fields[3])), let start = UInt64(decoding(fields[19]))
        else { return nil }
        return ProcStat(state: state, ppid: ppid, pgrp: pgrp, session: session, startTime: start)
    }

    private static func decoding(_ s: ArraySlice<UInt8>) -> String {
        String(decoding: s, as: UTF8.self).trimmingNewlines
    }
}

extension String {
    var trimmingNewlines: String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" || last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Reads a small file of one record (≤ 64 KiB): a status file (`pid`, `exit`, written whole and
/// renamed into place) or a one-line `/proc/<pid>/` file. Nil if it cannot be opened.
///
/// A read that returns less than it asked for is taken as the end, without a second read to see 0:
/// for a regular file that is the end, and a one-record `/proc` file is produced whole by its first
/// read. That second read was one more system call for each of the three files a launch and its exit
/// read on the engine's thread. (A multi-record `/proc` file, such as `mountinfo`, can return short
/// reads before its end: this is not for those.)
func readSmallFile(_ path: String) -> [UInt8]? {
    try? readSmallFileOrErrno(path).get()
}

/// `readSmallFile`, with the errno of the `open` or `read` that failed.
func readSmallFileOrErrno(_ path: String) -> Result<[UInt8], Errno> {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return .failure(Errno(errno)) }
    defer { close(fd) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while result.count < 65536 {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return .failure(Errno(errno))
        }
        if n == 0 { break }
        result.append(contentsOf: buffer[0..<n])
        if n < buffer.count { break }
    }
    return .success(result)
}

/// An errno as an `Error`.
struct Errno: Error, Equatable {
    let code: Int32
    init(_ code: Int32) { self.code = code }
}

public enum Supervisor {
    /// Starts `r` under a detached shim and returns the shim's identity once the user
    /// command has exec'd. The shim is a child of the calling process until reaped: either
    /// watch it with an `ExitWatcher` or `waitpid` it yourself.
    public static func launch(_ r: LaunchRequest) throws(SupervisorError) -> ProcessIdentity {
        try launch([r])[0].get()
    }

    /// Starts every request under its own shim, forking all the shims before waiting for any
    /// command's exec, so the waits overlap. Each result is what `launch` would have returned;
    /// when this returns, every command that started has exec'd (its process group exists).
    /// `whileStarting` runs once every shim is forked and before the first wait: work of the
    /// caller's that can overlap the commands' start-up (the engine syncs its commit there).
    /// Shims the spawn helper forks are not waited for one by one: their pids are collected after
    /// every request has gone out (see "replies the engine collects later" in spawn.c).
    public static func launch(
        _ requests: [LaunchRequest], whileStarting: () -> Void = {}
    ) -> [Result<ProcessIdentity, SupervisorError>] {
        var batch = LaunchBatch()
        for r in requests { batch.start(r) }
        return batch.finish(whileStarting: whileStarting)
    }

    /// Launches whose requests go out one by one, each as soon as the caller has it ready, and whose
    /// execs are awaited together at the end (`finish`): the first command of a batch starts while
    /// the caller still prepares the next ones, instead of after all of them.
    public struct LaunchBatch {
        private var requests: [LaunchRequest] = []
        private var results: [Result<ProcessIdentity, SupervisorError>?] = []
        private var started: [(index: Int, fd: Int32, result: bks_spawn_result)] = []

        public init() {}

        /// Forks `r`'s shim now (or has the spawn helper fork it); its result comes from `finish`, in
        /// the order of the `start` calls.
        public mutating func start(_ r: LaunchRequest) {
            let index = requests.count
            requests.append(r)
            do {
                let (fd, result) = try Supervisor.start(r)
                results.append(nil)
                started.append((index, fd, result))
            } catch {
                results.append(.failure(error))
            }
        }

        /// Runs `whileStarting`, then waits for every started command's exec; one result per `start`.
        public mutating func finish(whileStarting: () -> Void = {}) -> [Result<ProcessIdentity, SupervisorError>] {
            whileStarting()
            for (index, fd, var result) in started {
                let rc = bks_spawn_finish(fd, &result)
                let request = requests[index]
                results[index] = Result { () throws(SupervisorError) -> ProcessIdentity in
                    try Supervisor.identify(request, rc: rc, result: result)
                }
            }
            started.removeAll()
            defer { requests.removeAll(); results.removeAll() }
            return results.map { $0! }
        }
    }

    /// Validates `r` and forks its shim, or asks the spawn helper to; returns the shim's report pipe
    /// and the start's result (the pid, or the ticket `bks_spawn_finish` redeems for it).
    fileprivate static func start(_ r: LaunchRequest) throws(SupervisorError) -> (fd: Int32, result: bks_spawn_result) {
        guard !r.arguments.isEmpty else {
            throw SupervisorError(code: .invalidArgument, message: "arguments must include argv[0]")
        }
        // Byte scans, without gathering the strings into one array first or walking them as
        // Characters: this runs for every launch, on the engine's thread.
        func holdsNUL(_ string: String) -> Bool { string.utf8.contains(0) }
        let paths = [r.executablePath, r.workingDirectory, r.stdoutPath, r.stderrPath, r.statusDirectory]
        if let bad = paths.first(where: holdsNUL) ?? r.arguments.first(where: holdsNUL)
            ?? r.environment.keys.first(where: holdsNUL) ?? r.environment.values.first(where: holdsNUL) {
            throw SupervisorError(code: .invalidArgument, message: "string contains a NUL byte: \(bad.debugDescription)")
        }
        if let bad = r.environment.keys.first(where: { $0.isEmpty || $0.utf8.contains(UInt8(ascii: "=")) }) {
            throw SupervisorError(code: .invalidArgument, message: "invalid environment variable name \(bad.debugDescription)")
        }
        if !r.statusDirectoryPrepared { try prepareStatusDirectory(r.statusDirectory) }

        let argv = CStringArray(r.arguments)
        let envp = CStringArray(r.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
        // The shim has its own copy of these once forked.
        defer { argv.free(); envp.free() }

        var result = bks_spawn_result()
        let timeout = r.startTimeout.components
        result.start_timeout_ms = Int32(clamping: max(1, timeout.seconds * 1000 + timeout.attoseconds / 1_000_000_000_000_000))
        let fd: Int32 = r.executablePath.withCString { path in
            r.workingDirectory.withCString { wd in
                r.stdoutPath.withCString { out in
                    r.stderrPath.withCString { err in
                        r.statusDirectory.withCString { status in
                            var req = bks_spawn_request()
                            req.path = path
                            req.argv = UnsafePointer(argv.pointer)
                            req.envp = UnsafePointer(envp.pointer)
                            req.working_dir = wd
                            req.stdout_path = out
                            req.stderr_path = err
                            req.status_dir = status
                            req.exit_always_durable = r.exitAlwaysDurable ? 1 : 0
                            req.test_delay_ms = r.testDelayMilliseconds
                            if let runAs = r.runAs {
                                req.set_ids = 1
                                req.uid = runAs.uid
                                req.gid = runAs.gid
                                req.process_limit = r.processLimit ?? 0
                            }
                            return bks_spawn_start(&req, &result)
                        }
                    }
                }
            }
        }
        guard fd >= 0 else {
            throw SupervisorError(code: .spawnFailed, errno: result.err, message: "could not fork the supervisor shim")
        }
        return (fd, result)
    }

    /// The outcome of `bks_spawn_finish` for `r`: the shim's identity, or why the command did not start.
    fileprivate static func identify(_ r: LaunchRequest, rc: Int32, result: bks_spawn_result) throws(SupervisorError) -> ProcessIdentity {
        if rc == 2 {
            throw SupervisorError(code: .spawnFailed, errno: result.err, message: "the spawn helper could not fork the supervisor shim")
        }
        if rc == 1 {
            let stage = String(cString: bks_stage_name(result.stage))
            if result.stage == Int32(BKS_STAGE_TIMEOUT) {
                throw SupervisorError(
                    code: .launchFailed, errno: result.err,
                    message: "\(r.executablePath) did not start within \(r.startTimeout) (stuck before its exec); it was killed",
                    stage: stage)
            }
            throw SupervisorError(
                code: .launchFailed, errno: result.err,
                message: "could not start \(r.executablePath)", stage: stage)
        }
        // The shim wrote its pid file before the exec report pipe reached EOF.
        if let id = readIdentity(in: r.statusDirectory), id.pid == result.pid {
            return id
        }
        // Fallback: the shim is our unreaped child, so /proc/<pid> exists (maybe as a zombie).
        if let stat = ProcStat.read(pid: result.pid) {
            return ProcessIdentity(pid: result.pid, startTime: stat.startTime)
        }
        _ = bks_reap(-1, result.pid)
        throw SupervisorError(code: .spawnFailed, message: "shim \(result.pid) vanished before reporting its identity")
    }

    /// The process that forks this program's shims (a re-executed copy of this program, started on
    /// the first launch), or nil when there is none (not started yet, or shims are forked directly).
    public static var spawnHelperPID: Int32? {
        let pid = bks_spawn_helper_pid()
        return pid > 0 ? pid : nil
    }

    /// For tests: kills the spare shim this process holds (see `bks_spawn_kill_spare_for_tests`).
    static func killHeldSpareForTests() -> Int32? {
        let pid = bks_spawn_kill_spare_for_tests()
        return pid > 0 ? pid : nil
    }

    /// True if `pid` is one of this process's idle spare shims: forked ahead by its spawn helper, set up
    /// and waiting for a launch request, with no request or status folder yet. It is a live fork of
    /// this program that will never write a pid file for anything launched before, so whoever looks
    /// for shims that have not identified themselves yet leaves it out. A spare of another process
    /// (an engine that died, whose spare may still hold that engine's last request) is not idle here.
    public static func isIdleSpareShim(_ pid: Int32) -> Bool {
        guard let stat = ProcStat.read(pid: pid), stat.ppid == getpid(), !stat.isZombie,
              let comm = readSmallFile("/proc/\(pid)/comm")
        else { return false }
        return String(decoding: comm, as: UTF8.self).trimmingNewlines == BKS_SPARE_SHIM_NAME
    }

    /// Identity of a live or zombie process; nil if there is no such pid.
    public static func identity(ofPID pid: Int32) -> ProcessIdentity? {
        ProcStat.read(pid: pid).map { ProcessIdentity(pid: pid, startTime: $0.startTime) }
    }

    /// True if `id.pid` exists, has the same start time, and is not a zombie. When /proc cannot be
    /// read (this process is out of descriptors, say) the answer is true: whoever asks would otherwise
    /// take a running process for an ended one and run its work again; asking later tells.
    public static func isAlive(_ id: ProcessIdentity) -> Bool {
        switch ProcStat.lookup(pid: id.pid) {
        case .found(let stat): stat.startTime == id.startTime && !stat.isZombie
        case .absent: false
        case .unknown: true
        }
    }

    /// Parses `<statusDirectory>/exit`; nil while the command runs (or if the shim was killed).
    public static func readStatus(in statusDirectory: String) -> ExitStatus? {
        guard let bytes = readSmallFile(statusDirectory + "/exit") else { return nil }
        let words = String(decoding: bytes, as: UTF8.self).trimmingNewlines.split(separator: " ")
        switch (words.first, words.count) {
        case ("exit"?, 2): return Int32(words[1]).map { .exited($0) }
        case ("signal"?, 2): return Int32(words[1]).map { .signaled($0) }
        case ("launch"?, 3): return Int32(words[2]).map { .launchFailed(stage: String(words[1]), errno: $0) }
        default: return nil
        }
    }

    /// Why `<statusDirectory>/exit` cannot be opened when that is not because it is absent (an errno:
    /// EMFILE while the process's descriptors are used up, say), or nil. `readStatus` answers nil in
    /// both cases; a caller about to conclude "ended without a status" asks this first, since a file
    /// it could not open may well be there.
    public static func exitFileUnreadable(in statusDirectory: String) -> Int32? {
        let fd = open(statusDirectory + "/exit", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            close(fd)
            return nil
        }
        return errno == ENOENT ? nil : errno
    }

    /// Parses `<statusDirectory>/pid` (`<pid> <starttime>`), the shim's identity.
    public static func readIdentity(in statusDirectory: String) -> ProcessIdentity? {
        guard let bytes = readSmallFile(statusDirectory + "/pid") else { return nil }
        let words = String(decoding: bytes, as: UTF8.self).trimmingNewlines.split(separator: " ")
        guard words.count == 2, let pid = Int32(words[0]), pid > 0, let start = UInt64(words[1]) else { return nil }
        return ProcessIdentity(pid: pid, startTime: start)
    }

    /// Sends `signal` to the process group led by `id` (the shim and everything below it),
    /// but only if `id` still names the same process, so a reused pid is never signalled.
    /// An unreaped zombie shim still counts: its pid cannot be reused until it is reaped.
    @discardableResult
    public static func signalGroup(_ id: ProcessIdentity, _ signal: Int32) -> Bool {
        guard id.pid > 1, let stat = ProcStat.read(pid: id.pid), stat.startTime == id.startTime else { return false }
        return kill(-id.pid, signal) == 0
    }

    /// Sends SIGKILL to whatever is left of the session the shim `id` leads: its process group, and
    /// the processes that left the group but not the session (a shell with job control, say). For a
    /// shim that is gone without an exit status, before its work runs again: its command may have
    /// outlived it (the shim alone was killed), and running the work again while that copy still runs
    /// would run it twice at once. Answers how many processes or groups were signalled.
    ///
    /// Why the number is safe to use after the shim is gone: the kernel keeps a pid allocated while
    /// any process has it as its process group or session id, so while the shim's command survives no
    /// new process can be given the shim's number. A process that has the number now with another
    /// start time means the session is empty and the number was reused: nothing is signalled then.
    @discardableResult
    public static func killSession(_ id: ProcessIdentity) -> Int {
        guard id.pid > 1 else { return 0 }
        if let stat = ProcStat.read(pid: id.pid), stat.startTime != id.startTime { return 0 }
        var signalled = kill(-id.pid, SIGKILL) == 0 ? 1 : 0
        // A member that forks while the scan runs can give its child a pid the scan has passed (pids
        // wrap), and a fork bomb that left the group forks all the time: scan again while a scan finds
        // a process not signalled before. A killed process forks no more, so the scans die down (each
        // finds at most what was forked during the one before); the cap only bounds a pathological case.
        var seen = Set<ProcessIdentity>()
        for _ in 0..<64 {
            guard let proc = opendir("/proc") else { break }
            var found = false
            while let entry = readdir(proc) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard let pid = Int32(name), pid != id.pid, let stat = ProcStat.read(pid: pid), stat.session == id.pid, !stat.isZombie else { continue }
                guard seen.insert(ProcessIdentity(pid: pid, startTime: stat.startTime)).inserted else { continue }
                found = true
                if kill(pid, SIGKILL) == 0 { signalled += 1 }
            }
            closedir(proc)
            if !found { break }
        }
        return signalled
    }

    /// Resolves a command name the way execvp would, but relative to `workingDirectory`:
    /// names containing "/" are absolute or relative to `workingDirectory`; bare names are
    /// searched in `path` (colon-separated; nil = a default system PATH; empty or relative
    /// entries are relative to `workingDirectory`). The result must be a regular file that
    /// is executable by the engine's user.
    public static func resolveExecutable(_ name: String, path: String?, workingDirectory: String) -> String? {
        guard !name.isEmpty, !name.utf8.contains(0) else { return nil }
        if name.contains("/") {
            let candidate = name.hasPrefix("/") ? name : join(workingDirectory, name)
            return isExecutableFile(candidate) ? candidate : nil
        }
        let searchPath = path ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for entry in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let dir: String
            if entry.isEmpty { dir = workingDirectory }
            else if entry.hasPrefix("/") { dir = String(entry) }
            else { dir = join(workingDirectory, String(entry)) }
            let candidate = join(dir, name)
            if isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    static func join(_ dir: String, _ name: String) -> String {
        if dir.hasSuffix("/") { return dir + name }
        return dir + "/" + name
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
        return access(path, X_OK) == 0
    }

    /// mkdir -p (0700) and removal of any stale protocol files from a previous run.
    static func prepareStatusDirectory(_ dir: String) throws(SupervisorError) {
        guard !dir.isEmpty else {
            throw SupervisorError(code: .statusDirectory, message: "empty status directory")
        }
        // Usually only the last component is missing: one mkdir, no walk from the root.
        let created = mkdir(dir, 0o700) == 0
        let made = created || errno == EEXIST
        var current = dir.hasPrefix("/") ? "" : "."
        for component in made ? [] : dir.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o700) != 0 {
                let e = errno
                var st = stat()
                guard e == EEXIST, stat(current, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw SupervisorError(code: .statusDirectory, errno: e, message: "cannot create \(current)")
                }
            }
        }
        // A folder this call created is empty: only one that existed can hold an earlier run's files.
        // `exit.tmp` and `pid.tmp` may stay: the shim truncates them on open and only then renames them.
        for name in created ? [] : ["exit", "pid"] {
            if unlink(join(dir, name)) != 0 && errno != ENOENT {
                throw SupervisorError(code: .statusDirectory, errno: errno, message: "cannot remove stale \(join(dir, name))")
            }
        }
    }
}

/// A NULL-terminated `char *[]` built (and freed) by the caller, before fork.
struct CStringArray {
    let pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    let count: Int

    init(_ strings: [String]) {
        count = strings.count
        pointer = .allocate(capacity: strings.count + 1)
        for (i, s) in strings.enumerated() { pointer[i] = strdup(s) }
        pointer[strings.count] = nil
    }

    func free() {
        for i in 0..<count { Glibc.free(pointer[i]) }
        pointer.deallocate()
    }
}
