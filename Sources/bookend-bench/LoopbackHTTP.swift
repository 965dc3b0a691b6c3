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
    /// Bytes received and not yet parsed are `buffer[start..<buffer.count]`; consumed bytes are dropped
    /// only when the buffer is empty again or past 64 KiB, so a response costs no `memmove` of the rest.
    private var buffer: [UInt8] = []
    private var start = 0
    /// One receive area for the connection's life: a fresh 64 KiB array per `recv` was zeroed every time.
    private var chunk = [UInt8](repeating: 0, count: 65_536)
    private var dateSecond = 0
    private var dateText = ""
    /// The last request's signature, reused while method, target, body length and `ocp-date` (one
    /// second's resolution) are the same: the string signed would be the same bytes. The daemon still
    /// verifies every request; only this client's HMAC work is not repeated.
    private var lastSigned: (key: String, signature: String)?
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
        let contentType = "application/json; odata=minimalmetadata; charset=utf-8"
        let memo = "\(method) \(target) \(json?.count ?? -1) \(date)"
        let signature: String
        if let lastSigned, lastSigned.key == memo {
            signature = lastSigned.signature
        } else {
            var headers = ["ocp-date": date]
            if let json {
                headers["Content-Type"] = contentType
                headers["Content-Length"] = String(json.count)
            } else if writesWithoutBody.contains(method) {
                headers["Content-Length"] = "0"
            }
            signature = signer.signature(method: method, url: URL(string: "http://127.0.0.1:\(port)\(target)")!, headers: headers)
            lastSigned = (memo, signature)
        }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nocp-date: \(date)\r\n"
        head += "Authorization: SharedKey \(signer.account):\(signature)\r\n"
        if let json {
            head += "Content-Type: \(contentType)\r\nContent-Length: \(json.count)\r\n"
        } else if writesWithoutBody.contains(method) {
            // A write says how long its body is even when it has none (411 otherwise, as Batch answers).
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        var request = Array(head.utf8)
        if let json { request += json }
        try writeAll(request)
        return try readResponse(method: method)
    }

    private let writesWithoutBody: Set<String> = ["POST", "PUT", "PATCH"]

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
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 65_536 {
            buffer.removeFirst(start)
            start = 0
        }
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw BenchError("connection closed by the daemon") }
        buffer += chunk[0..<n]
    }

    /// The index of the first `\r\n` (or `\r\n\r\n` when `blank`) at or after `from`, if received.
    private func find(from: Int, blank: Bool) -> Int? {
        let width = blank ? 4 : 2
        guard buffer.count - from >= width else { return nil }
        for i in from...(buffer.count - width) where buffer[i] == 13 && buffer[i + 1] == 10 {
            if !blank || (buffer[i + 2] == 13 && buffer[i + 3] == 10) { return i }
        }
        return nil
    }

    /// Whether `buffer[at...]` starts with `lowercase` (ASCII letters compared without case).
    private func hasPrefix(_ lowercase: StaticString, at: Int, end: Int) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard end - at >= count else { return false }
        return lowercase.withUTF8Buffer { pattern in
            (0..<count).allSatisfy { buffer[at + $0] | (buffer[at + $0] >= 65 && buffer[at + $0] <= 90 ? 32 : 0) == pattern[$0] }
        }
    }

    /// The decimal (or, with `radix` 16, hexadecimal) number in `buffer[from..<end]`, spaces skipped.
    private func number(_ from: Int, _ end: Int, radix: Int = 10) -> Int {
        var value = 0
        for i in from..<end {
            let byte = buffer[i]
            let digit: Int
            switch byte {
            case 48...57: digit = Int(byte - 48)
            case 97...102 where radix == 16: digit = Int(byte - 87)
            case 65...70 where radix == 16: digit = Int(byte - 55)
            case 32, 9: continue
            default: return value
            }
            value = value * radix + digit
        }
        return value
    }

    private func readResponse(method: String) throws -> Response {
        var end = find(from: start, blank: true)
        while end == nil {
            try fill()
            end = find(from: start, blank: true)
        }
        let headEnd = end!
        // "HTTP/1.1 200 OK": the status is the three digits after the first space.
        var cursor = start
        while cursor < headEnd, buffer[cursor] != 32 { cursor += 1 }
        let status = number(cursor + 1, min(cursor + 4, headEnd))
        var length = 0
        var chunked = false
        var line = (find(from: start, blank: false) ?? headEnd) + 2
        while line < headEnd {
            let lineEnd = find(from: line, blank: false) ?? headEnd
            if hasPrefix("content-length:", at: line, end: lineEnd) {
                length = number(line + 15, lineEnd)
            } else if hasPrefix("transfer-encoding:", at: line, end: lineEnd) {
                chunked = String(decoding: buffer[(line + 18)..<lineEnd], as: UTF8.self).lowercased().contains("chunked")
            }
            line = lineEnd + 2
        }
        start = headEnd + 4
        if method == "HEAD" || status == 204 || status == 304 { return Response(status: status, body: []) }
        if !chunked {
            while buffer.count - start < length { try fill() }
            let body = Array(buffer[start..<(start + length)])
            start += length
            return Response(status: status, body: body)
        }
        var body: [UInt8] = []
        while true {
            var lineEnd = find(from: start, blank: false)
            while lineEnd == nil {
                try fill()
                lineEnd = find(from: start, blank: false)
            }
            var sizeEnd = start
            while sizeEnd < lineEnd!, buffer[sizeEnd] != UInt8(ascii: ";") { sizeEnd += 1 }
            let size = number(start, sizeEnd, radix: 16)
            start = lineEnd! + 2
            while buffer.count - start < size + 2 { try fill() }
            body += buffer[start..<(start + size)]
            start += size + 2
            if size == 0 { return Response(status: status, body: body) }
        }
    }
}
