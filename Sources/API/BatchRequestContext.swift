import Hummingbird
import Logging

/// Per-request context for the Batch API. The API does its own routing (it must see the raw,
/// still percent-encoded path for Shared Key), so this holds only Hummingbird's core storage.
public struct BatchRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Bodies are collected by `BatchResponder` with its own 1 MiB cap.
    public var maxUploadSize: Int { APILimits.maxBodyBytes }
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
