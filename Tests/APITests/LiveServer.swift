import API
import Bookend
import Crypto
import Foundation
import Logging
import Observability
import ServiceLifecycle
import TestSupport

/// How a test client canonicalizes what it signs (§7.2).
enum SignStyle: CaseIterable, Sendable {
    /// Python SDKs: query names as sent, first value, empty skipped; empty body signs length `0`.
    case python
    /// Python query style, but an empty body signs an empty length (.NET).
    case pythonEmptyLength
    /// Docs: names lowercased, all values comma-joined; length as sent.
    case docs
    /// .NET: lowercased names, empty length for empty bodies.
    case dotnet
}

struct Reply: Sendable {
    let status: Int
    /// Lowercased names.
    let headers: [String: String]
    let body: Data

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    var code: String? { json["code"] as? String }
    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers[name.lowercased()] }
    var values: [String: String] {
        var result: [String: String] = [:]
        for item in json["values"] as? [[String: Any]] ?? [] {
            if let key = item["key"] as? String, let value = item["value"] as? String { result[key] = value }
        }
        return result
    }
}

enum Method: String, Sendable {
    case get = "GET", head = "HEAD", post = "POST", put = "PUT", patch = "PATCH", delete = "DELETE"
    /// A method no Batch route serves anywhere (WebDAV's), for the 405 it must get.
    case propfind = "PROPFIND"
}

/// A real `APIServer` over a real engine and data directory, on an ephemeral loopback port.
final class LiveServer: Sendable {
    static let apiVersion = "2025-06-01"
    let engine: Engine
    let port: Int
    let account = "testacct"
    let key: Data
    let dataDirectory: String
    private let group: ServiceGroup
    private let serverTask: Task<Void, any Error>

    private init(engine: Engine, port: Int, key: Data, dataDirectory: String, group: ServiceGroup, serverTask: Task<Void, any Error>) {
        self.group = group
        self.engine = engine
        self.port = port
        self.key = key
        self.dataDirectory = dataDirectory
        self.serverTask = serverTask
    }

