import Foundation
import ServiceLifecycle

/// The systemd notify protocol (sd_notify(3)) without libsystemd: one datagram of `KEY=VALUE` lines
/// to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
/// Without the variable (not started by systemd with `Type=notify`) every call does nothing.
struct SystemdNotifier: Sendable {
    let socketName: String?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketName = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Sends `state` (e.g. `READY=1`); false when there is no socket or sending failed. A failure is
    /// never fatal: systemd then times the start out, which says more than a daemon that refused to run.
    @discardableResult
    func notify(_ state: String) -> Bool {
        guard let socketName else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketName.utf8)
        // `@name` is an abstract socket: its address starts with a NUL byte and is not NUL-terminated.
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity, let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.enumerated() { buffer[index] = byte }
        }
        let length = socklen_t(pathOffset + path.count + (abstract ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddr in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sockaddr, length) }
            }
        }
        return sent == message.count
    }
}

/// Tells systemd `STOPPING=1` as soon as a graceful shutdown begins. Listed last in the service
/// group, so it is the first service the group asks to stop: the message goes out before the HTTP
/// server and the engine start winding down, not after.
struct StoppingNotification: Service {
    let notifier: SystemdNotifier

    func run() async throws {
        // Returns on graceful shutdown or cancellation; either way the daemon is stopping.
        try? await gracefulShutdown()
        notifier.notify("STOPPING=1")
    }
}
