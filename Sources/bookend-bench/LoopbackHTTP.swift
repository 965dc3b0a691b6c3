import Client
import Foundation

/// A minimal HTTP/1.1 keep-alive client over one blocking socket, signing each request with Shared Key.
///
/// The benchmark measures the daemon, so the client must cost as little as possible: no event loop, no
/// URLSession, one connection per thread, requests written with one `write` and answers parsed in place.
final class LoopbackHTTP {
    struct Response {
        var status: Int
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }

        /// Whether the body holds `needle`, by bytes: Foundation's `String.contains` went through
        /// NSString and was a tenth of the bench process's CPU during REST ingest, CPU the daemon
        /// it measures shares the machine with.
        func bodyContains(_ needle: String) -> Bool {
            let pattern = Array(needle.utf8)
            guard !pattern.isEmpty, body.count >= pattern.count else { return pattern.isEmpty }
            return (0...(body.count - pattern.count)).contains { start in
                body[start] == pattern[0] && body[start..<(start + pattern.count)].elementsEqual(pattern)
            }
        }
    }

    private let fd: Int32
    private let port: Int
    private let signer: SharedKeySigner
    private var buffer: [UInt8] = []
    private var dateSecond = 0
    private var dateText = ""
    private static let apiVersion = "2025-06-01"

    init(port: Int, signer: SharedKeySigner) throws {
        self.port = port
        self.signer = signer
        fd = try connectLoopback(port: port).get()
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// `path` is the request path with its query, without `api-version` (added here).
    func send(_ method: String, _ path: String, json: [UInt8]? = nil) throws -> Response {
        let target = path + (path.utf8.contains(UInt8(ascii: "?")) ? "&" : "?") + "api-version=\(LoopbackHTTP.apiVersion)"
        let date = rfc1123Now()
        var headers = ["ocp-date": date]
        if let json {
            headers["Content-Type"] = "application/json; odata=minimalmetadata; charset=utf-8"
            headers["Content-Length"] = String(json.count)
        }
        let signature = signer.signature(method: method, url: URL(string: "http://127.0.0.1:\(port)\(target)")!, headers: headers)
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nocp-date: \(date)\r\n"
        head += "Authorization: SharedKey \(signer.account):\(signature)\r\n"
        if let json {
            head += "Content-Type: \(headers["Content-Type"]!)\r\nContent-Length: \(json.count)\r\n"
        }
        head += "\r\n"
        var request = Array(head.utf8)
        if let json { request += json }
        try writeAll(request)
        return try readResponse(method: method)
    }

    private func rfc1123Now() -> String {
        let seconds = time(nil)
        if seconds != dateSecond {
            dateSecond = seconds
            var tm = tm()
            var t = seconds
            gmtime_r(&t, &tm)
            var bytes = [CChar](repeating: 0, count: 64)
            strftime(&bytes, bytes.count, "%a, %d %b %Y %H:%M:%S GMT", &tm)
            dateText = String(cString: bytes)
        }
        return dateText
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw BenchError("send: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw BenchError("connection closed by the daemon") }
        buffer += chunk[0..<n]
    }

    private func headerEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    private func readResponse(method: String) throws -> Response {
        var end = headerEnd()
        while end == nil {
            try fill()
            end = headerEnd()
        }
        let head = String(decoding: buffer[0..<end!], as: UTF8.self)
        buffer.removeFirst(end! + 4)
        let lines = head.split(separator: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var length = 0
        var chunked = false
        for line in lines.dropFirst() {
            let lower = line.lowercased()
            if lower.hasPrefix("content-length:") { length = Int(lower.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0 }
            if lower.hasPrefix("transfer-encoding:"), lower.contains("chunked") { chunked = true }
        }
        if method == "HEAD" || status == 204 || status == 304 { return Response(status: status, body: []) }
        if !chunked {
            while buffer.count < length { try fill() }
            let body = Array(buffer[0..<length])
            buffer.removeFirst(length)
            return Response(status: status, body: body)
        }
        var body: [UInt8] = []
        while true {
            var lineEnd = crlf()
            while lineEnd == nil {
                try fill()
                lineEnd = crlf()
            }
            let sizeText = String(decoding: buffer[0..<lineEnd!], as: UTF8.self).split(separator: ";").first ?? "0"
            let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) ?? 0
            buffer.removeFirst(lineEnd! + 2)
            while buffer.count < size + 2 { try fill() }
            body += buffer[0..<size]
            buffer.removeFirst(size + 2)
            if size == 0 { return Response(status: status, body: body) }
        }
    }

    private func crlf() -> Int? {
        guard buffer.count >= 2 else { return nil }
        for i in 0...(buffer.count - 2) where buffer[i] == 13 && buffer[i + 1] == 10 { return i }
        return nil
    }
}
