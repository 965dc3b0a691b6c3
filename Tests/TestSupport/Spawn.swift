import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a program to its end with `posix_spawn`, collecting what it writes.
///
/// Why not Foundation's `Process`: on Linux its `run()` finds the highest open descriptor by reading
/// `/proc/self/fd` and copies each directory entry's name as a fixed 256-byte field, past the end of
/// the entry; in a test process holding a thousand and more descriptors (dozens of engines, servers
/// and readers at once) the copy can cross into an unmapped page, and a CI run died of SIGSEGV inside
/// `Process.run()`. This helper adds no such scan: its own pipes are close-on-exec, the child keeps
/// only the three standard descriptors (`closefrom` 3), and it gets a process group of its own, as
/// `Process` gave it.
public func spawnAndWait(
    _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil,
    stdin: String? = nil
) throws -> ProcessResult {
    func pipePair() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard GNU.pipe2(&fds, O_CLOEXEC) == 0 else { throw SpawnError(what: "pipe2", errno: errno) }
        return (fds[0], fds[1])
    }
    let out = try pipePair(), err = try pipePair()
    let input = try stdin.map { _ in try pipePair() }
    var parentEnds = [out.read, err.read] + (input.map { [$0.write] } ?? [])
    var childEnds = [out.write, err.write] + (input.map { [$0.read] } ?? [])
    defer { for fd in parentEnds + childEnds { close(fd) } }

    let pid = try spawnChild(executable, arguments, in: directory, environment: environment,
        stdin: input?.read, stdout: out.write, stderr: err.write)
    for fd in childEnds { close(fd) }
    childEnds = []

    // Written on a thread of its own while the output is read here, so that neither side can fill a
    // pipe and wait for the other.
    let writer = input.map { input in
        let text = Array(stdin!.utf8), fd = input.write
        let thread = Thread {
            var offset = 0
            while offset < text.count {
                let written = text[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { break }
                offset += written
            }
            close(fd)
        }
        return thread
    }
    if writer != nil { parentEnds.removeAll { $0 == input!.write } }
    writer?.start()

    var collected: [Int32: [UInt8]] = [out.read: [], err.read: []]
    var open = [out.read, err.read]
    var buffer = [UInt8](repeating: 0, count: 65536)
    while !open.isEmpty {
        var polls = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        if poll(&polls, nfds_t(polls.count), -1) < 0 {
            if errno == EINTR { continue }
            throw SpawnError(what: "poll", errno: errno)
        }
        for entry in polls where entry.revents != 0 {
            let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
            if count > 0 {
                collected[entry.fd]!.append(contentsOf: buffer[0..<count])
            } else if count == 0 || errno != EINTR {
                open.removeAll { $0 == entry.fd }
            }
        }
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw SpawnError(what: "waitpid \(pid)", errno: errno) }
    }
    // As Process reports it: the exit status, or the number of the signal that ended it.
    let signal = status & 0x7f
    return ProcessResult(
        status: signal == 0 ? (status >> 8) & 0xff : signal,
        stdout: String(decoding: collected[out.read]!, as: UTF8.self),
        stderr: String(decoding: collected[err.read]!, as: UTF8.self))
}

/// Starts `executable` with `posix_spawn`: the given descriptors as its standard ones (`/dev/null`
/// for stdin when nil), nothing else inherited (`closefrom` 3), a process group of its own, no
/// signal blocked and SIGPIPE at its default. Returns its pid.
func spawnChild(
    _ executable: String, _ arguments: [String], in directory: String?, environment: [String: String]?,
    stdin: Int32?, stdout: Int32, stderr: Int32
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdin { posix_spawn_file_actions_adddup2(&actions, stdin, 0) } else { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    if let directory { GNU.addchdir(&actions, directory) }
    GNU.addclosefrom(&actions, 3)

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // Its own process group, as Process gave it; no signal blocked, and SIGPIPE back to its default
    // (an ignored signal stays ignored across exec, and the test process ignores SIGPIPE).
    var none = sigset_t(), pipeSignal = sigset_t()
    sigemptyset(&none)
    sigemptyset(&pipeSignal)
    sigaddset(&pipeSignal, SIGPIPE)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &pipeSignal)
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
    defer { for pointer in envp ?? [] { free(pointer) } }

    var pid: pid_t = 0
    let code = envp.map { posix_spawn(&pid, executable, &actions, &attributes, argv, $0) }
        ?? posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
    guard code == 0 else { throw SpawnError(what: "posix_spawn \(executable)", errno: code) }
    return pid
}

