import Bookend
import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Observability

/// Counts every request by method, matched route and status, and times it by method and route.
/// Outermost, so the status is the one the client got (after the envelope turned errors into
/// answers). The route is the router's pattern (`/jobs/{jobID}/tasks`), never the raw path, so ids do
/// not become labels; a path no route matches counts as `unmatched`.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let factory: any MetricsFactory

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context, status: Int(response.status.code), since: started)
            return response
        } catch {
            record(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500, since: started)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, status: Int, since started: ContinuousClock.Instant) {
        // A router without a route for the path names it "NotFound" on some paths through Hummingbird:
        // anything that is not a route's pattern is `unmatched`, on every listener alike.
        let route = context.endpointPath.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "unmatched"
        let method = request.method.rawValue
        Counter(label: "bookend_http_requests_total", dimensions: [("method", method), ("route", route), ("status", "\(status)")],
            factory: factory).increment()
        let (seconds, attoseconds) = (ContinuousClock.now - started).components
        Timer(label: "bookend_http_request_duration_seconds", dimensions: [("method", method), ("route", route)], factory: factory)
            .recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// `GET /metrics` without the account key, for clients on loopback only: a Prometheus server on the
/// same machine cannot sign Shared Key requests. Runs before `SharedKeyMiddleware`; any other
/// client falls through to it, and to the signed `/metrics` route behind it.
struct LoopbackMetricsMiddleware: RouterMiddleware {
    typealias Context = BatchRequestContext
    let engine: Engine
    let metrics: BookendMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get || request.method == .head, request.uri.path.lowercased() == "/metrics",
            context.remoteAddress.map(MetricsEndpoint.isLoopback) == true
        else { return try await next(request, context) }
        return try await MetricsEndpoint.reply(engine: engine, metrics: metrics).response(method: request.method)
    }
}

enum MetricsEndpoint {
    /// The exposition, read on the engine's reader threads (it runs a few SQL counts).
    static func reply(engine: Engine, metrics: BookendMetrics) async throws -> Reply {
        let text = try await engine.lookup { engine in try metrics.exposition(engine: engine) }
        return Reply(status: 200, body: Data(text.utf8), contentType: BookendMetrics.contentType)
    }

    static func isLoopback(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4(let v4):
            // 127.0.0.0/8, in network byte order.
            return UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24 == 127
        case .v6:
            guard let ip = address.ipAddress else { return false }
            return ip == "::1" || ip.hasPrefix("::ffff:127.")
        case .unixDomainSocket:
            return false
        }
    }
}

extension APIServer {
    /// The listener of `--metrics-listen`: only `/metrics` and `/health`, without the account key (it
    /// reveals counts and pool ids, never commands, files or the key). Plain HTTP: put it on an
    /// address only the monitoring network reaches.
    public static func buildMetricsApplication(
        engine: Engine, metrics: BookendMetrics, host: String, port: Int, maxConnections: Int = 16, logger: Logger,
        onRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: HTTPMetricsMiddleware(factory: metrics.factory))
        router.get("/metrics") { _, _ in try await MetricsEndpoint.reply(engine: engine, metrics: metrics) }
        router.get("/health") { _, _ in Reply.health }
        let connections = ConnectionRegistry()
        let idle = TimeAmount.seconds(75)
        return Application(
            router: router,
            server: .http1(configuration: .init(
                additionalChannelHandlers: [ConnectionGuard(registry: connections, stallTimeout: idle)], idleTimeout: idle)),
            configuration: ApplicationConfiguration(
                address: .hostname(host, port: port), serverName: "Bookend",
                availableConnectionsDelegate: CappedConnections(maximum: maxConnections, listener: "metrics", registry: connections, logger: logger)),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
