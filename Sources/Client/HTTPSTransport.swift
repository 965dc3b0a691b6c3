import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Which certificate authorities an `https` endpoint's certificate may chain to.
///
/// FoundationNetworking on Linux cannot be told to trust another CA: it hands libcurl a fixed CA
/// bundle, ignores `SSL_CERT_FILE` and `CURL_CA_BUNDLE`, and never asks a delegate about server
/// trust (checked against a self-signed daemon). So `https` requests go through swift-nio-ssl,
/// whose trust roots we control: the system's, plus the certificates of `caCertificateFile`.
public struct TLSTrust: Sendable {
    let context: NIOSSLContext
    /// The extra CA file, for error messages.
    let caCertificateFile: String?

    /// The system's certificate authorities only.
    public static func system() throws -> TLSTrust {
        try TLSTrust(caCertificateFile: nil)
    }

    /// The system's certificate authorities plus every PEM certificate in `caCertificateFile` (for
    /// example a daemon's self-signed certificate). Throws a one-line `ClientError` naming the file.
    public init(caCertificateFile: String?) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caCertificateFile {
            let bytes = try Self.read(caCertificateFile)
            let certificates = (try? NIOSSLCertificate.fromPEMBytes(bytes)) ?? []
            guard !certificates.isEmpty else {
                throw ClientError(status: 0, code: "InvalidCACertificate",
                    message: "the CA certificate file \(caCertificateFile) holds no PEM certificate")
            }
            configuration.additionalTrustRoots = [.certificates(certificates)]
        }
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ClientError(status: 0, code: "InvalidCACertificate", message: "cannot set up TLS: \(error)")
        }
        self.caCertificateFile = caCertificateFile
    }

    /// The file's bytes, or an error that names it and says why in the system's words (ENOENT, EISDIR…).
    static func read(_ path: String) throws -> [UInt8] {
        func failure() -> ClientError {
            ClientError(status: 0, code: "InvalidCACertificate",
                message: "cannot read the CA certificate file \(path): \(String(cString: strerror(errno)))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure() }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = Glibc.read(fd, &chunk, chunk.count)
            if count < 0, errno == EINTR { continue }
            if count < 0 { throw failure() }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            guard bytes.count <= 16 << 20 else {
                throw ClientError(status: 0, code: "InvalidCACertificate", message: "the CA certificate file \(path) is larger than 16 MiB")
            }
        }
    }
}

/// One HTTP/1.1 request over TLS on its own connection, the whole answer read into memory.
enum HTTPSTransport {
    struct Answer: Sendable {
        let status: Int
        /// Lowercased names.
        let headers: [String: String]
        let body: Data
    }

    static func send(method: String, url: URL, headers: [String: String], body: Data?, trust: TLSTrust,
                     answerTimeout: TimeInterval) async throws -> Answer {
        guard let host = url.host, !host.isEmpty else {
            throw ClientError(status: 0, code: "InvalidUri", message: "\(url.absoluteString) has no host")
        }
        // URL.host keeps the brackets of an IPv6 literal; sockets and certificate checks want the bare address.
        let bareHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let port = url.port ?? 443
        // An IP address is not a valid SNI name: swift-nio-ssl then checks the certificate's IP
        // addresses against the peer address instead.
        let isIPAddress = (try? SocketAddress(ipAddress: bareHost, port: port)) != nil
        let serverHostname: String? = isIPAddress ? nil : bareHost
        let context = trust.context

        var target = url.path.isEmpty ? "/" : URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? url.path
        if let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedQuery { target += "?" + query }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target)
        let hostHeader = bareHost.contains(":") ? "[\(bareHost)]" : bareHost
        head.headers.add(name: "Host", value: url.port.map { "\(hostHeader):\($0)" } ?? hostHeader)
        for (name, value) in headers where name.lowercased() != "content-length" { head.headers.add(name: name, value: value) }
        if let body { head.headers.add(name: "Content-Length", value: "\(body.count)") }
        head.headers.add(name: "Connection", value: "close")

        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(30))
            .connect(host: bareHost, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverHostname))
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        // A silent server ends the wait after `answerTimeout`, as URLSession does on http, and says so.
        let deadline = Date().addingTimeInterval(answerTimeout)
        let underlying = channel.channel
        let timer = underlying.eventLoop.scheduleTask(in: .milliseconds(Int64(answerTimeout * 1000))) { underlying.close(promise: nil) }
        defer { timer.cancel() }
        func timedOut() -> ClientError? {
            Date() >= deadline
                ? ClientError(status: 0, code: "ConnectionFailed", message: HTTPSTransport.noAnswer(host: url.host ?? "", within: answerTimeout))
                : nil
        }
        return try await channel.executeThenClose { inbound, outbound in
            do {
                try await outbound.write(.head(head))
                if let body, !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                try await outbound.write(.end(nil))
            } catch {
                // A failed handshake closes the channel, so writing fails with "I/O on closed
                // channel"; the reason (say, an untrusted certificate) arrives on the inbound side.
                do {
                    for try await _ in inbound {}
                } catch let reason {
                    throw reason
                }
                throw error
            }
            var status = 0
            var responseHeaders: [String: String] = [:]
            var data = Data()
            do {
                for try await part in inbound {
                    switch part {
                    case .head(let response):
                        status = Int(response.status.code)
                        for (name, value) in response.headers { responseHeaders[name.lowercased()] = value }
                    case .body(let buffer):
                        data.append(contentsOf: buffer.readableBytesView)
                    case .end:
                        return Answer(status: status, headers: responseHeaders, body: data)
                    }
                }
            } catch {
                throw timedOut() ?? error
            }
            throw timedOut() ?? ClientError(status: 0, code: "ConnectionFailed", message: "the connection closed before the whole answer arrived")
        }
    }

    /// The one wording of a server that accepted the connection and never answered, on either scheme.
    static func noAnswer(host: String, within seconds: TimeInterval) -> String {
        "no answer from \(host) within \(seconds < 10 ? String(format: "%g", seconds) : String(Int(seconds))) s"
    }

    /// Names the usual TLS failures in words a user can act on.
    static func describe(_ error: any Error, host: String, trust: TLSTrust) -> String {
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") {
            let hint = trust.caCertificateFile.map { "it is not signed by a CA in \($0)" }
                ?? "pass --ca-cert PEM (or set BOOKEND_CA_CERT) to trust a self-signed daemon certificate"
            return "the server's TLS certificate is not trusted (\(hint))"
        }
        if let connection = error as? NIOConnectionError {
            if let io = connection.connectionErrors.lazy.compactMap({ $0.error as? IOError }).first {
                // The same words as over http (`BatchHTTPClient.describe`).
                if io.errnoCode == ECONNREFUSED {
                    return "connection refused (nothing listens there: is bookend serve running on that address?)"
                }
                return String(cString: strerror(io.errnoCode))
            }
            if connection.connectionErrors.isEmpty, connection.dnsAError != nil || connection.dnsAAAAError != nil {
                return "cannot resolve \(connection.host)"
            }
        }
        if error is ChannelError, case .connectTimeout = error as? ChannelError {
            return "no connection within 30 s"
        }
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return "the server's TLS certificate is not issued for \(host) (\(extra))"
        }
        // A handshake the server did not answer in TLS: most often a daemon serving plain HTTP (the
        // library's own text names its source files, which tells a user nothing).
        if text.contains("handshakeFailed") || text.contains("WRONG_VERSION_NUMBER") || text.contains("unexpectedEOF") {
            return "the TLS handshake failed: is the daemon serving plain HTTP there? (then use an http:// endpoint)"
        }
        return text
    }
}
