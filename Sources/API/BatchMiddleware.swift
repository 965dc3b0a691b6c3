import Bookend
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

// The middleware every Batch route runs behind, outermost first: envelope (request id, common
// headers, errors as Batch bodies), Shared Key, api-version, then the body. Hummingbird runs a
// router's middleware for unknown paths too, so a 404 is signed, versioned and enveloped like any answer.

/// Gives each request its id, adds the headers every Batch answer carries (`request-id`,
/// `client-request-id`, `DataServiceVersion`), and turns every failure into a Batch error body.
struct BatchEnvelopeMiddleware: RouterMiddleware {
    typealias Context = BatchRequestContext

    let logger: Logger
    /// Refusals that leave the request's body unread: the connection is closed after their answer.
    static let closesConnection: Set<String> = ["AuthenticationFailed", "InvalidAuthenticationInfo", "RequestBodyTooLarge", "MissingContentLengthHeader"]
    /// `https` behind TLS: the links we hand out (`odata.nextLink`, `url`, `DataServiceId`) are
    /// followed by clients, and an `http` link to the TLS port would fail (or leak the request).
    let scheme: String

    /// `host[:port]` with a DNS name or IPv4 address, or `[IPv6]:port`: the shapes a Host header has.
    static func isAuthority(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 300 else { return false }
        var index = 0
        if bytes[0] == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close > 1 else { return false }
            guard bytes[1..<close].allSatisfy({ $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "%")
                || (48...57).contains($0) || (65...70).contains($0) || (97...102).contains($0) }) else { return false }
            index = close + 1
        } else {
            while index < bytes.count, bytes[index] != UInt8(ascii: ":") {
                let b = bytes[index]
                guard (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_")
                else { return false }
                index += 1
            }
            guard index > 0 else { return false }
        }
        guard index < bytes.count else { return true }
        guard bytes[index] == UInt8(ascii: ":") else { return false }
        let port = bytes[(index + 1)...]
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ (48...57).contains($0) }) else { return false }
        return port.reduce(0) { $0 * 10 + Int($1 - 48) } <= 65535
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestID = BatchEnvelopeMiddleware.newRequestID()
        var headers: [String: String] = [:]
        for field in request.headers where headers[field.name.canonicalName] == nil {
            headers[field.name.canonicalName] = field.value
        }
        let authority = request.head.authority ?? headers["host"] ?? "127.0.0.1"
        // The links handed out (`url`, `odata.nextLink`, `Location`, `ocp-batch-file-url`) are built
        // on the Host the client named: one that is not a host name or address with an optional port
        // (quotes, spaces, slashes) would be copied into every link and header. RFC 9112: 400.
        // Two Host fields name two servers, and which one the links should use is anyone's guess:
        // RFC 9112 §3.2 answers such a request 400, as it does a malformed one. (The HTTP/1 codec
        // moves the first into `authority` and leaves any other among the fields read above.)
        let twoHosts = request.head.authority != nil && headers["host"] != nil
        let badHost = !BatchEnvelopeMiddleware.isAuthority(authority) || twoHosts
        let base = "\(scheme)://\(badHost ? "127.0.0.1" : authority)"
        context.requestID = requestID
        context.baseURL = base
        context.headers = headers
        context.query = QueryParameters(rawQuery: request.uri.query)
        let method = request.method.rawValue
        var response: Response
        do {
            if badHost {
                throw BookendError(.invalidRequest, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.",
                    details: [.init(key: "HeaderName", value: "Host")])
            }
            response = try await next(request, context)
        } catch {
            let failure: BookendError
            switch error {
            case let error as BookendError:
                failure = error
            case let error as HTTPError where error.status == .notFound:
                // Hummingbird's answer for a path no route matches, and for a method no route serves
                // at all (`PROPFIND`, `FOO`): that one is the verb's fault wherever it is sent, 405.
                failure = BatchRoutes.refusedMethods.contains(request.method)
                    ? APIErrors.resourceNotFound(request.uri.path) : APIErrors.unsupportedVerb(method)
            default:
                if let storage = BookendError.storage(error) {
                    // The machine's condition (a full disk, a read-only file system), said as such.
                    logger.warning("request not stored", metadata: ["request-id": "\(requestID)", "error": "\(error)"])
                    failure = storage
                } else {
                    logger.error("request failed unexpectedly", metadata: ["request-id": "\(requestID)", "error": "\(error)"])
                    failure = BookendError(.internalError, "InternalError", "The server encountered an internal error.")
                }
            }
            let level: Logger.Level = failure.kind == .internalError ? .error : .debug
            logger.log(level: level, "request failed", metadata: [
                "request-id": "\(requestID)", "method": "\(method)", "path": "\(request.uri.path)", "code": "\(failure.code)",
            ])
            // A HEAD answer has no body, so it names no content type either.
            let reply = request.method == .head ? Reply.empty(APIErrors.status(for: failure)) : Reply.error(failure, base: base, requestID: requestID)
            response = reply.response(method: request.method)
            // A request refused before its body was read (no valid signature, a body too large or
            // without a length) gets the connection closed after the answer, rather than its body read
            // and thrown away: a client that announces a terabyte and trickles it would hold the
            // connection, and the daemon would read all of it.
            if Self.closesConnection.contains(failure.code), request.method != .get, request.method != .head {
                response.headers[.connection] = "close"
            }
        }
        Reply.set("request-id", requestID, in: &response.headers)
        if let clientRequestID = headers["client-request-id"] { Reply.set("client-request-id", clientRequestID, in: &response.headers) }
        Reply.set("DataServiceVersion", "3.0", in: &response.headers)
        logger.debug("request", metadata: [
            "request-id": "\(requestID)", "method": "\(method)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
        ])
        return response
    }

    /// A random GUID in lowercase, as Batch's `request-id` reads: written from random bytes rather
    /// than through `uuidString` and `lowercased()`, two strings per request. Not `UUID()`: on Linux
    /// Foundation opens, reads and closes `/dev/urandom` for each one (three system calls and a
    /// descriptor per request, 5 % of a GET job's handling in the API section's profile);
    /// `SystemRandomNumberGenerator` is one `getrandom` call.
    static func newRequestID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (generator.next() as UInt64, generator.next() as UInt64)
        withUnsafeMutableBytes(of: &bytes) { raw in
            raw[6] = raw[6] & 0x0F | 0x40  // version 4: random
            raw[8] = raw[8] & 0x3F | 0x80  // the RFC 4122 variant
        }
        let digits: StaticString = "0123456789abcdef"
        return withUnsafeBytes(of: bytes) { raw in
            String(unsafeUninitializedCapacity: 36) { out in
                var at = 0
                for (index, byte) in raw.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 { out[at] = UInt8(ascii: "-"); at += 1 }
                    out[at] = digits.utf8Start[Int(byte >> 4)]
                    out[at + 1] = digits.utf8Start[Int(byte & 0xF)]
                    at += 2
                }
                return at
            }
        }
    }
}

