import API
import ArgumentParser
import Bookend
import Foundation
import Logging
import Observability
import ServiceLifecycle
import UnixSignals

/// `bookend serve`: the Azure Batch data-plane REST API with Shared Key auth, over a data directory.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the Azure Batch REST API (Shared Key auth) for the data directory.")

    @OptionGroup var data: DataDirectoryOptions

    @OptionGroup var setup: DaemonSetupOptions

    @Option(help: "Address and port to listen on (port 0 picks a free one).")
    var listen = "127.0.0.1:8080"

    @Option(help: "The Batch account name clients sign with.")
    var account = "bookend"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain (leaf first): serve HTTPS instead of HTTP. Needs --tls-key.")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert (unencrypted; keep it mode 0600).")
    var tlsKey: String?

    @Flag(name: .customLong("insecure-http"), help: "Allow plain HTTP on a non-loopback --listen address (requests and bodies travel unencrypted).")
    var insecureHTTP = false

    @Option(name: .customLong("metrics-listen"), help: "Also serve GET /metrics (Prometheus text, no account key) on this HOST:PORT. Default: off (loopback clients of --listen get /metrics without the key anyway).")
    var metricsListen: String?

    @Option(name: .customLong("log-format"), help: "text (default) or json (one JSON object per line on stderr).")
    var logFormat: LogFormat = .text

    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Option(name: .customLong("slurm-partition"), help: "The Slurm partition of new allocations when a pool names none (pool metadata bookend.slurm.partition). Default: the cluster's default partition.")
    var slurmPartition: String?

    @Option(name: .customLong("slurm-account"), help: "sbatch --account for Slurm allocations.")
    var slurmAccount: String?

    @Option(name: .customLong("slurm-qos"), help: "sbatch --qos for Slurm allocations.")
    var slurmQOS: String?

    @Option(name: .customLong("slurm-node-root"), help: "Where Slurm nodes' folders live: a file system the daemon's machine and the Slurm nodes share. Default: the node folders' directory (<data-dir>/nodes).")
    var slurmNodeRoot: String?

    @Option(name: .customLong("max-connections"), help: "The most client connections served at once (API and --metrics-listen together); more wait until one closes. Default: half of what the descriptor limit (ulimit -n) leaves after the engine's share.")
    var maxConnections: Int?

    @Option(name: .customLong("history-retention"), help: "How long the history (events) of a deleted job is kept: 7d, 12h, P30D, or forever. Default: 7d.")
    var historyRetention = "7d"

    // Unconditional: "-5" is a value to refuse with a reason, not a flag ArgumentParser cannot find.
    @Option(name: .customLong("task-process-limit"), parsing: .unconditional, help: "As root: the most processes and threads one task account may hold at once (RLIMIT_NPROC of its commands), so that a fork bomb in a task stops there: a number, or none. Default: 15% of the smaller of kernel.pid_max and kernel.threads-max.")
    var taskProcessLimit: String?

    /// Flag values checked before anything runs, so a bad one prints serve's own usage (a
    /// ValidationError thrown from `run` printed the top-level usage instead).
    func validate() throws {
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), not \(logLevel)")
        }
        _ = try Serve.housekeeping(minFreeDisk: setup.minFreeDisk, historyRetention: historyRetention)
        _ = try Serve.taskProcessLimit(taskProcessLimit)
        _ = try Serve.parseListen(listen)
        if let metricsListen { _ = try Serve.parseListen(metricsListen, flag: "--metrics-listen") }
        if let maxConnections {
            guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1, not \(maxConnections)") }
            let largest = ConnectionCap.largestTotal()
            guard maxConnections <= largest else {
                throw ValidationError(
                    "--max-connections \(maxConnections) is more than the descriptor limit allows (\(Descriptors.limit()), ulimit -n; LimitNOFILE= under systemd): at most \(largest), as each connection may hold two descriptors and the engine keeps its own; raise the limit or lower --max-connections")
            }
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        let format = logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                return TextLogHandler(label: label, level: level)
            case .json:
                return JSONLogHandler(label: label, level: level)
            }
        }
        let logger = Logger(label: "bookend.serve")
        let (host, requestedPort) = try Serve.parseListen(listen)
        // Checked now, before the engine opens and before systemd hears READY=1: a metrics address
        // that cannot be bound used to fail the start only after the API listener had announced it.
        let metricsAddress = try metricsListen.map { text -> (String, Int) in
            let (metricsHost, metricsPort) = try Serve.parseListen(text, flag: "--metrics-listen")
            return (metricsHost, metricsPort == 0 ? try Serve.freePort(host: metricsHost, flag: "--metrics-listen")
                : try Serve.bindablePort(host: metricsHost, port: metricsPort, flag: "--metrics-listen"))
        }
        // Port 0: pick the port now so tasks see the real one in AZ_BATCH_ACCOUNT_URL.
        let port = requestedPort == 0 ? try Serve.freePort(host: host) : requestedPort
        if setup.keyFile == nil, !Serve.isLoopback(host) {
            throw CLIError("refusing to listen on \(host) without --key-file: a generated key is only allowed on loopback addresses")
        }
        // Everything about TLS is settled before the data directory, the engine or the listener exist.
        let tls = try Serve.tlsIdentity(certificate: tlsCert, key: tlsKey, host: host, insecureHTTP: insecureHTTP)
        let scheme = tls == nil ? "http" : "https"
        let (minimumFree, historyKept) = try Serve.housekeeping(minFreeDisk: setup.minFreeDisk, historyRetention: historyRetention)
        do {
            try DataDirectory.prepare(data.dataDirectory)
        } catch {
            throw CLIError("\(error)")
        }
        let keyPath = setup.keyFile ?? (data.dataDirectory as NSString).appendingPathComponent("account.key")
        let key = try Serve.loadOrCreateKey(at: keyPath, create: setup.keyFile == nil)
        if let notice = try Serve.keepKeyFromTaskAccounts(keyPath) { print(notice) }
        let metrics = BookendMetrics()
        let connections = ConnectionCap.split(
            total: maxConnections ?? ConnectionCap.defaultTotal(), metrics: metricsAddress != nil)
        let engine: Engine
        do {
            let urlHost = host.contains(":") ? "[\(host)]" : host
            var configuration = EngineConfiguration(
                accountName: account, accountURL: "\(scheme)://\(urlHost):\(port)/", nodesDirectory: setup.nodesDirectory,
                metricsFactory: metrics.factory, minFreeDisk: minimumFree, historyRetention: historyKept,
                nodeProvider: setup.nodeProvider,
                slurm: SlurmSettings(partition: slurmPartition, account: slurmAccount, qos: slurmQOS, nodeRoot: slurmNodeRoot))
            configuration.taskProcessLimit = try Serve.taskProcessLimit(taskProcessLimit)
            engine = try await Engine.open(
                dataDirectory: data.dataDirectory, configuration: configuration, logger: Logger(label: "bookend.engine"))
        } catch {
            throw CLIError("\(error)")
        }
        let accountName = account
        let notifier = SystemdNotifier()
        let service = APIServer.makeService(
            engine: engine, configuration: .init(host: host, port: port, accountName: account, key: key, tls: tls, metrics: metrics,
                                 maxConnections: connections.api), logger: logger
        ) { boundPort in
            let urlHost = host.contains(":") ? "[\(host)]" : host
            print("Account:  \(accountName)")
            print("Endpoint: \(scheme)://\(urlHost):\(boundPort)")
            print("Dashboard: \(scheme)://\(urlHost):\(boundPort)/ui (sign in with the account key, or open the link `bookend ui-link` prints)")
            print("Key file: \(keyPath)")
            if let tls { print("TLS cert: \(tls.certificateFile)") }
            fflush(nil)
            logger.info("serving the Batch API", metadata: ["endpoint": "\(scheme)://\(urlHost):\(boundPort)", "account": "\(accountName)"])
            // Accepting requests now: under systemd (Type=notify) the unit becomes active here.
            notifier.notify("READY=1")
        }
        var services: [any Service] = [engine, service]
        if let (metricsHost, metricsPort) = metricsAddress {
            services.append(APIServer.buildMetricsApplication(engine: engine, metrics: metrics, host: metricsHost, port: metricsPort, maxConnections: connections.metrics, logger: logger) { boundPort in
                let urlHost = metricsHost.contains(":") ? "[\(metricsHost)]" : metricsHost
                print("Metrics:  http://\(urlHost):\(boundPort)/metrics")
                fflush(nil)
            })
        }
        // Last, so a graceful shutdown reaches it first and systemd hears STOPPING=1 before anything stops.
        services.append(StoppingNotification(notifier: notifier))
        // One group for both: on SIGTERM/SIGINT the group shuts its services down in reverse order,
        // so the server stops accepting and finishes its requests first, then the engine stops
        // scheduling. SIGHUP too (the terminal that started it closed, `kill -HUP`): its default
        // action ended the process on the spot, without a word in the log. There is nothing to reload.
        // When a service ends or fails, the others are shut down the same graceful way, never
        // cancelled: a cancelled server drops the connections it has accepted but not yet served, and
        // swift-nio traps on each of them ("Deinited NIOAsyncWriter without calling finish()",
        // apple/swift-nio#2637), which ended the whole process.
        let group = ServiceGroup(configuration: .init(
            services: services.map {
                .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: [.sigterm, .sigint, .sighup], logger: logger))
        do {
            try await group.run()
        } catch {
            // The group has already run the engine's shutdown (its `run()` returns only after it).
            throw CLIError(Serve.describeServeFailure(error, listen: listen, metricsListen: metricsListen))
        }
        logger.info("shut down; running tasks are left to be adopted on the next start")
    }

    /// Why the server could not run, in words that name the address: a failed bind is reported by
    /// the network library as `bind(descriptor:ptr:bytes:): Address already in use) (errno: 98)`.
    static func describeServeFailure(_ error: any Error, listen: String, metricsListen: String?) -> String {
        let text = "\(error)"
        guard text.contains("bind(") else { return text }
        let address = metricsListen.map { "\(listen) (or --metrics-listen \($0))" } ?? listen
        if text.contains("errno: 98") || text.contains("Address already in use") {
            return "cannot listen on \(address): the address is already in use (another bookend serve, or another program, listens there); pick another --listen"
        }
        if text.contains("errno: 13") || text.contains("Permission denied") {
            return "cannot listen on \(address): permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); pick another --listen"
        }
        if text.contains("errno: 99") || text.contains("Cannot assign requested address") {
            return "cannot listen on \(address): no network interface of this machine has that address"
        }
        return "cannot listen on \(address): \(text)"
    }

    /// `--min-free-disk` and `--history-retention`, parsed before anything starts.
    static func housekeeping(minFreeDisk: String?, historyRetention: String) throws -> (DiskSpace?, Duration?) {
        do {
            return (try minFreeDisk.map { try DiskSpace(parsing: $0) }, try RetentionPeriod.parse(historyRetention))
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// `--task-process-limit`: a count of at least 1, or `none` (nil); without the flag, the default.
    static func taskProcessLimit(_ text: String?) throws -> Int? {
        guard let text else { return EngineConfiguration.defaultTaskProcessLimit() }
        if text.lowercased() == "none" { return nil }
        guard let limit = Int(text), (1...Int(UInt32.max)).contains(limit) else {
            throw ValidationError("--task-process-limit must be a number of processes (at least 1) or none, not \(text)")
        }
        return limit
    }

    static func parseListen(_ text: String, flag: String = "--listen") throws -> (String, Int) {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[close...].dropFirst().drop { $0 == ":" }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            throw ValidationError("\(flag) must be HOST:PORT, e.g. 127.0.0.1:8080")
        }
        guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty else {
            throw ValidationError("\(flag) must be HOST:PORT (a port from 0 to 65535), e.g. 127.0.0.1:8080")
        }
        if host == "localhost" { host = "127.0.0.1" }
        return (String(host), port)
    }

    /// A port that is free on `host` right now, for `--listen`/`--metrics-listen` port 0. The server
    /// binds it only after the engine has opened. A port the kernel picks for a bind to port 0 comes
    /// from its ephemeral range, where every outgoing connection's local port comes from too: on a
    /// machine making many connections, one took the port in between and the start failed with
    /// "address in use" (seen in CI). Ports above that range, which the kernel never hands out, are
    /// tried first, in random order; its own choice is the fallback.
    static func freePort(host: String, flag: String = "--listen") throws -> Int {
        if let ephemeral = ephemeralPortRange(), ephemeral.upperBound < 65_535 {
            for port in ((ephemeral.upperBound + 1)...65_535).shuffled().prefix(32) {
                if let free = try? bindablePort(host: host, port: port, flag: flag) { return free }
            }
        }
        return try bindablePort(host: host, port: 0, flag: flag)
    }

    /// `net.ipv4.ip_local_port_range` (it applies to IPv6 too), or nil when it cannot be read.
    static func ephemeralPortRange() -> ClosedRange<Int>? {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8) else { return nil }
        let bounds = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] <= bounds[1] else { return nil }
        return bounds[0]...bounds[1]
    }

    /// Binds `host:port` (0: any free port) and closes it again: the port, or why `flag`'s address
    /// cannot be listened on, naming it.
    static func bindablePort(host: String, port requested: Int, flag: String) throws -> Int {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, "\(requested)", &hints, &result) == 0, let info = result else {
            throw CLIError("\(flag): \(host) is not a numeric IP address")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CLIError("cannot create a socket to find a free port") }
        defer { close(fd) }
        // As the server binds (SO_REUSEADDR): a port left in TIME_WAIT is free for it, one another
        // program listens on is not.
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let address = host.contains(":") ? "[\(host)]:\(requested)" : "\(host):\(requested)"
            let reason = errno == EADDRINUSE ? "the address is already in use (another bookend serve, or another program, listens there)"
                : String(cString: strerror(errno))
            throw CLIError("cannot listen on \(address) (\(flag)): \(reason); pick another \(flag)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw CLIError("cannot read the bound port") }
        let port = withUnsafePointer(to: &storage) { pointer -> UInt16 in
            if info.pointee.ai_family == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        return Int(port)
    }

    /// The TLS identity to serve with, or nil for plain HTTP, which only loopback gets without asking:
    /// elsewhere Shared Key would still authenticate requests, but their bodies (commands,
    /// environment settings, file contents) would cross the network readable by anyone on the path.
    static func tlsIdentity(certificate: String?, key: String?, host: String, insecureHTTP: Bool) throws -> TLSIdentity? {
        switch (certificate, key) {
        case (let certificate?, let key?):
            if insecureHTTP { throw CLIError("--insecure-http contradicts --tls-cert/--tls-key: choose HTTPS or plain HTTP") }
            do {
                return try TLSIdentity(certificateFile: certificate, keyFile: key)
            } catch {
                throw CLIError(error.description)
            }
        case (_?, nil):
            throw CLIError("--tls-cert needs --tls-key (the certificate's PEM private key)")
        case (nil, _?):
            throw CLIError("--tls-key needs --tls-cert (the PEM certificate chain)")
        case (nil, nil):
            if !isLoopback(host), !insecureHTTP {
                throw CLIError("refusing plain HTTP on \(host): requests and bodies would cross the network unencrypted; pass --tls-cert PEM --tls-key PEM, or --insecure-http to accept that")
            }
            return nil
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "::1" || host.hasPrefix("127.")
    }

    /// As root, a key file every account may read is made unreadable to them before anything runs.
    /// Why: non-admin tasks run as other accounts, and one that reads the key signs any request,
    /// including a task with admin elevation, which runs as root. A key written with the usual umask
    /// (`head -c 32 /dev/urandom | base64 > key`, mode 0644) was enough. Only the bits of "others"
    /// go (task accounts are others; a group the operators share keeps its access). Returns what was
    /// done, for the start-up lines; refuses to start when the mode cannot be changed. Not as another
    /// user: tasks then run as the daemon's own account, which reads the file anyway
    /// (`bookend doctor` says so).
    static func keepKeyFromTaskAccounts(_ path: String) throws -> String? {
        guard geteuid() == 0 else { return nil }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & 0o007 != 0 else { return nil }
        let mode = info.st_mode & 0o7770
        guard chmod(path, mode) == 0 else {
            throw CLIError("the key file \(path) is readable by every account, task accounts included, and cannot be made private "
                + "(\(String(cString: strerror(errno)))): chmod o-rwx \(path), or pass a private --key-file")
        }
        return "Key file: \(path) was readable by every account, task accounts included: made it mode "
            + String(mode, radix: 8) + " (chmod o-rwx)"
    }

    /// Reads the base64 key, or (for the default path) generates a random 256-bit key stored with mode 0600.
    static func loadOrCreateKey(at path: String, create: Bool) throws -> Data {
        // The generated key (in the data directory) is private even if an older Bookend or a copy left it readable.
        if create { chmod(path, 0o600) }
        let stored: Data?
        do {
            stored = try SmallFile.read(path)
        } catch .tooLarge {
            throw CLIError(SmallFile.notAKey(path))
        } catch {
            stored = nil
        }
        if let stored {
            let text = String(decoding: stored, as: UTF8.self)
            guard let key = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), !key.isEmpty else {
                throw CLIError("\(path) does not hold a base64 account key")
            }
            return key
        }
        guard create else { throw CLIError("cannot read the key file \(path)") }
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
        let text = Data(bytes).base64EncodedString() + "\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CLIError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // Explicitly: the key signs every request, and only the daemon's account may read it.
        guard fchmod(fd, 0o600) == 0 else { throw CLIError("cannot make \(path) private: \(String(cString: strerror(errno)))") }
        let written = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        guard written == text.utf8.count else { throw CLIError("cannot write \(path)") }
        return Data(bytes)
    }
}

extension NodeProviderKind: ExpressibleByArgument {}
