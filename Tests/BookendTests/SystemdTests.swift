import Foundation
import TestSupport
import Testing

/// `bookend serve` under systemd's notify protocol, with the test standing in for systemd: it listens
/// on a unix datagram socket of its own, passes it as `$NOTIFY_SOCKET`, and expects `READY=1` once the
/// daemon answers requests and `STOPPING=1` when SIGTERM begins a graceful stop. And the unit file
/// itself, checked by `systemd-analyze verify`.
@Suite struct SystemdTests {
    let binary = Repository.path(".build/debug/bookend")

    /// A bound `SOCK_DGRAM` unix socket; `@name` binds in the abstract namespace, as systemd may.
    final class NotifySocket: @unchecked Sendable {
        // @unchecked: the descriptor is only read after `init` and closed in `deinit`.
        let fd: Int32
        let name: String

        init(name: String) throws {
            self.name = name
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw POSIXError(.EIO) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var path = Array(name.utf8)
            let abstract = path.first == UInt8(ascii: "@")
            if abstract { path[0] = 0 }
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                for (index, byte) in path.enumerated() { buffer[index] = byte }
            }
            let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count + (abstract ? 0 : 1))
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard bound == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            // Short receives, so the caller can notice a daemon that exited instead of notifying.
            var timeout = timeval(tv_sec: 1, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        /// The next datagram, received on a thread of its own; nil once `process` has exited or two
        /// minutes have passed without one.
        func receive(while process: ChildProcess) async throws -> String? {
            let fd = fd
            return try await onOwnThread {
                let deadline = Date().addingTimeInterval(120)
                var buffer = [UInt8](repeating: 0, count: 4096)
                while Date() < deadline {
                    let count = recv(fd, &buffer, buffer.count, 0)
                    if count > 0 { return String(decoding: buffer[..<count], as: UTF8.self) }
                    if !process.isRunning { return nil }
                }
                return nil
            }
        }
    }

    @Test(arguments: [false, true])
    func notifiesReadyThenStopping(abstract: Bool) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        // As root, the task accounts must be able to reach the node folders below it.
        chmod(directory.path, 0o755)
        let name = abstract ? "@bookend-notify-test-\(getpid())-\(UUID().uuidString.prefix(8))" : directory.path + "/notify.sock"
        let socket = try NotifySocket(name: name)
        let port = try freePort()
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = name
        let log = directory.path + "/serve.log"
        let process = try ChildProcess(
            binary, ["serve", "--data-dir", directory.path + "/data", "--listen", "127.0.0.1:\(port)", "--log-level", "warning"],
            environment: environment, output: .file(log))
        let ready = try await socket.receive(while: process)
        #expect(ready?.split(separator: "\n").contains("READY=1") == true,
            "first notification: \(ready ?? "none"); bookend serve said: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        // By READY=1 the daemon answers.
        #expect(try await SystemdTests.health(port: port) == 200)
        process.terminate()
        let stopping = try await socket.receive(while: process)
        #expect(stopping?.split(separator: "\n").contains("STOPPING=1") == true, "second notification: \(stopping ?? "none")")
        let status = try await onOwnThread { process.waitUntilExit() }
        #expect(status == .exited(0))
    }

    @Test func unitPassesSystemdAnalyzeVerify() async throws {
        let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let analyze else {
            print("SystemdTests.unitPassesSystemdAnalyzeVerify skipped: no systemd-analyze (make test-deps installs Debian's systemd)")
            return
        }
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        // As `make install` writes it: @BINDIR@ becomes the folder of a real binary, which verify checks exists.
        let directory = try TemporaryDirectory()
        let template = try String(contentsOfFile: Repository.path("contrib/systemd/bookend.service"), encoding: .utf8)
        let unit = directory.path + "/bookend.service"
        try template.replacingOccurrences(of: "@BINDIR@", with: (binary as NSString).deletingLastPathComponent)
            .write(toFile: unit, atomically: true, encoding: .utf8)
        #expect(template.contains("\nKillMode=process\n"))
        #expect(template.contains("\nType=notify\n"))
        #expect(!template.contains("\nNoNewPrivileges="))
        let result = try await onOwnThread { () -> (Int32, String) in
            var environment = ProcessInfo.processInfo.environment
            environment["SYSTEMD_LOG_LEVEL"] = "warning"
            let verify = try spawnAndWait(analyze, ["verify", "--man=no", unit], environment: environment)
            return (verify.status, verify.stdout + verify.stderr)
        }
        // Outside a booted systemd (a container) verify cannot load the unit manager at all; that is the
        // machine, not the unit. Anything it says about bookend.service itself fails the test.
        let aboutUnit = result.1.split(separator: "\n").filter { $0.contains("bookend.service") }
        if result.0 != 0, aboutUnit.isEmpty {
            print("SystemdTests.unitPassesSystemdAnalyzeVerify skipped: systemd-analyze cannot run here (\(result.1.trimmingCharacters(in: .whitespacesAndNewlines)))")
            return
        }
        #expect(result.0 == 0 && aboutUnit.isEmpty, "systemd-analyze verify: \(result.1)")
    }

    /// GET /health on loopback with curl; the status code.
    static func health(port: Int) async throws -> Int {
        try await onOwnThread {
            let curl = try spawnAndWait("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "http://127.0.0.1:\(port)/health"])
            return Int(curl.stdout) ?? 0
        }
    }
}
