import Client
import Foundation

/// A `bookend serve` process on loopback over a data directory, as a user would run it.
// Immutable after init; client threads read only `port` and `signer`.
final class Daemon: @unchecked Sendable {
    let process: Process
    let port: Int
    let signer: SharedKeySigner
    /// Monotonic seconds when the process was started.
    let startedAt: Double
    /// Seconds from start until `/health` first answered.
    let readyAfter: Double

    var pid: Int32 { process.processIdentifier }

    /// Starts the daemon and returns once `/health` answers.
    /// `watch` runs about every millisecond while waiting (the recovery benchmark looks at the
    /// database from it, to catch a dispatch that happens before the API answers).
    init(binary: String, dataDirectory: String, port: Int, watch: (() -> Void)? = nil) throws {
        self.port = port
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--data-dir", dataDirectory, "--listen", "127.0.0.1:\(port)", "--log-level", "warning"]
        process.standardOutput = FileHandle.nullDevice
        let log = (dataDirectory as NSString).appendingPathComponent("daemon.log")
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        startedAt = monotonicSeconds()
        try process.run()
        let keyPath = (dataDirectory as NSString).appendingPathComponent("account.key")
        // The key file is complete before the daemon listens, so it is read only once /health answers.
        while monotonicSeconds() - startedAt < 120, !Daemon.healthy(port: port) {
            guard process.isRunning else { throw BenchError("bookend serve exited early; see \(log)") }
            watch?()
            usleep(1_000)
        }
        let ready = monotonicSeconds() - startedAt
        guard Daemon.healthy(port: port), let key = try? String(contentsOfFile: keyPath, encoding: .utf8) else {
            throw BenchError("bookend serve did not become healthy; see \(log)")
        }
        readyAfter = ready
        signer = try SharedKeySigner(account: "bookend", base64Key: key)
    }


    func client() throws -> LoopbackHTTP { try LoopbackHTTP(port: port, signer: signer) }

    /// SIGTERM and wait: a graceful stop (running processes are left to the next start).
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// SIGKILL: the crash the recovery benchmark measures.
    func crash() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    static func healthy(port: Int) -> Bool {
        guard case .success(let fd) = connectLoopback(port: port) else { return false }
        defer { close(fd) }
        let request = Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return false }
        var reply = [UInt8](repeating: 0, count: 64)
        let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 12 && String(decoding: reply[0..<n], as: UTF8.self).hasPrefix("HTTP/1.1 200")
    }

    /// A free TCP port on loopback.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension LoopbackHTTP {
    /// Sends and checks the status; the error names the request and the daemon's answer.
    @discardableResult
    func expect(_ status: Set<Int>, _ method: String, _ path: String, json: String? = nil) throws -> Response {
        let response = try send(method, path, json: json.map { Array($0.utf8) })
        guard status.contains(response.status) else {
            throw BenchError("\(method) \(path) answered \(response.status): \(response.text.prefix(300))")
        }
        return response
    }
}
