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
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if let environment { process.environment = environment }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let input = stdin.map { (text: $0, pipe: Pipe()) }
    if let input { process.standardInput = input.pipe }
    try process.run()
    // Written after the start and closed, so the program reads exactly this and then end of file.
    if let input {
        input.pipe.fileHandleForWriting.write(Data(input.text.utf8))
        try input.pipe.fileHandleForWriting.close()
    }
    // Read before waiting so a full pipe cannot block the child.
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self))
}
