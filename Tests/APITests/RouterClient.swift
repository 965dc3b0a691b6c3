import API
import Bookend
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore

/// The Batch application driven through Hummingbird's router test client (`app.test(.router)`):
/// the same router, middleware and engine as `bookend serve`, without a socket, for the fast tests
/// of routing and input rules. Requests are signed like `LiveServer.send`.
struct RouterClient: Sendable {
    let client: any TestClientProtocol
    let key: Data
    let account = "testacct"

    func send(
        _ method: HTTPRequest.Method, _ path: String, query: [(String, String)] = [], apiVersion: String? = LiveServer.apiVersion,
        body: String? = nil, sign: Bool = true
    ) async throws -> Reply {
        var pairs = query
        if let apiVersion { pairs.insert(("api-version", apiVersion), at: 0) }
        let queryString = pairs.map { "\($0.0)=\(LiveServer.encode($0.1))" }.joined(separator: "&")
        let payload = Data((body ?? "").utf8)
        var headers: [String: String] = ["ocp-date": LiveServer.httpDate(Date()), "client-request-id": UUID().uuidString]
        if method != .get && method != .head {
            headers["Content-Length"] = String(payload.count)
            if !payload.isEmpty { headers["Content-Type"] = "application/json; odata=minimalmetadata" }
        }
        if sign {
            let toSign = LiveServer.stringToSign(method: method.rawValue, path: path, query: pairs, headers: headers, account: account, style: .python)
            let mac = HMAC<SHA256>.authenticationCode(for: Data(toSign.utf8), using: SymmetricKey(data: key))
            headers["Authorization"] = "SharedKey \(account):\(Data(mac).base64EncodedString())"
        }
        var fields = HTTPFields()
        for (name, value) in headers {
            if let fieldName = HTTPField.Name(name) { fields[fieldName] = value }
        }
        let response = try await client.execute(
            uri: path + (queryString.isEmpty ? "" : "?" + queryString), method: method, headers: fields,
            body: payload.isEmpty ? nil : ByteBuffer(bytes: payload))
        var replyHeaders: [String: String] = [:]
        for field in response.headers { replyHeaders[field.name.canonicalName] = field.value }
        return Reply(status: Int(response.status.code), headers: replyHeaders, body: Data(response.body.readableBytesView))
    }
}

/// Runs `body` against `APIServer.buildApplication` over a fresh engine and data directory.
func withRouter(in folder: String? = nil, _ body: @Sendable (RouterClient) async throws -> Void) async throws {
    let directory = (folder ?? NSTemporaryDirectory()) + "/bookend-router-\(UUID().uuidString.prefix(8))"
    let engine = try await Engine.open(dataDirectory: directory)
    let key = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
    var logger = Logger(label: "router-test")
    logger.logLevel = .critical
    let app = APIServer.buildApplication(
        engine: engine, configuration: .init(accountName: "testacct", key: key), logger: logger)
    do {
        try await app.test(.router) { client in try await body(RouterClient(client: client, key: key)) }
    } catch {
        await engine.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
        throw error
    }
    await engine.shutdown()
    try? FileManager.default.removeItem(atPath: directory)
}