    /// With `tls` the server speaks only HTTPS (`send` then cannot reach it; use a TLS client).
    /// With `metrics`, the engine and the server record into it and `/metrics` is served.
    static func start(tls: TLSIdentity? = nil, idleTimeout: Duration = .seconds(75), metrics: BookendMetrics? = nil, maxConnections: Int? = nil) async throws -> LiveServer {
        let directory = NSTemporaryDirectory() + "bookend-api-\(UUID().uuidString.prefix(8))"
        let engine = try await Engine.open(dataDirectory: directory, configuration: EngineConfiguration(metricsFactory: metrics?.factory))
        let key = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "api-test")
        logger.logLevel = .critical  // cancelling the server at the end of a test logs errors
        let service = APIServer.makeService(
            engine: engine, configuration: .init(
                host: "127.0.0.1", port: 0, accountName: "testacct", key: key, tls: tls, idleTimeout: idleTimeout, metrics: metrics, maxConnections: maxConnections),
            logger: logger
        ) { port in continuation.yield(port) }
        // Stopped by a graceful shutdown, never by cancelling its task: a cancelled server drops the
        // connections it accepted but has not served yet, and swift-nio traps on each (apple/swift-nio#2637);
        // that ended the whole test process when Prometheus scraped at the moment a test ended.
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)],
            logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await value in ports {
            port = value
            break
        }
        return LiveServer(engine: engine, port: port, key: key, dataDirectory: directory, group: group, serverTask: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await serverTask.value
        await engine.shutdown()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    /// Sends a signed request. `path` is sent verbatim (raw, percent-encoded as given); `query` is
    /// appended with `api-version` unless `apiVersion` is nil.
    func send(
        _ method: Method, _ path: String, query: [(String, String)] = [], apiVersion: String? = LiveServer.apiVersion,
        body: String? = nil, rawBody: Data? = nil, headers extra: [String: String] = [:], style: SignStyle = .python,
        signingKey: Data? = nil, date: Date = Date(), sign: Bool = true, signDateLine: Bool = true
    ) async throws -> Reply {
        var pairs = query
        if let apiVersion { pairs.insert(("api-version", apiVersion), at: 0) }
        let queryString = pairs.map { "\($0.0)=\(LiveServer.encode($0.1))" }.joined(separator: "&")
        let target = path + (queryString.isEmpty ? "" : "?" + queryString)
        let payload = rawBody ?? body.map { Data($0.utf8) } ?? Data()
        var headers: [String: String] = ["ocp-date": LiveServer.httpDate(date), "client-request-id": UUID().uuidString]
        if method != .get && method != .head {
            headers["Content-Length"] = String(payload.count)
            if !payload.isEmpty { headers["Content-Type"] = "application/json; odata=minimalmetadata" }
        }
        for (name, value) in extra { headers[name] = value }
        if sign {
            var signed = headers
            if !signDateLine { signed = signed.filter { $0.key.lowercased() != "date" } }
            let toSign = LiveServer.stringToSign(
                method: method.rawValue, path: path, query: pairs, headers: signed, account: account, style: style)
            let mac = HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: SymmetricKey(data: signingKey ?? key))
            headers["Authorization"] = "SharedKey \(account):\(Data(mac).base64EncodedString())"
        }
        let port = self.port
        let headerList = headers.map { ($0.key, $0.value) }
        // Blocking socket I/O waits on a thread of its own, never where the server's handlers run.
        let response = try await onOwnThread {
            try RawHTTP.send(port: port, method: method.rawValue, target: target, headers: headerList, body: payload)
        }
        return Reply(status: response.status, headers: response.headers, body: response.body)
    }

    static func encode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    /// An independent implementation of the client side of §7.
    static func stringToSign(
        method: String, path: String, query: [(String, String)], headers: [String: String], account: String, style: SignStyle
    ) -> String {
        let lowered = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        var length = lowered["content-length"] ?? ""
        if (style == .pythonEmptyLength || style == .dotnet), length == "0" { length = "" }
        let names = ["content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
            "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range"]
        var text = method + "\n" + names.map { $0 == "content-length" ? length : lowered[$0] ?? "" }.joined(separator: "\n") + "\n"
        for (name, value) in lowered.filter({ $0.key.hasPrefix("ocp-") && !$0.value.isEmpty }).sorted(by: { $0.key < $1.key }) {
            text += "\(name):\(value)\n"
        }
        text += "/\(account)\(path)"
        switch style {
        case .python, .pythonEmptyLength:
            var seen: [String: String] = [:]
            for (name, value) in query where seen[name] == nil { seen[name] = value }
            for name in seen.keys.sorted() where !(seen[name] ?? "").isEmpty { text += "\n\(name):\(seen[name]!)" }
        case .docs, .dotnet:
            var grouped: [String: [String]] = [:]
            for (name, value) in query { grouped[name.lowercased(), default: []].append(value) }
            for name in grouped.keys.sorted() { text += "\n\(name):\(grouped[name]!.sorted().joined(separator: ","))" }
        }
        return text
    }
}

/// Runs `body` against a fresh server and stops it afterwards.
func withServer(
    tls: TLSIdentity? = nil, idleTimeout: Duration = .seconds(75), metrics: BookendMetrics? = nil, maxConnections: Int? = nil,
    _ body: (LiveServer) async throws -> Void
) async throws {
    let server = try await LiveServer.start(tls: tls, idleTimeout: idleTimeout, metrics: metrics, maxConnections: maxConnections)
    do {
        try await body(server)
    } catch {
        await server.stop()
        throw error
    }
    await server.stop()
}

/// Polls until `condition` holds (or fails the wait after `seconds`).
func eventually(_ seconds: Double = 30, _ condition: () async throws -> Bool) async throws -> Bool {
    // The condition is tried once more after the deadline: a task kept waiting for a thread past it
    // (every suite runs at once) must not fail a condition that came true meanwhile.
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if try await condition() { return true }
        if Date() >= deadline { return false }
        try await Task.sleep(for: .milliseconds(100))
    }
}
