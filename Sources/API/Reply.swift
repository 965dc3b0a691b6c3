import Bookend
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// What a controller answers; it becomes a Hummingbird `Response` here, and `BatchEnvelopeMiddleware`
/// adds the headers every answer carries.
struct Reply: Sendable {
    var status: Int
    var headers: [(String, String)] = []
    var body: Data = Data()
    var contentType: String?
    /// A file body streamed from an open descriptor instead of `body`.
    var file: FileBody?

    static func empty(_ status: Int, headers: [(String, String)] = []) -> Reply {
        Reply(status: status, headers: headers)
    }

    static func json(_ object: [String: JSONValue], status: Int = 200, headers: [(String, String)] = []) -> Reply {
        Reply(status: status, headers: headers, body: Wire.encode(.object(object)), contentType: Wire.jsonContentType)
    }

    /// A wire model as the body; `select` keeps only those top-level properties (and `odata.metadata`).
    static func json<T: Encodable>(model: T, select: Set<String>? = nil, status: Int = 200, headers: [(String, String)] = []) throws -> Reply {
        let bytes = try JSONBytesEncoder.encode(model, select: select.map { $0.union(["odata.metadata"]) })
        return Reply(status: status, headers: headers, body: Data(bytes), contentType: Wire.jsonContentType)
    }

    /// `/health`: the daemon is up and answering.
    static let health = Reply(status: 200, body: Data("ok".utf8), contentType: "text/plain; charset=utf-8")

    /// The Batch error body (§6.5) with the status its code implies.
    static func error(_ error: BookendError, base: String, requestID: String) -> Reply {
        Reply(status: APIErrors.status(for: error), body: APIErrors.body(error, base: base, requestID: requestID), contentType: Wire.jsonContentType)
    }

    /// Sets a header by its text name; names we use are all valid tokens, and one that were not is skipped.
    static func set(_ name: String, _ value: String, in fields: inout HTTPFields) {
        if let fieldName = HTTPField.Name(name) { fields[fieldName] = value }
    }

    /// HEAD and 304 answers carry the headers only.
    func response(method: HTTPRequest.Method) -> Response {
        var fields = HTTPFields()
        if let contentType { Reply.set("Content-Type", contentType, in: &fields) }
        for (name, value) in headers { Reply.set(name, value, in: &fields) }
        if method == .head || status == 304 {
            if fields[.contentLength] == nil { fields[.contentLength] = "0" }
            return Response(status: .init(code: status), headers: fields, body: .init())
        }
        if let file {
            fields[.contentLength] = String(file.length)
            return Response(status: .init(code: status), headers: fields, body: Reply.stream(file))
        }
        fields[.contentLength] = String(body.count)
        var buffer = ByteBuffer()
        buffer.writeBytes(body)
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: buffer))
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

extension Reply: ResponseGenerator {
    func response(from request: Request, context: some RequestContext) throws -> Response {
        response(method: request.method)
    }
}

/// `length` bytes of an open file from `offset`, written to the client in chunks so memory stays
/// flat whatever the file's size. The length is fixed when the file is opened: a file that grows
/// meanwhile does not make the body exceed its Content-Length.
struct FileBody: Sendable {
    let descriptor: Bookend.FileDescriptor
    let offset: Int64
    let length: Int64
}
