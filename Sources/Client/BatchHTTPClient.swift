import BatchModels
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An error answered by the service (status and Batch error code), or a local failure (status 0).
public struct ClientError: Error, Sendable, CustomStringConvertible {
    public let status: Int
    public let code: String
    public let message: String
    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }
    public var description: String { status == 0 ? message : "\(code) (HTTP \(status)): \(message)" }
}

/// A minimal Azure Batch REST client: signed requests, Batch error bodies decoded, pages followed.
public struct BatchHTTPClient: Sendable {
    public static let apiVersion = "2025-06-01"
    public let endpoint: URL
    public let signer: SharedKeySigner
    /// For an `https` endpoint: whom to trust. `nil` means the system's certificate authorities.
    public let trust: TLSTrust?
    /// How long a request waits for the answer once connected (either scheme); then it fails and says so.
    public let answerTimeout: TimeInterval
    /// URLSession's own default, kept for both schemes.
    public static let defaultAnswerTimeout: TimeInterval = 60

    public init(endpoint: URL, signer: SharedKeySigner, trust: TLSTrust? = nil, answerTimeout: TimeInterval = BatchHTTPClient.defaultAnswerTimeout) {
        self.endpoint = endpoint
        self.signer = signer
        self.trust = trust
        self.answerTimeout = answerTimeout
    }

    /// URLSession's failures in words a user can act on: on Linux its `localizedDescription` is only
    /// "The operation could not be completed. (NSURLErrorDomain error -1001.)".
    static func describe(_ error: any Error, host: String, timeout: TimeInterval) -> String {
        guard let error = error as? URLError else { return error.localizedDescription }
        switch error.code {
        case .timedOut: return HTTPSTransport.noAnswer(host: host, within: timeout)
        case .cannotConnectToHost: return "connection refused (nothing listens there: is bookend serve running on that address?)"
        case .cannotFindHost, .dnsLookupFailed: return "cannot resolve \(host)"
        case .networkConnectionLost: return "the connection closed before the answer was complete"
        case .badServerResponse: return "the answer was not HTTP/1.1"
        default: return error.localizedDescription
        }
    }

    public struct Response: Sendable {
        public let status: Int
        public let headers: [String: String]
        public let body: Data
    }

    /// Sends one request. `path` is relative to the endpoint (e.g. `/jobs/j1`), already percent-encoded.
    public func send(_ method: String, _ path: String, query: [(String, String)] = [], body: Data? = nil, expect: Set<Int>) async throws -> Response {
        var components = URLComponents(url: endpoint, resolvingAgainstBaseURL: false)!
        components.percentEncodedPath = (components.percentEncodedPath.hasSuffix("/") ? String(components.percentEncodedPath.dropLast()) : components.percentEncodedPath) + path
        components.queryItems = [URLQueryItem(name: "api-version", value: Self.apiVersion)] + query.map { URLQueryItem(name: $0.0, value: $0.1) }
        guard let url = components.url else { throw ClientError(status: 0, code: "InvalidUri", message: "cannot build a URL for \(path)") }
        return try await send(method, url: url, body: body, expect: expect)
    }

