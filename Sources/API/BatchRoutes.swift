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

    /// A top-level resource (`/jobs`, `/pools`): `GET` lists the collection and `POST` adds to it; the
    /// entity `{collection}/:{id}` answers `entity`'s methods, and `POST {collection}/:{id}/{action}`
    /// each of `actions`.
    func resource(_ collection: String, id: String, list: @escaping @Sendable (APIRequest) async throws -> Reply,
                  add: @escaping @Sendable (APIRequest) async throws -> Reply,
                  entity: [(HTTPRequest.Method, @Sendable (APIRequest, String) async throws -> Reply)],
                  actions: [(action: String, handler: @Sendable (APIRequest, String) async throws -> Reply)]) {
        let taking = BatchRoutes.taking(id)
        on(RouterPath(collection), [(.get, { request, _ in try await list(request) }), (.post, { request, _ in try await add(request) })])
        on(RouterPath("\(collection)/:\(id)"), entity.map { ($0.0, taking($0.1)) })
        self.actions(of: "\(collection)/:\(id)", actions.map { ($0.action, taking($0.handler)) })
    }

    /// The `POST {entity}/{action}` routes of one entity (`/jobs/:jobID/terminate`, `…/disable`).
    func actions(of entity: String, _ handlers: [(action: String, handler: Handler)]) {
        for (action, handler) in handlers {
            on(RouterPath("\(entity)/\(action)"), [(.post, handler)])
        }
    }

    /// Handlers of routes under one id (`/jobs/:jobID…`) take that id, percent-decoded, as an argument:
    /// `let job = BatchRoutes.taking("jobID")`, then `job(terminate)`.
    static func taking(_ name: String) -> (@escaping @Sendable (APIRequest, String) async throws -> Reply) -> Handler {
        { handler in { request, context in try await handler(request, try context.id(name)) } }
    }

    /// The same for routes under two ids (`/jobs/:jobID/tasks/:taskID…`).
    static func taking(_ first: String, _ second: String)
        -> (@escaping @Sendable (APIRequest, String, String) async throws -> Reply) -> Handler {
        { handler in { request, context in try await handler(request, try context.id(first), try context.id(second)) } }
    }

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
