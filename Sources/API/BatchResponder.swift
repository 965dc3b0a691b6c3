import Bookend
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The Batch API's single responder: request id, `/health`, Shared Key, `api-version`, the body cap,
/// routing, and turning every failure into a Batch error body.
public struct BatchResponder: HTTPResponder {
    public typealias Context = BatchRequestContext

    let router: BatchRouter
    let verifier: SharedKeyVerifier
    let logger: Logger
    /// `https` behind TLS: the links we hand out (`odata.nextLink`, `url`, `DataServiceId`) are
    /// followed by clients, and an `http` link to the TLS port would fail (or leak the request).
    let scheme: String

    init(engine: Engine, accountName: String, key: Data, logger: Logger, scheme: String = "http") {
        router = BatchRouter(engine: engine)
        verifier = SharedKeyVerifier(accountName: accountName, keyBytes: key)
        self.logger = logger
        self.scheme = scheme
    }

    public func respond(to request: Request, context: BatchRequestContext) async throws -> Response {
        var request = request
        let requestID = UUID().uuidString.lowercased()
        let rawPath = request.uri.path
        let rawQuery = request.uri.query
        var headers: [String: String] = [:]
        for field in request.headers where headers[field.name.canonicalName] == nil {
            headers[field.name.canonicalName] = field.value
        }
        let host = request.head.authority ?? headers["host"] ?? "127.0.0.1"
        let base = "\(scheme)://\(host)"
        let method = request.method.rawValue
        var reply: Reply
        if rawPath == "/health", method == "GET" || method == "HEAD" {
            reply = Reply(status: 200, body: Data("ok".utf8), contentType: "text/plain; charset=utf-8")
        } else {
            do {
                try verifier.verify(method: method, rawPath: rawPath, rawQuery: rawQuery, headers: headers)
                let query = QueryParameters(rawQuery: rawQuery)
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
                let body = try await collectBody(&request, headers: headers)
                // Shared Key signs the Content-Length header, not the bytes: a body sent without one
                // (chunked) would be covered by no signature at all, so it is refused, as Batch does.
                if !body.isEmpty, headers["content-length"].flatMap(Int.init) != body.count {
                    throw BookendError(.invalidRequest, "MissingContentLengthHeader",
                        "The request body must be sent with a Content-Length header that the signature covers.")
                }
                let api = APIRequest(
                    method: method, rawPath: rawPath,
                    segments: rawPath.split(separator: "/", omittingEmptySubsequences: true).map(String.init),
                    query: query, headers: headers, body: body, baseURL: base, requestID: requestID)
                reply = try await router.route(api)
            } catch let error as BookendError {
                reply = errorReply(error, base: base, requestID: requestID, method: method)
                let level: Logger.Level = error.kind == .internalError ? .error : .debug
                logger.log(level: level, "request failed", metadata: [
                    "request-id": "\(requestID)", "method": "\(method)", "path": "\(rawPath)", "code": "\(error.code)",
                ])
            } catch {
                logger.error("request failed unexpectedly", metadata: ["request-id": "\(requestID)", "error": "\(error)"])
                reply = errorReply(BookendError(.internalError, "InternalError", "The server encountered an internal error."),
                    base: base, requestID: requestID, method: method)
            }
        }
        logger.debug("request", metadata: [
            "request-id": "\(requestID)", "method": "\(method)", "path": "\(rawPath)", "status": "\(reply.status)",
        ])
        return response(reply, requestID: requestID, headers: headers, method: method)
    }

    private func collectBody(_ request: inout Request, headers: [String: String]) async throws -> Data {
        let tooLarge = BookendError(.invalidRequest, "RequestBodyTooLarge", "The request body is too large and exceeds the maximum permissible limit.",
            details: [.init(key: "MaxLimit", value: "\(APILimits.maxBodyBytes)")])
        if let length = headers["content-length"].flatMap(Int.init), length >= APILimits.maxBodyBytes { throw tooLarge }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: APILimits.maxBodyBytes - 1)
        } catch {
            throw tooLarge
        }
        return Data(buffer.readableBytesView)
    }

    private func errorReply(_ error: BookendError, base: String, requestID: String, method: String) -> Reply {
        let status = APIErrors.status(for: error)
        if method == "HEAD" { return Reply(status: status) }
        return Reply(status: status, body: APIErrors.body(error, base: base, requestID: requestID), contentType: Wire.jsonContentType)
    }

    private func response(_ reply: Reply, requestID: String, headers requestHeaders: [String: String], method: String) -> Response {
        var fields = HTTPFields()
        func set(_ name: String, _ value: String) {
            if let fieldName = HTTPField.Name(name) { fields[fieldName] = value }
        }
        set("request-id", requestID)
        if let clientRequestID = requestHeaders["client-request-id"] { set("client-request-id", clientRequestID) }
        set("DataServiceVersion", "3.0")
        if let type = reply.contentType { set("Content-Type", type) }
        for (name, value) in reply.headers { set(name, value) }
        if method == "HEAD" || reply.status == 304 {
            if fields[.contentLength] == nil { fields[.contentLength] = "0" }
            return Response(status: .init(code: reply.status), headers: fields, body: .init())
        }
        if let file = reply.file {
            fields[.contentLength] = String(file.length)
            return Response(status: .init(code: reply.status), headers: fields, body: BatchResponder.stream(file))
        }
        fields[.contentLength] = String(reply.body.count)
        var buffer = ByteBuffer()
        buffer.writeBytes(reply.body)
        return Response(status: .init(code: reply.status), headers: fields, body: .init(byteBuffer: buffer))
    }

    /// Chunk size of streamed file bodies: what one response holds in memory at a time.
    static let fileChunkBytes = 256 * 1024

    /// Reads the file in chunks as the client takes them (the writer waits for the connection), with
    /// `pread` on the descriptor the engine opened, so nothing is resolved again.
    static func stream(_ file: FileBody) -> ResponseBody {
        ResponseBody(contentLength: Int(file.length)) { writer in
            var offset = file.offset
            let end = file.offset + file.length
            while offset < end {
                let chunk = try FileAccess.readChunk(file.descriptor, at: offset, upTo: Int(min(Int64(fileChunkBytes), end - offset)))
                // Truncated since it was opened: the promised length cannot be sent, so the
                // connection is cut rather than padded with bytes the file does not hold.
                guard !chunk.isEmpty else {
                    throw BookendError(.internalError, "InternalError", "The file shrank while it was being sent")
                }
                try await writer.write(ByteBuffer(bytes: chunk))
                offset += Int64(chunk.count)
            }
            try await writer.finish(nil)
        }
    }
}
