import Foundation

/// The result of running a program.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    /// The non-empty lines of stderr.
    public var errorLines: [Substring] { stderr.split(separator: "\n") }
}

/// Runs `executable` with `arguments` and waits for it, on a thread of its own; `environment`
/// replaces the caller's when given. With `stdin`, the program reads exactly that text and then end
/// of file; without, it keeps the test's own standard input.
public func run(
    _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil,
    stdin: String? = nil
) async throws -> ProcessResult {
    try await onOwnThread {
        try runOnCallingThread(executable, arguments, in: directory, environment: environment, stdin: stdin)
    }
}

/// `run` blocking the calling thread: only for code that is itself on a thread of its own.
public func runOnCallingThread(
    _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil,
    stdin: String? = nil
) throws -> ProcessResult {
    try spawnAndWait(executable, arguments, in: directory, environment: environment, stdin: stdin)
}