/// A program running in the background, started with `posix_spawn` (see `spawnAndWait` for why not
/// Foundation's `Process`). A thread of its own waits for it; it is reaped only once its end is
/// recorded, so `signal` never reaches another process that got its pid.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `ended` and `handler` are guarded by `condition`; the rest is set in `init`.
    public enum Output: Sendable {
        /// `/dev/null`.
        case discard
        /// Appended to the file at this path (created when missing).
        case file(String)
        /// A pipe whose read end is `output`.
        case pipe
    }

    public enum Termination: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
    }

    public let pid: pid_t
    /// The read end of its stdout and stderr, with `Output.pipe`.
    public let output: FileHandle?
    private let condition = NSCondition()
    private var ended: Termination?

    /// Starts it, its stdout to `output` and its stderr to `errors` (to `output` as well when nil);
    /// `onExit` runs on the waiting thread once it has ended.
    public init(
        _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil,
        output: Output = .discard, errors: Output? = nil, onExit: (@Sendable (Termination) -> Void)? = nil
    ) throws {
        var readEnd: Int32 = -1
        func open(_ output: Output) throws -> Int32 {
            let fd: Int32
            switch output {
            case .discard:
                fd = Glibc.open("/dev/null", O_WRONLY | O_CLOEXEC)
            case .file(let path):
                fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            case .pipe:
                guard readEnd < 0 else { throw SpawnError(what: "a second pipe for \(executable)", errno: EINVAL) }
                var fds: [Int32] = [-1, -1]
                guard GNU.pipe2(&fds, O_CLOEXEC) == 0 else { throw SpawnError(what: "pipe2", errno: errno) }
                readEnd = fds[0]
                fd = fds[1]
            }
            guard fd >= 0 else { throw SpawnError(what: "open output of \(executable)", errno: errno) }
            return fd
        }
        var targets: [Int32] = []
        defer { for fd in targets { close(fd) } }
        do {
            targets.append(try open(output))
            if let errors { targets.append(try open(errors)) }
            pid = try spawnChild(executable, arguments, in: directory, environment: environment, stdin: nil,
                stdout: targets[0], stderr: targets.last!)
        } catch {
            if readEnd >= 0 { close(readEnd) }
            throw error
        }
        self.output = readEnd >= 0 ? FileHandle(fileDescriptor: readEnd, closeOnDealloc: true) : nil
        let pid = pid
        Thread.detachNewThread { [self] in
            // Learn of the end without reaping, record it, then reap: until then the pid is still ours.
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
            let code = info._sifields._sigchld.si_status
            let termination: Termination = info.si_code == CLD_EXITED ? .exited(code) : .signaled(code)
            condition.lock()
            ended = termination
            condition.broadcast()
            condition.unlock()
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            onExit?(termination)
        }
    }

    public var isRunning: Bool {
        condition.lock(); defer { condition.unlock() }
        return ended == nil
    }

    /// How it ended, or nil while it runs.
    public var termination: Termination? {
        condition.lock(); defer { condition.unlock() }
        return ended
    }

    /// Sends `signal` unless it has ended.
    public func signal(_ signal: Int32) {
        condition.lock(); defer { condition.unlock() }
        if ended == nil { kill(pid, signal) }
    }

    /// SIGTERM, as `Process.terminate()`.
    public func terminate() { signal(SIGTERM) }

    /// Blocks until it has ended.
    @discardableResult
    public func waitUntilExit() -> Termination {
        condition.lock(); defer { condition.unlock() }
        while ended == nil { condition.wait() }
        return ended!
    }

    /// Its exit status, or the number of the signal that ended it (as `Process.terminationStatus`).
    public var terminationStatus: Int32 {
        switch waitUntilExit() {
        case .exited(let code), .signaled(let code): code
        }
    }
}

/// glibc's GNU extensions, which Swift's Glibc module does not declare (it is not built with
/// _GNU_SOURCE); all three are in every glibc since 2.34.
private enum GNU {
    static func symbol<T>(_ name: String, as type: T.Type) -> T {
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { fatalError("glibc has no \(name)") }
        return unsafeBitCast(address, to: type)
    }
    static let pipe2 = symbol("pipe2", as: (@convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32).self)
    static let addchdir = symbol("posix_spawn_file_actions_addchdir_np",
        as: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32).self)
    static let addclosefrom = symbol("posix_spawn_file_actions_addclosefrom_np",
        as: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
}

public struct SpawnError: Error, CustomStringConvertible {
    public let what: String
    public let errno: Int32
    public var description: String { "\(what): \(String(cString: strerror(errno)))" }
}
