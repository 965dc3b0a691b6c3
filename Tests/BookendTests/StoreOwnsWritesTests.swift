import Foundation
import Testing

/// Issue #11: SQL that writes a state or an ETag lives in the Store (Sources/Bookend/Store), one
/// method per statement, so every write is guarded and appends its event in one place. This reads the
/// engine's sources and fails on a write statement outside the Store.
@Suite struct StoreOwnsWritesTests {
    static let engineDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/Bookend/Engine")

    /// Files whose writes are still to move into the Store (the scheduler pass and execution
    /// bookkeeping); the list may only shrink.
    static let notYetMoved: Set<String> = ["Pass.swift", "Executions.swift", "Scheduler.swift", "Reconciler.swift"]

    /// Write statements: any INSERT, UPDATE … SET or DELETE, and any assignment to the ETag column.
    static func writes() throws -> Regex<AnyRegexOutput> {
        try Regex(#"INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|e_tag\s*="#).ignoresCase()
    }

    static func engineFiles() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: engineDirectory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "swift" }
    }

    @Test func theScanSeesTheEngineAndItsWrites() throws {
        let files = try Self.engineFiles()
        // The scan must read the engine (not an empty or moved folder), and it must find the writes
        // still waiting to move, or it could not fail.
        #expect(files.count >= 20)
        #expect(Set(files.map(\.lastPathComponent)).isSuperset(of: Self.notYetMoved))
        let scheduler = try String(contentsOf: Self.engineDirectory.appendingPathComponent("Scheduler.swift"), encoding: .utf8)
            + (try String(contentsOf: Self.engineDirectory.appendingPathComponent("Executions.swift"), encoding: .utf8))
        #expect(scheduler.contains(try Self.writes()))
    }

    @Test func engineFilesLeaveWritesToTheStore() throws {
        var offenders: [String] = []
        let writes = try Self.writes()
        for file in try Self.engineFiles() where !Self.notYetMoved.contains(file.lastPathComponent) {
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            for (number, line) in lines.enumerated() where line.contains(writes) {
                // Doc comments may name a statement; code may not run one.
                guard !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") else { continue }
                offenders.append("\(file.lastPathComponent):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        #expect(offenders.isEmpty, "write SQL outside Sources/Bookend/Store:\n\(offenders.joined(separator: "\n"))")
    }
}
