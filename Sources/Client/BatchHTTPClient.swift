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

    public init(endpoint: URL, signer: SharedKeySigner, trust: TLSTrust? = nil) {
        self.endpoint = endpoint
        self.signer = signer
        self.trust = trust
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
                answer = try await HTTPSTransport.send(method: method, url: url, headers: headers, body: request.httpBody, trust: trust)
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
                throw ClientError(status: 0, code: "ConnectionFailed", message: "cannot reach \(endpoint.absoluteString): \(error.localizedDescription)")
            }
            let http = response as? HTTPURLResponse
            status = http?.statusCode ?? 0
            for (key, value) in http?.allHeaderFields ?? [:] { responseHeaders["\(key)".lowercased()] = "\(value)" }
        }
        guard expect.contains(status) else {
            struct Body: Decodable {
                struct Message: Decodable { let value: String }
                let code: String?
                let message: Message?
            }
            let decoded = try? JSONDecoder().decode(Body.self, from: data)
            let message = decoded?.message?.value.split(separator: "\n").first.map(String.init) ?? "HTTP \(status)"
            throw ClientError(status: status, code: decoded?.code ?? "HTTP\(status)", message: message)
        }
        return Response(status: status, headers: responseHeaders, body: data)
    }

    /// GETs a list and follows `odata.nextLink` until the last page.
    public func list<T: Decodable>(_ path: String, query: [(String, String)] = [], as type: T.Type) async throws -> [T] {
        var items: [T] = []
        var response = try await send("GET", path, query: query, expect: [200])
        while true {
            let page = try decode(ListPage<T>.self, response.body)
            items += page.value
            guard let next = page.nextLink, let url = URL(string: next) else { return items }
            response = try await send("GET", url: url, body: nil, expect: [200])
        }
    }

    struct ListPage<T: Decodable>: Decodable {
        let value: [T]
        let nextLink: String?
        enum CodingKeys: String, CodingKey { case value, nextLink = "odata.nextLink" }
    }

    public func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw ClientError(status: 0, code: "InvalidResponse", message: "unexpected response from the service: \(error)")
        }
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
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
