import Foundation
import HummingbirdCore
import HummingbirdTLS
import NIOSSL

/// The daemon's certificate chain and private key (PEM files), read and checked when it is made,
/// so a wrong file stops `bookend serve` with one line before the engine or the listener starts.
public struct TLSIdentity: Sendable {
    public let certificateFile: String
    public let keyFile: String
    /// When the leaf certificate stops being valid.
    public let notValidAfter: Date
    /// HTTP/1.1 inside TLS with Hummingbird's defaults, made (and so checked) in `init`.
    let defaultServer: HTTPServerBuilder
    let tlsConfiguration: TLSConfiguration

    /// Why a certificate or key cannot be used; `description` is one line naming the file.
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(certificateFile: String, keyFile: String, now: Date = Date()) throws(LoadError) {
        let certificateBytes = try Self.read(certificateFile, option: "--tls-cert")
        let chain = (try? NIOSSLCertificate.fromPEMBytes(certificateBytes)) ?? []
        guard let leaf = chain.first else {
            throw LoadError(description: "--tls-cert \(certificateFile) holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")
        }
        let expiry = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        guard expiry > now else {
            throw LoadError(description: "--tls-cert \(certificateFile) expired on \(Self.format(expiry)); clients would refuse it")
        }
        let start = Date(timeIntervalSince1970: TimeInterval(leaf.notValidBefore))
        guard start <= now else {
            throw LoadError(description: "--tls-cert \(certificateFile) is not valid before \(Self.format(start)); clients would refuse it until then (check the clock, or the certificate's dates)")
        }
        let keyBytes = try Self.read(keyFile, option: "--tls-key")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw LoadError(description: "--tls-key \(keyFile) holds no unencrypted PEM private key (encrypted keys are not supported)")
        }
        // The leaf's public key must be the one of `key`; otherwise every handshake would fail later.
        // BoringSSL refuses a mismatched pair when the context is built.
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            // BoringSSL reports the mismatch as `failedToLoadPrivateKey`, although the key itself loaded.
            throw LoadError(description: "--tls-key \(keyFile) does not belong to the certificate in --tls-cert \(certificateFile)")
        }
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.notValidAfter = expiry
        do {
            defaultServer = try .tls(.http1(), tlsConfiguration: configuration)
        } catch {
            throw LoadError(description: "cannot use --tls-cert \(certificateFile) with --tls-key \(keyFile): \(error)")
        }
        tlsConfiguration = configuration
    }

    /// HTTP/1.1 inside TLS, for `Application(server:)`. `tls` only wraps a closure and succeeded in
    /// `init` with the same TLS configuration; were it to fail, the server stays TLS, never plain.
    func server(_ http1: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        (try? .tls(.http1(configuration: http1), tlsConfiguration: tlsConfiguration)) ?? defaultServer
    }

    private static func read(_ path: String, option: String) throws(LoadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw LoadError(description: "cannot read \(option) \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = Glibc.read(fd, &chunk, chunk.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw LoadError(description: "cannot read \(option) \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            // A PEM chain is a few KiB: anything this large is not one.
            guard bytes.count <= 1 << 20 else { throw LoadError(description: "\(option) \(path) is larger than 1 MiB; it is not a PEM file") }
        }
    }

    private static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: date)
    }
}
