import BatchModels
import Foundation

/// What a success without a body answers (deletes, actions).
public struct NoContent: Sendable, Hashable {
    public init() {}
}

/// One REST operation, typed by what a success answers: method, path (percent-encoded, relative to
/// the endpoint), query, JSON body, and the statuses that mean success. `BatchOperations` builds them;
/// `BatchHTTPClient.send(_:)` runs them.
public struct BatchRequest<Response: Sendable>: Sendable {
    public var method: String
    public var path: String
    public var query: [(String, String)]
    public var body: Data?
    public var expect: Set<Int>
    /// Turns a success's body into the response.
    let decode: @Sendable (Data) throws -> Response

    init(_ method: String, _ path: String, query: [(String, String)] = [], body: Data? = nil, expect: Set<Int>,
         decode: @escaping @Sendable (Data) throws -> Response) {
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.expect = expect
        self.decode = decode
    }
}

extension BatchRequest where Response: Decodable {
    /// A request whose success is a JSON body of `Response`.
    public init(_ method: String, _ path: String, query: [(String, String)] = [], body: Data? = nil, expect: Set<Int>) {
        self.init(method, path, query: query, body: body, expect: expect) { try BatchJSON.decode(Response.self, $0) }
    }
}

extension BatchRequest where Response == NoContent {
    /// A request whose success has no body worth reading.
    public init(_ method: String, _ path: String, query: [(String, String)] = [], body: Data? = nil, expect: Set<Int>) {
        self.init(method, path, query: query, body: body, expect: expect) { _ in NoContent() }
    }
}

extension BatchRequest where Response == Data {
    /// A request whose success is raw bytes (a file's content).
    public init(_ method: String, _ path: String, query: [(String, String)] = [], expect: Set<Int>) {
        self.init(method, path, query: query, body: nil, expect: expect) { $0 }
    }
}

/// The one JSON configuration of requests and answers.
public enum BatchJSON {
    /// Bodies as the service writes them: sorted keys, `/` not escaped, nil properties left out.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    public static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do {
            let decoder = JSONDecoder()
            decoder.userInfo[OpaqueJSON.sourceKey] = OpaqueJSON.Source { [UInt8](data) }
            return try decoder.decode(type, from: data)
        } catch {
            throw ClientError(status: 0, code: "InvalidResponse", message: "unexpected response from the service: \(error)")
        }
    }
}
