import Bookend
import Foundation
import Hummingbird
import Logging
import NIOCore

/// Per-request context for the Batch API: Hummingbird's core storage (route parameters among it) and
/// what the middleware learns about the request before a controller sees it.
public struct BatchRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `BatchEnvelopeMiddleware`: echoed as `request-id` and quoted in error messages.
    var requestID = ""
    /// `scheme://host[:port]` the client used, for URLs in bodies; set by `BatchEnvelopeMiddleware`.
    var baseURL = ""
    /// Header names lowercased, the first value of each; set by `BatchEnvelopeMiddleware`.
    var headers: [String: String] = [:]
    /// The query's pairs, decoded; parsed once by `BatchEnvelopeMiddleware` for Shared Key,
    /// `api-version` and the controllers.
    var query = QueryParameters(rawQuery: nil)
    /// The request as the controllers see it, assembled by `RequestBodyMiddleware` once Shared Key,
    /// `api-version` and the body cap have passed.
    var batchRequest: APIRequest?
    /// The peer, for the one rule that depends on it: `/metrics` without the key on loopback.
    public var remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Bodies are collected by `RequestBodyMiddleware` with its own 1 MiB cap.
    public var maxUploadSize: Int { APILimits.maxBodyBytes }

    /// The assembled request; every Batch route runs behind `RequestBodyMiddleware`, which sets it.
    func request() throws -> APIRequest {
        guard let batchRequest else {
            throw BookendError(.internalError, "InternalError", "A route ran without its request middleware")
        }
        return batchRequest
    }

    /// A route parameter (`:poolID`), percent-decoded: routing matched the raw segment, so `a%2Fb`
    /// is one id and decodes to `a/b` only now.
    func id(_ name: String) throws -> String {
        guard let raw = parameters.get(name) else {
            throw BookendError(.internalError, "InternalError", "The route has no parameter \(name)")
        }
        return PercentDecoding.decode(raw) ?? raw
    }

    /// The segments a `**` route caught, each percent-decoded, joined with `/` (empty segments, as
    /// in `a//b`, are dropped as everywhere else in the path).
    func filePath() -> String {
        parameters.getCatchAll().map { PercentDecoding.decode($0) ?? String($0) }.joined(separator: "/")
    }
}

enum APILimits {
    /// Requests with a body of this size or larger are refused with 413 `RequestBodyTooLarge`.
    static let maxBodyBytes = 1 << 20
    static let defaultMaxResults = 1000
    /// Accepted `api-version` values (behaviour is identical across them).
    static let apiVersions: Set<String> = [
        "2023-05-01.17.0", "2023-11-01.18.0", "2024-02-01.19.0", "2024-07-01.20.0", "2025-06-01",
    ]
}
