import Bookend
import Foundation
import SQLite
import Testing

/// A fresh directory under the system temporary directory, removed when the last reference goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("bookend-tests-XXXXXX").utf8CString)
        guard let result = mkdtemp(&template) else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        path = String(cString: result)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// A path inside the directory.
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// The repository checkout these tests were compiled from.
enum Repository {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // BookendTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
}

extension Connection {
    func count(_ table: String) throws -> Int {
        try #require(scalar("SELECT count(*) FROM \(table)").int)
    }

    /// Every row of `sql` as arrays of values, for comparing whole results.
    func values(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws -> [[SQLiteValue]] {
        try query(sql, arguments).map(\.values)
    }
}

/// A migrated data directory in a temporary folder.
struct MigratedDirectory {
    let directory: TemporaryDirectory
    let connection: Connection

    init() throws {
        directory = try TemporaryDirectory()
        connection = try DataDirectory.openMigrated(directory.path).connection
    }
}

/// The result of running a program.
struct ProcessResult: Sendable {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs `executable` with `arguments` and waits for it, on a thread of its own; `environment`
/// replaces the caller's when given.
func run(
    _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil
) async throws -> ProcessResult {
    try await onOwnThread { try runOnCallingThread(executable, arguments, in: directory, environment: environment) }
}

/// `run` blocking the calling thread: only for code that is itself on a thread of its own.
func runOnCallingThread(
    _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil
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
    try process.run()
    // Read before waiting so a full pipe cannot block the child.
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self))
}

/// Runs `body`, then `cleanup` on every path, and returns once both are done: the `defer` Swift does
/// not allow to `await`. A `defer { Task { … } }` would leave the cleanup (an engine's shutdown) to run
/// at some later time, into the next test.
func withCleanup<T>(_ cleanup: () async -> Void, _ body: () async throws -> T) async throws -> T {
    let value: T
    do {
        value = try await body()
    } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    return value
}

/// Runs blocking work (waiting for a process, reading a pipe to its end, a synchronous socket) on a
/// thread of its own and awaits its result, so a test never holds one of the cooperative pool's few
/// threads, which other tests' awaits (and the engines' callers) need to make progress.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}