/// Shared Key (§7) over the raw, still percent-encoded path and query, as the client signed them.
struct SharedKeyMiddleware: RouterMiddleware {
    typealias Context = BatchRequestContext
    let verifier: SharedKeyVerifier

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try verifier.verify(method: request.method.rawValue, rawPath: request.uri.path, query: context.query, headers: context.headers)
        return try await next(request, context)
    }
}

/// `api-version` is required and must be one Bookend speaks; `timeout`, when sent, must be positive.
struct APIVersionMiddleware: RouterMiddleware {
    typealias Context = BatchRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let query = context.query
        guard let version = query.first("api-version"), !version.isEmpty else {
            throw BookendError(.invalidRequest, "MissingRequiredQueryParameter", "A query parameter that's mandatory for this request is not specified.",
                details: [.init(key: "QueryParameterName", value: "api-version")])
        }
        guard APILimits.apiVersions.contains(version) else {
            throw BookendError(.invalidRequest, "UnsupportedRequestVersion", "The specified Request Version is not supported.",
                details: [.init(key: "QueryParameterName", value: "api-version"), .init(key: "QueryParameterValue", value: version)])
        }
        if let timeout = query.first("timeout"), Int(timeout).map({ $0 > 0 }) != true {
            // Accepted values are clamped to 30 s; the engine answers well within that.
            throw APIErrors.invalidQuery("timeout", timeout, "must be a positive number of seconds")
        }
        return try await next(request, context)
    }
}

