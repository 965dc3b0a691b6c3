import Foundation
import TestSupport

/// A minimal HTTP/1.1 client over a blocking socket, so tests control the exact request line,
/// raw path and headers (URLSession would normalise `..` and add headers of its own).
enum RawHTTP {
    struct Response: Sendable {
        var status: Int
        /// Lowercased names.
        var headers: [String: String]
        var body: Data
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A TCP socket connected to 127.0.0.1:`port` whose reads give up after 60 s; the caller closes it.
    static func connectLoopback(port: Int) throws -> Int32 {
        try TestSupport.connectLoopback(port: port)
    }

    static func send(port: Int, method: String, target: String, headers: [(String, String)], body: Data) throws -> Response {
        let fd = try connectLoopback(port: port)
        defer { close(fd) }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        var request = Data(head.utf8)
        request.append(body)
        let started = ContinuousClock.now
        // Kept so that a connection that ends without a response says how it ended (refused, reset,
        // closed, timed out) instead of only "malformed".
        var sendFailure: String?
        request.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let sent = Glibc.send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                // The server may answer (e.g. 413) and close before reading everything.
                if sent <= 0 {
                    sendFailure = "send stopped after \(offset) of \(buffer.count) bytes: \(String(cString: strerror(errno)))"
                    return
                }
                offset += sent
            }
        }
        var received = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var ending = ""
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count < 0 {
                ending = "recv failed: \(String(cString: strerror(errno)))"
                break
            }
            if count == 0 {
                ending = "server closed the connection"
                break
            }
            received.append(contentsOf: chunk[0..<count])
            if let response = try? parse(received, method: method), response.complete { return response.response }
        }
        guard let parsed = try? parse(received, method: method) else {
            let waited = ContinuousClock.now - started
            throw Failure(description: """
                no complete response to \(method) \(target.prefix(80)) (\(ending) after \(waited); \
                \(sendFailure ?? "request fully sent"); \(received.count) bytes received): \
                \(String(decoding: received.prefix(200), as: UTF8.self))
                """)
        }
        return parsed.response
    }

    private static func parse(_ data: Data, method: String) throws -> (response: Response, complete: Bool) {
        guard let separator = data.range(of: Data("\r\n\r\n".utf8)) else { throw Failure(description: "no header end") }
        let headText = String(decoding: data[data.startIndex..<separator.lowerBound], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw Failure(description: "bad status line") }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[separator.upperBound...])
        if method == "HEAD" || status == 304 || status == 204 { return (Response(status: status, headers: headers, body: Data()), true) }
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            var decoded = Data()
            var rest = body
            while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
                let size = Int(String(decoding: rest[rest.startIndex..<lineEnd.lowerBound], as: UTF8.self), radix: 16) ?? 0
                if size == 0 { return (Response(status: status, headers: headers, body: decoded), true) }
                let start = lineEnd.upperBound
                guard rest.count >= rest.distance(from: rest.startIndex, to: start) + size + 2 else { break }
                decoded.append(rest[start..<rest.index(start, offsetBy: size)])
                rest = Data(rest[rest.index(start, offsetBy: size + 2)...])
            }
            return (Response(status: status, headers: headers, body: decoded), false)
        }
        if let length = headers["content-length"].flatMap(Int.init) {
            if body.count >= length {
                body = body.prefix(length)
                return (Response(status: status, headers: headers, body: body), true)
            }
            return (Response(status: status, headers: headers, body: body), false)
        }
        return (Response(status: status, headers: headers, body: body), false)
    }
}
