import Foundation
import Testing

/// Clients that connect and never finish a request: without an idle timeout each held a descriptor
/// of the daemon for ever, so anyone who could reach the port (no key needed: nothing is signed
/// yet) could starve it of descriptors, and with them of SQLite, task output and new connections.
@Suite struct SlowClientTests {
    /// Connects to `port`, sends `bytes` and reads until the server closes the connection; false
    /// when the 60 s receive timeout ran out first (the connection was held).
    static func closedByServer(port: Int, sending bytes: String) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        var timeout = timeval()
        timeout.tv_sec = 60
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = bytes.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    @Test func halfSentRequestsAreClosedAndTheDaemonKeepsAnswering() async throws {
        let server = try await LiveServer.start(idleTimeout: .seconds(1))
        defer { Task { await server.stop() } }
        let port = server.port
        // Nothing at all, half a request line, a head without its end, and a body shorter than
        // its Content-Length: each connection is closed by the server.
        let partial = [
            "",
            "GET /heal",
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"id\":",
        ]
        for bytes in partial {
            let closed = await Task.detached { Self.closedByServer(port: port, sending: bytes) }.value
            #expect(closed, "a connection that sent \(bytes.debugDescription) was held")
        }
        #expect(try await server.send(.get, "/health", apiVersion: nil, sign: false).status == 200)
        #expect(try await server.send(.get, "/jobs").status == 200)
    }
}
