import Foundation
import Glibc

/// A Slurm command that did not do what was asked: one error naming the command and Slurm's message.
public struct SlurmCommandError: Error, Sendable, CustomStringConvertible {
    public var command: [String]
    public var status: Int32
    public var stderr: String

    public var description: String {
        let message = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        return "`\(command.joined(separator: " "))` failed (exit \(status))" + (message.isEmpty ? "" : ": \(message)")
    }
}

/// Runs Slurm's client commands (found on PATH, reading `SLURM_CONF` like any Slurm user's shell).
/// They block until Slurm answers: called only on the provider's own thread, never on the engine's
/// queue or the cooperative pool.
struct SlurmCommands: Sendable {
    let sbatch: String
    let squeue: String
    let scancel: String
    let srun: String
    /// What the commands run with: the daemon's PATH and the Slurm variables they read.
    let environment: [String: String]

    /// Resolves the commands on the daemon's PATH; nil names the first one missing.
    static func find(environment: [String: String] = ProcessInfo.processInfo.environment) -> Result<SlurmCommands, SlurmCommandError> {
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        var found: [String: String] = [:]
        for name in ["sbatch", "squeue", "scancel", "srun"] {
            let candidates = path.split(separator: ":").map { "\($0)/\(name)" }
            guard let hit = candidates.first(where: { access($0, X_OK) == 0 }) else {
                return .failure(SlurmCommandError(command: [name], status: 127, stderr: "\(name) is not on PATH (\(path)); install Slurm's client commands"))
            }
            found[name] = hit
        }
        var slurmEnvironment = ["PATH": path]
        for (name, value) in environment where name == "SLURM_CONF" || name == "MUNGE_SOCKET" { slurmEnvironment[name] = value }
        return .success(SlurmCommands(sbatch: found["sbatch"] ?? "sbatch", squeue: found["squeue"] ?? "squeue",
            scancel: found["scancel"] ?? "scancel", srun: found["srun"] ?? "srun", environment: slurmEnvironment))
    }

    /// Runs `arguments` (argv[0] an absolute path) and returns its standard output; a non-zero exit is
    /// a `SlurmCommandError` carrying its standard error.
    func run(_ arguments: [String]) throws(SlurmCommandError) -> String {
        let (status, out, err) = SlurmCommands.spawn(arguments, environment: environment)
        guard status == 0 else { throw SlurmCommandError(command: arguments, status: status, stderr: err) }
        return out
    }

    /// posix_spawn with both output streams on pipes, drained together so neither can fill and stall.
    static func spawn(_ arguments: [String], environment: [String: String]) -> (Int32, String, String) {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0 else { return (127, "", "pipe: \(String(cString: strerror(errno)))") }
        guard pipe(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            return (127, "", "pipe: \(String(cString: strerror(errno)))")
        }
        // Not inherited by anything else this process starts (shims are forked concurrently).
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        close(outPipe[1]); close(errPipe[1])
        guard rc == 0 else {
            close(outPipe[0]); close(errPipe[0])
            return (127, "", "cannot run \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        var out: [UInt8] = []
        var err: [UInt8] = []
        var fds = [pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0), pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0)]
        var open = 2
        var buffer = [UInt8](repeating: 0, count: 4096)
        while open > 0 {
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in 0..<2 where fds[index].fd >= 0 && fds[index].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fds[index].fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if index == 0 { out.append(contentsOf: buffer[0..<n]) } else { err.append(contentsOf: buffer[0..<n]) }
                } else if n == 0 || errno != EINTR {
                    close(fds[index].fd)
                    fds[index].fd = -1
                    open -= 1
                }
            }
        }
        for entry in fds where entry.fd >= 0 { close(entry.fd) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, spelled out: the macros are not imported.
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }
}
