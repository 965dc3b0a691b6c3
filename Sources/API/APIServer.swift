import Bookend
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
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
        public init(
            host: String = "127.0.0.1", port: Int = 8080, accountName: String = "bookend", key: Data, tls: TLSIdentity? = nil,
            idleTimeout: Duration = .seconds(75)
        ) {
            self.host = host
            self.port = port
            self.accountName = accountName
            self.key = key
            self.tls = tls
            self.idleTimeout = idleTimeout
        }
    }

    /// Builds the HTTP server. It serves until its task is cancelled or a graceful shutdown is triggered.
    public static func makeService(
        engine: Engine, configuration: Configuration, logger: Logger,
        onRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> any Service {
        let responder = BatchResponder(
            engine: engine, accountName: configuration.accountName, key: configuration.key, logger: logger,
            scheme: configuration.tls == nil ? "http" : "https")
        // TLS wraps every accepted connection before HTTP parsing: bytes that are not a TLS
        // handshake end the connection and never reach the router.
        let http1 = HTTP1Channel.Configuration(idleTimeout: TimeAmount(configuration.idleTimeout))
        let server = configuration.tls?.server(http1) ?? .http1(configuration: http1)
        return Application(
            responder: responder,
            server: server,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "Bookend"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }
}
