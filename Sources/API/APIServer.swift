import Bookend
import Foundation
import Hummingbird
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
        public init(host: String = "127.0.0.1", port: Int = 8080, accountName: String = "bookend", key: Data) {
            self.host = host
            self.port = port
            self.accountName = accountName
            self.key = key
        }
    }

    /// Builds the HTTP server. It serves until its task is cancelled or a graceful shutdown is triggered.
    public static func makeService(
        engine: Engine, configuration: Configuration, logger: Logger,
        onRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) -> any Service {
        let responder = BatchResponder(engine: engine, accountName: configuration.accountName, key: configuration.key, logger: logger)
        return Application(
            responder: responder,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "Bookend"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }
}
