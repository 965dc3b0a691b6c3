import Bookend
import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

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

/// The listener-side cap: once `maximum` connections are open the listener accepts no more until one
/// closes, and to make room it closes the connection that has waited longest for its next request
/// (never one in the middle of a request): one out for each one in. Why evict: without it, anyone
/// could hold every slot for ever with keep-alive connections that send `GET /health` now and then,
/// each request restarting the idle timeout; legitimate clients then waited in the backlog for good.
/// Logged when the cap is reached, at most once a minute.
struct CappedConnections: AvailableConnectionsDelegate {
    let maximum: Int
    let listener: String
    let logger: Logger
    let registry: ConnectionRegistry
    private var open = 0

    init(maximum: Int, listener: String, registry: ConnectionRegistry, logger: Logger) {
        self.maximum = max(1, maximum)
        self.listener = listener
        self.registry = registry
        self.logger = logger
    }

    private var lastWarning: NIODeadline?

    mutating func connectionOpened() {
        open += 1
        // At most once a minute: at the cap every new client makes room and reaches it again.
        guard open == maximum, lastWarning.map({ NIODeadline.now() - $0 >= .minutes(1) }) ?? true else { return }
        lastWarning = .now()
        logger.warning(
            "\(open) connections open on the \(listener) listener, the most it holds (--max-connections); for each new client the idlest is closed (said at most once a minute)",
            metadata: ["connections": "\(open)"])
    }

    mutating func connectionClosed() { open -= 1 }

    func isAcceptingNewConnections() -> Bool {
        if open < maximum { return true }
        // Asked when the listener wants to accept: make room by closing the idlest connection (its
        // close calls `connectionClosed`, and the listener accepts again).
        registry.closeIdlest()
        return false
    }
}

/// The open connections of one listener and what each is doing, so the cap can close the idlest.
final class ConnectionRegistry: Sendable {
    private struct Member {
        let channel: any Channel
        /// Requests read whose response has not been written to its end.
        var inFlight = 0
        var lastActive = NIODeadline.now()
        /// When the request whose body is still being read began (its head arrived), if one is.
        var uploadingSince: NIODeadline?
    }

    private let members = Mutex<[ObjectIdentifier: Member]>([:])

    func opened(_ channel: any Channel) {
        members.withLock { $0[ObjectIdentifier(channel)] = Member(channel: channel) }
    }

    func closed(_ channel: any Channel) {
        _ = members.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func requestStarted(_ channel: any Channel) {
        members.withLock { members in
            members[ObjectIdentifier(channel)]?.inFlight += 1
            members[ObjectIdentifier(channel)]?.lastActive = .now()
            members[ObjectIdentifier(channel)]?.uploadingSince = .now()
        }
    }

    func requestRead(_ channel: any Channel) {
        members.withLock { $0[ObjectIdentifier(channel)]?.uploadingSince = nil }
    }

    func responseEnded(_ channel: any Channel) {
        members.withLock { members in
            guard var member = members[ObjectIdentifier(channel)] else { return }
            member.inFlight = max(0, member.inFlight - 1)
            member.lastActive = .now()
            members[ObjectIdentifier(channel)] = member
        }
    }

    /// Closes the connection without a request in flight that has been idle longest or, when every
    /// connection has one, the one still sending the oldest request (a body trickled a byte at a
    /// time held its slot as long as the sender liked). Answers whether there was one. (No minimum
    /// idle time: a client sending a request every half second would otherwise never qualify.)
    @discardableResult
    func closeIdlest() -> Bool {
        let victim = members.withLock { members -> (any Channel)? in
            let idle = members.filter { $0.value.inFlight == 0 }.min { $0.value.lastActive < $1.value.lastActive }
            let uploading = members.compactMap { entry in entry.value.uploadingSince.map { (entry.key, $0) } }.min { $0.1 < $1.1 }
            guard let key = idle?.key ?? uploading?.0, let member = members[key] else { return nil }
            members[key] = nil
            return member.channel
        }
        victim?.close(promise: nil)
        return victim != nil
    }
}

/// One per connection, after the HTTP codec: tells the registry when a request starts, when it has
/// been read and when its response ends; closes a connection whose request (head and body) is not
/// read in full within `stallTimeout` of its head (each byte restarted the idle timeout, so a body
/// trickled one byte every minute held the connection for as long as the sender liked), and one whose
/// responses have not drained for `stallTimeout` (a client that pipelines requests and never reads
/// held its connection for ever: the idle timeout only counts while nothing is written).
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let registry: ConnectionRegistry
    private let stallTimeout: TimeAmount
    private var stall: Scheduled<Void>?
    private var upload: Scheduled<Void>?

    init(registry: ConnectionRegistry, stallTimeout: TimeAmount) {
        self.registry = registry
        self.stallTimeout = stallTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        registry.opened(context.channel)
    }

    private func cancelTimers() {
        stall?.cancel()
        stall = nil
        upload?.cancel()
        upload = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        registry.closed(context.channel)
        cancelTimers()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        registry.closed(context.channel)
        cancelTimers()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            registry.requestStarted(context.channel)
            let channel = context.channel
            upload?.cancel()
            upload = context.eventLoop.scheduleTask(in: stallTimeout) { channel.close(promise: nil) }
        case .body:
            break
        case .end:
            registry.requestRead(context.channel)
            upload?.cancel()
            upload = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { registry.responseEnded(context.channel) }
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stall?.cancel()
            stall = nil
        } else if stall == nil {
            let channel = context.channel
            stall = context.eventLoop.scheduleTask(in: stallTimeout) {
                if !channel.isWritable { channel.close(promise: nil) }
            }
        }
        context.fireChannelWritabilityChanged()
    }
}
