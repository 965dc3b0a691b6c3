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

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let input { posix_spawn_file_actions_adddup2(&actions, input.read, 0) }
    posix_spawn_file_actions_adddup2(&actions, out.write, 1)
    posix_spawn_file_actions_adddup2(&actions, err.write, 2)
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