    func send(_ method: String, url: URL, body: Data?, expect: Set<Int>) async throws -> Response {
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = answerTimeout
        var headers: [String: String] = [
            "ocp-date": Self.rfc1123(Date()),
            "client-request-id": UUID().uuidString.lowercased(),
        ]
        if let body {
            request.httpBody = body
            headers["Content-Type"] = "application/json; odata=minimalmetadata"
            headers["Content-Length"] = "\(body.count)"
        } else if ["POST", "PUT", "PATCH"].contains(method) {
            request.httpBody = Data()
            headers["Content-Length"] = "0"
        }
        headers["Authorization"] = "SharedKey \(signer.account):\(signer.signature(method: method, url: url, headers: headers))"
        let data: Data
        let status: Int
        var responseHeaders: [String: String] = [:]
        if url.scheme?.lowercased() == "https" {
            let trust = try self.trust ?? TLSTrust.system()
            let answer: HTTPSTransport.Answer
            do {
                answer = try await HTTPSTransport.send(method: method, url: url, headers: headers, body: request.httpBody, trust: trust,
                    answerTimeout: answerTimeout)
            } catch let error as ClientError {
                throw error
            } catch {
                throw ClientError(status: 0, code: "ConnectionFailed",
                    message: "cannot reach \(endpoint.absoluteString): \(HTTPSTransport.describe(error, host: url.host ?? "", trust: trust))")
            }
            (data, status, responseHeaders) = (answer.body, answer.status, answer.headers)
        } else {
            for (name, value) in headers where name != "Content-Length" { request.setValue(value, forHTTPHeaderField: name) }
            let response: URLResponse
            do {
                (data, response) = try await URLSession.shared.data(for: request)
            } catch {
                throw ClientError(status: 0, code: "ConnectionFailed",
                    message: "cannot reach \(endpoint.absoluteString): \(Self.describe(error, host: url.host ?? "", timeout: answerTimeout))")
            }
            let http = response as? HTTPURLResponse
            status = http?.statusCode ?? 0
            for (key, value) in http?.allHeaderFields ?? [:] { responseHeaders["\(key)".lowercased()] = "\(value)" }
        }
        guard expect.contains(status) else {
            // Not every failure is a Batch error body (a proxy's 502, a HEAD): then the status is all we know.
            let decoded = try? JSONDecoder().decode(BatchError.self, from: data)
            // No Batch error body at all, and no `request-id` (which every answer of a daemon carries):
            // whatever answered is not a Bookend (or Batch) endpoint.
            let notBatch = decoded == nil && responseHeaders["request-id"] == nil
            let message = decoded?.message?.value.split(separator: "\n").first.map(String.init)
                ?? (notBatch ? "\(endpoint.absoluteString) answered HTTP \(status) and is not a Bookend daemon (check --endpoint)" : "HTTP \(status)")
            throw ClientError(status: status, code: decoded?.code ?? "HTTP\(status)", message: message)
        }
        return Response(status: status, headers: responseHeaders, body: data)
    }

    /// Runs one operation and decodes what a success answers.
    public func send<Answer>(_ request: BatchRequest<Answer>) async throws -> Answer {
        let response = try await send(request.method, request.path, query: request.query, body: request.body, expect: request.expect)
        return try request.decode(response.body)
    }

    /// GETs one JSON resource, e.g. `get(BatchPool.self, "/pools/p1")`.
    public func get<T: Decodable & Sendable>(_ type: T.Type, _ path: String, query: [(String, String)] = []) async throws -> T {
        try await send(BatchRequest<T>("GET", path, query: query, expect: [200]))
    }

    /// Every item of a list, following `odata.nextLink` until the last page.
    public func list<Item>(_ request: BatchRequest<BatchPage<Item>>) async throws -> [Item] {
        var page = try await send(request)
        var items = page.value
        while let next = page.odataNextLink {
            guard let url = URL(string: next) else {
                throw ClientError(status: 0, code: "InvalidResponse", message: "the service sent a next link that is not a URL: \(next)")
            }
            page = try request.decode(try await send("GET", url: url, body: nil, expect: [200]).body)
            items += page.value
        }
        return items
    }

    static func rfc1123(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    /// Percent-encodes one path segment (ids, and file paths whose `/` must travel as `%2F`).
    public static func segment(_ text: String) -> String {
        // A segment that is `.` or `..` is a dot segment to every URL library: sent as is, it was
        // removed before the request left (`task file J T .` then reached another path than the one
        // signed, and the daemon answered 403). Encoded, it reaches the daemon, which says what is
        // wrong with it.
        if text == "." || text == ".." { return String(repeating: "%2E", count: text.count) }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
