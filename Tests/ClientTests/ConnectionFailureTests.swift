import Client
import Foundation
import TestSupport
import Testing

/// What the client (and so every CLI command) says when the daemon is not there or does not answer:
/// one line that says which, never URLSession's "NSURLErrorDomain error -1001", and never a wait
/// without an end.
@Suite struct ConnectionFailureTests {
    static func client(_ endpoint: String, answerTimeout: TimeInterval = 60) throws -> BatchHTTPClient {
        BatchHTTPClient(endpoint: URL(string: endpoint)!,
            signer: try SharedKeySigner(account: "bookend", base64Key: Data(repeating: 1, count: 32).base64EncodedString()),
            answerTimeout: answerTimeout)
    }

    static func failure(_ client: BatchHTTPClient) async throws -> ClientError {
        do {
            _ = try await client.send("GET", "/jobs", expect: [200])
        } catch let error as ClientError {
            return error
        }
        throw Failure("the request succeeded")
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// A loopback socket that listens and never accepts: the kernel completes the connection, and
    /// nothing ever answers on it.
    final class SilentListener {
        let fd: Int32
        let port: Int
        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ready = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &length) == 0
                }
            }
            guard fd >= 0, ready else {
                if fd >= 0 { close(fd) }
                throw Failure("cannot listen on loopback: \(String(cString: strerror(errno)))")
            }
            self.fd = fd
            port = Int(UInt16(bigEndian: address.sin_port))
        }
        deinit { close(fd) }
    }

    /// The same words over http and https (https said only "Connection refused" until 2026-12-07).
    @Test(arguments: ["http", "https"])
    func nothingListening(scheme: String) async throws {
        let port = try freePort()
        let error = try await Self.failure(try Self.client("\(scheme)://127.0.0.1:\(port)"))
        #expect(error.status == 0)
        #expect(error.code == "ConnectionFailed")
        #expect(error.message == "cannot reach \(scheme)://127.0.0.1:\(port): connection refused (nothing listens there: is bookend serve running on that address?)")
    }

    @Test(arguments: ["http", "https"])
    func aServerThatNeverAnswers(scheme: String) async throws {
        let listener = try SilentListener()
        let endpoint = "\(scheme)://127.0.0.1:\(listener.port)"
        // On a thread of its own: the figure is then the client's wait, not the time other tests
        // hold the cooperative pool's two threads (90 s once in CI on two cores).
        let executor = OwnThreadExecutor()
        defer { executor.stop() }
        let (error, waited) = try await withTaskExecutorPreference(executor) {
            let started = Date()
            let error = try await Self.failure(try Self.client(endpoint, answerTimeout: 1))
            return (error, Date().timeIntervalSince(started))
        }
        #expect(error.code == "ConnectionFailed")
        #expect(error.message.hasSuffix("no answer from 127.0.0.1 within 1 s"), "\(error.message)")
        // The timeout given, not URLSession's 60 s default nor a wait without end.
        #expect(waited < 30)
        withExtendedLifetime(listener) {}
    }
}