/// Collects the body under the 1 MiB cap, insists that a signed body came with the Content-Length
/// the signature covers, refuses control characters in the path, and hands the controllers an `APIRequest`.
struct RequestBodyMiddleware: RouterMiddleware {
    typealias Context = BatchRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        var context = context
        let body = try await collectBody(&request, headers: context.headers)
        // Shared Key signs the Content-Length header, not the bytes: a body sent without one
        // (chunked) would be covered by no signature at all, so it is refused, as Batch does.
        if !body.isEmpty, context.headers["content-length"].flatMap(Int.init) != body.count {
            throw BookendError(.invalidRequest, "MissingContentLengthHeader",
                "The request body must be sent with a Content-Length header that the signature covers.")
        }
        // Every Batch body is JSON. One labelled as something else (`curl -d` sends
        // `application/x-www-form-urlencoded`) was not meant for this API as sent: 415, naming what is
        // accepted, rather than parsing it as JSON anyway. No Content-Type (or an empty one) is taken as JSON.
        if !body.isEmpty, let type = context.headers["content-type"], !type.trimmingCharacters(in: .whitespaces).isEmpty,
           !RequestBodyMiddleware.isJSON(type) {
            throw BookendError(.invalidRequest, "UnsupportedMediaType",
                "The request body's Content-Type \(type) is not supported: send application/json (optionally with odata=minimalmetadata).",
                details: [.init(key: "HeaderName", value: "Content-Type"), .init(key: "HeaderValue", value: type)])
        }
        // A write says how long its body is, even when it has none (`Content-Length: 0`, as the SDKs,
        // az and the bookend CLI send): §6.6, as Batch answers it.
        if ["POST", "PUT", "PATCH"].contains(request.method.rawValue), context.headers["content-length"] == nil {
            throw BookendError(.invalidRequest, "MissingContentLengthHeader",
                "A \(request.method.rawValue) request must carry a Content-Length header (0 when it has no body).")
        }
        let rawPath = request.uri.path
        let api = APIRequest(
            method: request.method.rawValue, rawPath: rawPath,
            segments: rawPath.split(separator: "/", omittingEmptySubsequences: true).map(String.init),
            query: context.query, headers: context.headers, body: body, baseURL: context.baseURL,
            requestID: context.requestID)
        try api.checkSegments()
        context.batchRequest = api
        return try await next(request, context)
    }

    /// `application/json`, with or without parameters (`; odata=minimalmetadata; charset=utf-8`).
    static func isJSON(_ contentType: String) -> Bool {
        let media = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return media.trimmingCharacters(in: .whitespaces).lowercased() == "application/json"
    }

    private func collectBody(_ request: inout Request, headers: [String: String]) async throws -> Data {
        func tooLarge() -> BookendError {
            BookendError(.invalidRequest, "RequestBodyTooLarge", "The request body is too large and exceeds the maximum permissible limit.",
                details: [.init(key: "MaxLimit", value: "\(APILimits.maxBodyBytes)")])
        }
        let length = headers["content-length"].flatMap(Int.init)
        if let length, length >= APILimits.maxBodyBytes { throw tooLarge() }
        // HTTP/1.1 has a body only with a Content-Length above zero or a Transfer-Encoding: without
        // either (nearly every GET), there is nothing to collect, and no need to wait on the stream.
        if length ?? 0 == 0, headers["transfer-encoding"] == nil { return Data() }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: APILimits.maxBodyBytes - 1)
        } catch {
            // With a Content-Length under the cap the body cannot have been too large: the stream
            // ended before the bytes it announced (the client closed its side).
            if length != nil { throw BookendError(.invalidRequest, "InvalidRequestBody", "The request body ended before its Content-Length.") }
            throw tooLarge()
        }
        return Data(buffer.readableBytesView)
    }
}
