import Foundation

/// The real `bookend` binary, run against a live server.
enum BookendCLI {
    static let binary = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/bookend").path

    struct Ran {
        let status: Int32
        let stdout: String
        let stderr: String
        /// The non-empty lines of stderr.
        var errorLines: [Substring] { stderr.split(separator: "\n") }
    }

    /// Runs `bookend` against the server. The wait happens on a dispatch thread: the server answers
    /// from this process's cooperative pool, which a blocking wait there could starve.
    static func run(_ server: LiveServer, _ arguments: [String], stdin: String? = nil) async throws -> Ran {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments + ["--endpoint", "http://127.0.0.1:\(server.port)", "--account", server.account]
        var environment = ProcessInfo.processInfo.environment
        environment["BOOKEND_KEY"] = server.key.base64EncodedString()
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        // Only a command given input gets a pipe; the others keep the test's stdin, as before.
        let input = stdin.map { (text: $0, pipe: Pipe()) }
        if let input { process.standardInput = input.pipe }
        return try await onOwnThread {
            try process.run()
            // Written after the start and closed, so the command reads exactly this and then end of file.
            if let input {
                input.pipe.fileHandleForWriting.write(Data(input.text.utf8))
                try input.pipe.fileHandleForWriting.close()
            }
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Ran(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                stderr: String(decoding: stderr, as: UTF8.self))
        }
    }
}
