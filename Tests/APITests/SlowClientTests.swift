import Dispatch
import Foundation
import TestSupport
import Testing

/// Clients that connect and never finish a request: without an idle timeout each held a descriptor
/// of the daemon for ever, so anyone who could reach the port (no key needed: nothing is signed
/// yet) could starve it of descriptors, and with them of SQLite, task output and new connections.
@Suite struct SlowClientTests {
    /// Connects to `port`, sends `bytes` and reads until the server closes the connection; false
    /// when the 60 s receive timeout ran out first (the connection was held).
    static func closedByServer(port: Int, sending bytes: String) -> Bool {
        guard let fd = try? RawHTTP.connectLoopback(port: port) else { return false }
        defer { close(fd) }
        _ = bytes.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    /// Sends `bytes` as they are on a new connection (then, with `thenShutWrite`, ends its sending
    /// side) and reads everything the server answers until it closes.
    static func exchange(port: Int, sending bytes: String, thenShutWrite: Bool = false) throws -> String {
        let fd = try RawHTTP.connectLoopback(port: port)
        defer { close(fd) }
        _ = bytes.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        if thenShutWrite { shutdown(fd, Int32(SHUT_WR)) }
        var received = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            received += chunk[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// A body that ends (the client shuts its side) before its Content-Length is a bad request, not
    /// one that was too large.
    @Test func aBodyCutShortIsABadRequest() async throws {
        try await withServer { server in
            let port = server.port
            let date = LiveServer.httpDate(Date())
            let headers = ["ocp-date": date, "Content-Length": "100", "Content-Type": "application/json; odata=minimalmetadata"]
            let authorization = AuthTests.authorization(server, .post, "/jobs", headers: headers)
            let head = "POST /jobs?api-version=\(LiveServer.apiVersion) HTTP/1.1\r\nHost: x\r\n"
                + headers.map { "\($0.key): \($0.value)\r\n" }.joined() + "Authorization: \(authorization)\r\n\r\n"
            let answer = try await onOwnThread { try Self.exchange(port: port, sending: head + "{\"id\":", thenShutWrite: true) }
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer.prefix(300))")
            #expect(answer.contains("InvalidRequestBody"), "\(answer.prefix(300))")
            #expect(try await server.send(.get, "/jobs").status == 200)
        }
    }

    /// A Host header that is no host (quotes, spaces, slashes) is refused, not copied into the links
    /// an answer hands out; a host name with a port is used as it is.
    @Test func aHostThatIsNoHostIsRefused() async throws {
        try await withServer { server in
            let port = server.port
            func exchange(_ host: String) async throws -> String {
                try await onOwnThread {
                    try Self.exchange(port: port, sending: "GET /jobs?api-version=\(LiveServer.apiVersion) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
                }
            }
            for bad in ["a\"b", "evil/path", "x y", "host:port", "[::1", ":80"] {
                let answer = try await exchange(bad)
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(bad): \(answer.prefix(200))")
                #expect(answer.contains("InvalidHeaderValue"), "\(bad)")
                #expect(!answer.contains(bad), "\(bad) was copied into the answer")
            }
            // Unsigned, so 403, but past the Host check.
            for good in ["example.test:1234", "[::1]:8080", "127.0.0.1", "batch.example"] {
                let answer = try await exchange(good)
                #expect(answer.hasPrefix("HTTP/1.1 403"), "\(good): \(answer.prefix(200))")
            }
        }
    }

    @Test func halfSentRequestsAreClosedAndTheDaemonKeepsAnswering() async throws {
        let server = try await LiveServer.start(idleTimeout: .seconds(1))
        // Stopped (engine shut down) before the test returns, on every path.
        do {
            try await Self.check(server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    private static func check(_ server: LiveServer) async throws {
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
            let closed = try await onOwnThread { Self.closedByServer(port: port, sending: bytes) }
            #expect(closed, "a connection that sent \(bytes.debugDescription) was held")
        }
        #expect(try await server.send(.get, "/health", apiVersion: nil, sign: false).status == 200)
        #expect(try await server.send(.get, "/jobs").status == 200)
    }
}
