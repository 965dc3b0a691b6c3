import Foundation
import TestSupport

/// The real `bookend` binary, run against a live server.
enum BookendCLI {
    static let binary = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/bookend").path

    typealias Ran = ProcessResult

    /// Runs `bookend` against the server, waiting on a thread of its own: the server answers from this
    /// process's cooperative pool, which a blocking wait there could starve.
    static func run(_ server: LiveServer, _ arguments: [String], stdin: String? = nil) async throws -> Ran {
        var environment = ProcessInfo.processInfo.environment
        environment["BOOKEND_KEY"] = server.key.base64EncodedString()
        return try await TestSupport.run(binary, arguments + ["--endpoint", "http://127.0.0.1:\(server.port)", "--account", server.account],
            environment: environment, stdin: stdin)
    }
}
