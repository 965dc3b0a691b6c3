import Bookend
import Dashboard
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Observability
import ServiceLifecycle

/// The Batch data-plane API over an `Engine`, as a service to run in a `ServiceGroup` (or alone).
public enum APIServer {
    public struct Configuration: Sendable {
        public var host: String
        /// 0 picks a free port; `onRunning` receives the bound one.
        public var port: Int
        public var accountName: String
        /// The account key bytes (the base64 text clients are given, decoded).
        public var key: Data
        /// With an identity the server speaks only HTTPS; without one, plain HTTP.
        public var tls: TLSIdentity?
        /// A connection that sends no complete request head or body part for this long is closed
        /// (a response being written is never cut): without it anyone who can reach the port could
        /// hold a descriptor per half-sent request for ever and starve the daemon of them.
        public var idleTimeout: Duration
        /// With a registry, `GET /metrics` is served (without the key to loopback clients, with Shared
        /// Key to others) and every request is counted and timed into it.
        public var metrics: BookendMetrics?
        /// The most connections the listener holds open at once (see `ConnectionCap`); nil: the
        /// default for this process's descriptor limit.
        public var maxConnections: Int?
        public init(
            host: String = "127.0.0.1", port: Int = 8080, accountName: String = "bookend", key: Data, tls: TLSIdentity? = nil,
            idleTimeout: Duration = .seconds(75), metrics: BookendMetrics? = nil, maxConnections: Int? = nil
        ) {
            self.metrics = metrics
            self.maxConnections = maxConnections
            self.host = host
            self.port = port
            self.accountName = accountName
            self.key = key
            self.tls = tls
            self.idleTimeout = idleTimeout
        }
    }

    /// The Batch API's router: the middleware every route runs behind, `/health`, and each
    /// resource's routes. What `buildApplication` serves; tests may drive it without a socket.
    public static func buildRouter(engine: Engine, configuration: Configuration, logger: Logger) -> Router<BatchRequestContext> {
        let router = Router(context: BatchRequestContext.self, options: .caseInsensitive)
        if let metrics = configuration.metrics { router.add(middleware: HTTPMetricsMiddleware(factory: metrics.factory)) }
        router.add(middleware: BatchEnvelopeMiddleware(logger: logger, scheme: configuration.tls == nil ? "http" : "https"))
        // Added before the middleware below, so the only unauthenticated route skips it.
        router.get("/health") { _, _ in Reply.health }
        router.head("/health") { _, _ in Reply.health }
        // The dashboard has its own sign-in and sessions, so its routes go before Shared Key.
        addDashboard(to: router, engine: engine, configuration: configuration, logger: logger)
        if let metrics = configuration.metrics { router.add(middleware: LoopbackMetricsMiddleware(engine: engine, metrics: metrics)) }
        router.add(middleware: SharedKeyMiddleware(verifier: SharedKeyVerifier(accountName: configuration.accountName, keyBytes: configuration.key)))
        router.add(middleware: APIVersionMiddleware())
        router.add(middleware: RequestBodyMiddleware())
        let routes = BatchRoutes(router: router)
        PoolController(engine: engine).addRoutes(to: routes)
        NodeController(engine: engine).addRoutes(to: routes)
        JobController(engine: engine).addRoutes(to: routes)
        TaskController(engine: engine).addRoutes(to: routes)
        FileController(engine: engine).addRoutes(to: routes)
        if let metrics = configuration.metrics {
            router.get("/metrics") { _, _ in try await MetricsEndpoint.reply(engine: engine, metrics: metrics) }
        }
        return router
    }

    /// Mounts the web dashboard under `/ui` on the API's port (and TLS), signed in with the same account.
    static func addDashboard(to router: Router<BatchRequestContext>, engine: Engine, configuration: Configuration, logger: Logger) {
        do {
            let dashboard = try Dashboard(
                engine: engine,
                configuration: .init(credentials: .init(accountName: configuration.accountName, key: configuration.key), secure: configuration.tls != nil),
                logger: logger)
            dashboard.addRoutes(to: router)
        } catch {
            // The templates are constants checked by the tests; the API serves on without the dashboard.
            logger.error("the dashboard's templates do not parse; /ui is not served", metadata: ["error": "\(error)"])
        }
    }

    /// The HTTP server over `buildRouter`. It serves until its task is cancelled or a graceful
    /// shutdown is triggered.
    public static func buildApplication(
        engine: Engine, configuration: Configuration, logger: Logger,
        onRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> Application<RouterResponder<BatchRequestContext>> {
        // TLS wraps every accepted connection before HTTP parsing: bytes that are not a TLS
        // handshake end the connection and never reach the router.
        let connections = ConnectionRegistry()
        let idle = TimeAmount(configuration.idleTimeout)
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionGuard(registry: connections, stallTimeout: idle)], idleTimeout: idle)
        let server = configuration.tls?.server(http1) ?? .http1(configuration: http1)
        return Application(
            router: buildRouter(engine: engine, configuration: configuration, logger: logger),
            server: server,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port), serverName: "Bookend",
                availableConnectionsDelegate: CappedConnections(
                    maximum: configuration.maxConnections ?? ConnectionCap.defaultTotal(),
                    listener: "API", registry: connections, logger: logger)),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }

    /// `buildApplication` as a `Service`, the name `bookend serve` and the tests have always used.
    public static func makeService(
        engine: Engine, configuration: Configuration, logger: Logger,
        onRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> any Service {
        buildApplication(engine: engine, configuration: configuration, logger: logger, onRunning: onRunning)
    }
}
