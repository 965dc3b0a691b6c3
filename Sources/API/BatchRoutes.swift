import Bookend
import Foundation
import HTTPTypes
import Hummingbird

/// Adds the Batch routes of one resource to the router. Paths are Hummingbird router paths
/// (`:name` captures one raw segment, `**` the rest); the router is case-insensitive, as Azure is.
struct BatchRoutes {
    typealias Handler = @Sendable (_ request: APIRequest, _ context: BatchRequestContext) async throws -> Reply

    let router: Router<BatchRequestContext>

    /// Methods answered with 405 `UnsupportedHttpVerb` on a path that exists but does not serve them,
    /// as Batch does; Hummingbird alone would answer 404 `ResourceNotFound` for them. (`MERGE` is
    /// the OData update verb older clients send.)
    static let refusedMethods: [HTTPRequest.Method] =
        [.get, .head, .post, .put, .patch, .delete, .options, .trace] + ["MERGE"].compactMap { HTTPRequest.Method($0) }

    func on(_ path: RouterPath, _ handlers: [(HTTPRequest.Method, Handler)]) {
        for (method, handler) in handlers {
            router.on(path, method: method) { _, context -> Reply in
                try await handler(try context.request(), context)
            }
        }
        let served = Set(handlers.map(\.0))
        for method in BatchRoutes.refusedMethods where !served.contains(method) {
            router.on(path, method: method) { request, _ -> Reply in
                throw APIErrors.unsupportedVerb(request.method.rawValue)
            }
        }
    }
}
