import Bookend
import Foundation
import HummingbirdCore
import Logging

/// How many connections the daemon's listeners hold open at once, so that no client (or crowd of
/// clients) can take the descriptors the engine needs for its database, its tasks' pipes and exit
/// files. Without a cap, idle connections filled the descriptor table and the engine, failing to
/// open what it needed at the wrong moment, could end the process.
public enum ConnectionCap {
    /// The default for a process whose soft descriptor limit is `limit`: half of what is left for
    /// connections (`Descriptors.forConnections`), because a connection may hold a second descriptor
    /// (a file it downloads), and never fewer than 8.
    public static func defaultTotal(descriptorLimit limit: Int = Descriptors.limit()) -> Int {
        max(8, Descriptors.forConnections(of: limit) / 2)
    }

    /// The most connections `limit` descriptors allow: `defaultTotal`'s reasoning without its floor.
    public static func largestTotal(descriptorLimit limit: Int = Descriptors.limit()) -> Int {
        Descriptors.forConnections(of: limit) / 2
    }

    /// `total` split between the API's listener and the metrics one (when there is one): the metrics
    /// listener serves scrapers, a handful of connections at most.
    public static func split(total: Int, metrics: Bool) -> (api: Int, metrics: Int) {
        guard metrics else { return (total, 0) }
        let forMetrics = max(1, min(16, total / 4))
        return (max(1, total - forMetrics), forMetrics)
    }
}

/// The listener-side cap: once `maximum` connections are open the listener stops accepting (new
/// clients wait in the kernel's backlog) until one closes. Logged once each time the cap is reached.
struct CappedConnections: AvailableConnectionsDelegate {
    let maximum: Int
    let listener: String
    let logger: Logger
    private var open = 0

    init(maximum: Int, listener: String, logger: Logger) {
        self.maximum = max(1, maximum)
        self.listener = listener
        self.logger = logger
    }

    mutating func connectionOpened() {
        open += 1
        if open == maximum {
            logger.warning(
                "\(open) connections open on the \(listener) listener, the most it holds (--max-connections); new clients wait until one closes",
                metadata: ["connections": "\(open)"])
        }
    }

    mutating func connectionClosed() { open -= 1 }

    func isAcceptingNewConnections() -> Bool { open < maximum }
}
