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
            // A signal for this test process (a child's exit) is no answer from the server.
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    /// Whether the server closed `fd` (reads until the end; false when 10 s pass first).
    static func closedByServer(port: Int, existing fd: Int32) -> Bool {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count == 0 { return true }
            // A signal for this test process (a child's exit) is no answer from the server.
            if count < 0 && errno == EINTR { continue }
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
            if count < 0 && errno == EINTR { continue }
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
            for bad in ["a\"b", "evil/path", "x y", "host:port", "[::1", ":80", "host:65536", "host:99999"] {
                let answer = try await exchange(bad)
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(bad): \(answer.prefix(200))")
                #expect(answer.contains("InvalidHeaderValue"), "\(bad)")
                #expect(!answer.contains(bad), "\(bad) was copied into the answer")
            }
            // Two Host fields: which one the links would name is ambiguous (RFC 9112 §3.2).
            let twice = try await onOwnThread {
                try Self.exchange(port: port, sending: "GET /jobs?api-version=\(LiveServer.apiVersion) HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n")
            }
            #expect(twice.hasPrefix("HTTP/1.1 400"), "\(twice.prefix(200))")
            #expect(twice.contains("InvalidHeaderValue"))
            // Unsigned, so 403, but past the Host check.
            for good in ["example.test:1234", "[::1]:8080", "127.0.0.1", "batch.example", "example.test:65535"] {
                let answer = try await exchange(good)
                #expect(answer.hasPrefix("HTTP/1.1 403"), "\(good): \(answer.prefix(200))")
            }
        }
    }

    /// Sends one `GET /health` on `fd` and reads its answer (the connection stays open).
    static func health(_ fd: Int32) -> Bool {
        let request = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        guard request.withCString({ Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }) > 0 else { return false }
        var chunk = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &chunk, chunk.count, 0)
        return count > 0 && String(decoding: chunk[0..<count], as: UTF8.self).hasPrefix("HTTP/1.1 200")
    }

    /// At the connection cap, keep-alive connections that ask for `/health` now and then (no key
    /// needed) held every slot for ever, each request restarting the idle timeout: a new client waited
    /// in the backlog for good. Now the idlest connection is closed to make room for each new one.
    @Test func aNewClientAtTheCapTakesTheSlotOfTheIdlestConnection() async throws {
        try await withServer(maxConnections: 3) { server in
            let port = server.port
            let held = try await onOwnThread { () -> [Int32] in
                var fds: [Int32] = []
                for _ in 0..<3 {
                    let fd = try RawHTTP.connectLoopback(port: port)
                    fds.append(fd)
                    #expect(Self.health(fd))
                }
                return fds
            }
            defer { for fd in held { close(fd) } }
            // Active again just now: the newest of them is not what makes room.
            try await onOwnThread { for fd in held.dropFirst() { #expect(Self.health(fd)) } }
            // A new client is served (its receive timeout is 30 s, still well short of the 75 s idle
            // timeout that would free a slot anyway; 10 s was once too short while the whole test
            // suite loaded both cores in a CI run).
            let served = try await onOwnThread { () -> Bool in
                let fd = try RawHTTP.connectLoopback(port: port)
                defer { close(fd) }
                var timeout = timeval(tv_sec: 30, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                return Self.health(fd)
            }
            #expect(served, "a new client at the cap waited")
            // The one closed was the idlest: the first.
            let firstClosed = try await onOwnThread { Self.closedByServer(port: port, existing: held[0]) }
            #expect(firstClosed)
            #expect(try await server.send(.get, "/jobs").status == 200)
        }
    }

    /// A body trickled one byte at a time restarted the idle timeout with each byte: the sender held
    /// the connection (and, at the cap, its slot) for as long as it liked, without the key. Now a
    /// request must be read in full within the idle timeout of its head.
    @Test func aBodyTrickledAByteAtATimeIsCutOff() async throws {
        try await withServer(idleTimeout: .seconds(1)) { server in
            let port = server.port
            let closed = try await onOwnThread { () -> Bool in
                let fd = try RawHTTP.connectLoopback(port: port)
                defer { close(fd) }
                let head = "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
                _ = head.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                // A byte every 0.4 s (well inside the idle timeout) for up to 8 s.
                for _ in 0..<20 {
                    Thread.sleep(forTimeInterval: 0.4)
                    var probe = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    if poll(&probe, 1, 0) > 0 {
                        var chunk = [UInt8](repeating: 0, count: 4096)
                        let count = recv(fd, &chunk, chunk.count, 0)
                        if count <= 0 { return true }
                    }
                    if " ".withCString({ Glibc.send(fd, $0, 1, Int32(MSG_NOSIGNAL)) }) < 0 { return true }
                }
                return false
            }
            #expect(closed, "a trickled body held its connection for 8 s")
            #expect(try await server.send(.get, "/jobs").status == 200)
        }
    }

    /// A client that pipelines requests and never reads the answers held its connection for ever:
    /// the idle timeout only counts while nothing is written. Now a connection whose answers have not
    /// drained for the idle timeout is closed: the client gets fewer answers than it asked for.
    @Test func aClientThatNeverReadsItsAnswersIsClosed() async throws {
        try await withServer(idleTimeout: .seconds(1)) { server in
            let port = server.port
            let (sent, answered) = try await onOwnThread { () -> (Int, Int) in
                let fd = try RawHTTP.connectLoopback(port: port)
                defer { close(fd) }
                // A small receive buffer, and answers of a few KB each (the sign-in page): the server's
                // own buffers fill after a few hundred answers, and a few thousand requests overflow them.
                var small: Int32 = 4096
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
                var timeout = timeval(tv_sec: 3, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let request = Array("GET /ui/sign-in HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
                let batch = Array(repeating: request, count: 4000).flatMap { $0 }
                let count = batch.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                let sent = max(0, count) / request.count
                // Not reading for longer than the idle timeout, then reading what is there.
                Thread.sleep(forTimeInterval: 4)
                timeout.tv_sec = 30
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var answers = 0
                var tail: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 65536)
                let marker = Array("HTTP/1.1 200".utf8)
                while true {
                    let count = recv(fd, &chunk, chunk.count, 0)
                    if count <= 0 { break }
                    let data = tail + chunk[0..<count]
                    var index = 0
                    while index + marker.count <= data.count {
                        if data[index] == marker[0], Array(data[index..<(index + marker.count)]) == marker { answers += 1; index += marker.count } else { index += 1 }
                    }
                    tail = Array(data.suffix(marker.count - 1))
                }
                return (sent, answers)
            }
            #expect(sent > 0)
            #expect(answered < sent, "every one of \(sent) requests was answered: the stalled connection was kept")
            #expect(try await server.send(.get, "/jobs").status == 200)
        }
    }

    @Test func halfSentRequestsAreClosedAndTheDaemonKeepsAnswering() async throws {
        try await withServer(idleTimeout: .seconds(1)) { server in try await Self.check(server) }
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
