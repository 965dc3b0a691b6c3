import API
import BatchModels
import Client
import Foundation
import TestSupport
import Testing

/// A self-signed certificate for 127.0.0.1 and localhost, made by openssl for one test.
struct SelfSignedCertificate {
    let directory: String
    var certificate: String { directory + "/cert.pem" }
    var key: String { directory + "/key.pem" }

    init(days: Int = 2, names: String = "IP:127.0.0.1,DNS:localhost") throws {
        directory = NSTemporaryDirectory() + "bookend-tls-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let result = try spawnAndWait("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem", "-days", "\(days)",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=\(names)"])
        try #require(result.status == 0, "openssl req failed: \(result.stderr)")
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite struct TLSTests {
    func client(_ server: LiveServer, host: String = "127.0.0.1", trust: TLSTrust?) throws -> BatchHTTPClient {
        BatchHTTPClient(
            endpoint: URL(string: "https://\(host):\(server.port)")!,
            signer: try SharedKeySigner(account: server.account, base64Key: server.key.base64EncodedString()), trust: trust)
    }

    @Test func sharedKeyRequestsWorkOverAVerifiedTLSConnection() async throws {
        let certificate = try SelfSignedCertificate()
        defer { certificate.remove() }
        let identity = try TLSIdentity(certificateFile: certificate.certificate, keyFile: certificate.key)
        try await withServer(tls: identity) { server in
            let trust = try TLSTrust(caCertificateFile: certificate.certificate)
            let api = try client(server, trust: trust)
            _ = try await api.send("POST", "/pools", body: Data(#"{"id":"tlspool","vmSize":"small","targetDedicatedNodes":0}"#.utf8), expect: [201])
            let pool = try await api.send("GET", "/pools/tlspool", expect: [200])
            #expect((try JSONSerialization.jsonObject(with: pool.body) as? [String: Any])?["id"] as? String == "tlspool")
            // Links handed out must say https: a client following odata.nextLink to http:// would
            // reach the TLS port in clear and be cut off (the SDKs page this way).
            _ = try await api.send("POST", "/pools", body: Data(#"{"id":"tlspool2","vmSize":"small","targetDedicatedNodes":0}"#.utf8), expect: [201])
            let page = try await api.send("GET", "/pools", query: [("maxresults", "1")], expect: [200])
            let nextLink = (try JSONSerialization.jsonObject(with: page.body) as? [String: Any])?["odata.nextLink"] as? String
            #expect(nextLink?.hasPrefix("https://127.0.0.1:\(server.port)/pools?") == true, "\(nextLink ?? "no nextLink")")
            let pools = try await api.list(BatchRequest<BatchPoolList>("GET", "/pools", query: [("maxresults", "1")], expect: [200]))
            #expect(pools.map(\.id) == ["tlspool", "tlspool2"])
            // By name: the name travels as SNI and must match the certificate's DNS entry.
            let byName = try client(server, host: "localhost", trust: trust)
            #expect(try await byName.send("GET", "/pools/tlspool", expect: [200]).status == 200)
            // TLS does not replace Shared Key: a wrong key is still refused, over the encrypted connection.
            let wrongKey = BatchHTTPClient(
                endpoint: api.endpoint, signer: try SharedKeySigner(account: server.account, base64Key: Data(repeating: 7, count: 32).base64EncodedString()),
                trust: trust)
            await #expect(throws: ClientError.self) { try await wrongKey.send("GET", "/pools", expect: [200]) }
            do {
                _ = try await wrongKey.send("GET", "/pools", expect: [200])
            } catch let error as ClientError {
                #expect(error.status == 403 && error.code == "AuthenticationFailed")
            }
        }
    }

    @Test func aClientThatDoesNotTrustTheCertificateIsRefused() async throws {
        let certificate = try SelfSignedCertificate()
        let other = try SelfSignedCertificate()
        defer { certificate.remove(); other.remove() }
        try await withServer(tls: try TLSIdentity(certificateFile: certificate.certificate, keyFile: certificate.key)) { server in
            for trust in [try TLSTrust.system(), try TLSTrust(caCertificateFile: other.certificate)] {
                let api = try client(server, trust: trust)
                do {
                    _ = try await api.send("POST", "/pools", body: Data(#"{"id":"untrusted","vmSize":"small","targetDedicatedNodes":0}"#.utf8), expect: [201])
                    Issue.record("a request reached a server whose certificate the client does not trust")
                } catch let error as ClientError {
                    #expect(error.status == 0 && error.code == "ConnectionFailed")
                    #expect(error.message.contains("certificate is not trusted"), "\(error.message)")
                }
            }
            // Nothing was created by the refused requests.
            let trusted = try client(server, trust: try TLSTrust(caCertificateFile: certificate.certificate))
            await #expect(throws: ClientError.self) { try await trusted.send("GET", "/pools/untrusted", expect: [200]) }
        }
    }

    @Test func aTrustedCertificateForAnotherNameIsRefused() async throws {
        // Trusted (it is its own CA) but issued for localhost only, not for the address dialled.
        let certificate = try SelfSignedCertificate(names: "DNS:localhost")
        defer { certificate.remove() }
        try await withServer(tls: try TLSIdentity(certificateFile: certificate.certificate, keyFile: certificate.key)) { server in
            let trust = try TLSTrust(caCertificateFile: certificate.certificate)
            #expect(try await client(server, host: "localhost", trust: trust).send("GET", "/pools", expect: [200]).status == 200)
            do {
                _ = try await client(server, trust: trust).send("GET", "/pools", expect: [200])
                Issue.record("a certificate for localhost was accepted for 127.0.0.1")
            } catch let error as ClientError {
                #expect(error.code == "ConnectionFailed")
                #expect(error.message.contains("the server's TLS certificate is not issued for 127.0.0.1"), "\(error.message)")
            }
        }
    }

    @Test func plainHTTPToTheTLSPortDoesNotReachTheAPI() async throws {
        let certificate = try SelfSignedCertificate()
        defer { certificate.remove() }
        try await withServer(tls: try TLSIdentity(certificateFile: certificate.certificate, keyFile: certificate.key)) { server in
            // A correctly signed plain-HTTP request: the TLS layer sees no handshake and closes the connection.
            await #expect(throws: (any Error).self) {
                try await server.send(.post, "/pools", body: #"{"id":"plainpool","vmSize":"small","targetDedicatedNodes":0}"#)
            }
            let api = try client(server, trust: try TLSTrust(caCertificateFile: certificate.certificate))
            do {
                _ = try await api.send("GET", "/pools/plainpool", expect: [200])
                Issue.record("the plain-HTTP request created a pool")
            } catch let error as ClientError {
                #expect(error.status == 404 && error.code == "PoolNotFound")
            }
            // The server is still serving.
            #expect(try await api.send("GET", "/pools", expect: [200]).status == 200)
        }
    }

    @Test func unusableCertificatesAndKeysAreRefusedWithTheFileNamed() throws {
        let certificate = try SelfSignedCertificate(days: 2)
        let other = try SelfSignedCertificate()
        defer { certificate.remove(); other.remove() }
        func failure(_ cert: String, _ key: String, now: Date = Date()) -> String {
            do {
                _ = try TLSIdentity(certificateFile: cert, keyFile: key, now: now)
                return "loaded"
            } catch {
                return error.description
            }
        }
        let missing = certificate.directory + "/missing.pem"
        #expect(failure(missing, certificate.key) == "cannot read --tls-cert \(missing): No such file or directory")
        #expect(failure(certificate.certificate, missing) == "cannot read --tls-key \(missing): No such file or directory")
        #expect(failure(certificate.directory, certificate.key) == "cannot read --tls-cert \(certificate.directory): Is a directory")
        // A key where the certificate belongs, and the reverse.
        #expect(failure(certificate.key, certificate.key).hasPrefix("--tls-cert \(certificate.key) holds no PEM certificate"))
        #expect(failure(certificate.certificate, certificate.certificate).hasPrefix("--tls-key \(certificate.certificate) holds no unencrypted PEM private key"))
        #expect(failure(certificate.certificate, other.key) == "--tls-key \(other.key) does not belong to the certificate in --tls-cert \(certificate.certificate)")
        // Three days on, the two-day certificate has expired.
        #expect(failure(certificate.certificate, certificate.key, now: Date().addingTimeInterval(3 * 86400)).hasPrefix("--tls-cert \(certificate.certificate) expired on "))
        // A day before it was made, it is not valid yet.
        #expect(failure(certificate.certificate, certificate.key, now: Date().addingTimeInterval(-86400)).hasPrefix("--tls-cert \(certificate.certificate) is not valid before "))
        #expect(failure(certificate.certificate, certificate.key) == "loaded")
    }

    @Test func aBadCAFileIsOneLineNamingIt() throws {
        let certificate = try SelfSignedCertificate()
        defer { certificate.remove() }
        func failure(_ path: String) -> String {
            do {
                _ = try TLSTrust(caCertificateFile: path)
                return "loaded"
            } catch let error as ClientError {
                return "\(error.code): \(error.message)"
            } catch {
                return "\(error)"
            }
        }
        let missing = certificate.directory + "/nope.pem"
        #expect(failure(missing) == "InvalidCACertificate: cannot read the CA certificate file \(missing): No such file or directory")
        #expect(failure(certificate.key) == "InvalidCACertificate: the CA certificate file \(certificate.key) holds no PEM certificate")
        #expect(failure(certificate.certificate) == "loaded")
    }
}
