import Foundation
import Testing

/// Issue #11: SQL that writes a state or an ETag lives in the Store (Sources/Bookend/Store), one
/// method per statement, so every write is guarded and appends its event in one place. This reads the
/// engine's sources and fails on a write statement outside the Store.
@Suite struct StoreOwnsWritesTests {
    static let engineDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/Bookend/Engine")


    /// Write statements: any INSERT, UPDATE … SET or DELETE, and any assignment to the ETag column.
    static func writes() throws -> Regex<AnyRegexOutput> {
        try Regex(#"INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|e_tag\s*="#).ignoresCase()
    }

    /// The engine's files, and the provider files that extend it (Sources/Bookend/Providers).
    static func engineFiles() throws -> [URL] {
        let providers = engineDirectory.deletingLastPathComponent().appendingPathComponent("Providers")
        return try [engineDirectory, providers].flatMap {
            try FileManager.default.contentsOfDirectory(at: $0, includingPropertiesForKeys: nil)
        }.filter { $0.pathExtension == "swift" }
    }

    @Test func theScanSeesTheEngineAndWouldSeeAWrite() throws {
        let files = try Self.engineFiles()
        // The scan must read the engine (not an empty or moved folder), and its pattern must match the
        // statements the Store runs, or it could not fail.
        #expect(files.count >= 20)
        #expect(Set(files.map(\.lastPathComponent)).isSuperset(of: ["Pass.swift", "Executions.swift", "Scheduler.swift", "Reconciler.swift", "Engine+Slurm.swift"]))
        let store = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/Bookend/Store")
        for name in ["ExecutionStore.swift", "JobStore.swift", "TaskStore.swift", "NodeStore.swift"] {
            let text = try String(contentsOf: store.appendingPathComponent(name), encoding: .utf8)
            #expect(text.contains(try Self.writes()), "the scan's pattern must match the writes in \(name)")
        }
    }

    @Test func engineFilesLeaveWritesToTheStore() throws {
        var offenders: [String] = []
        let writes = try Self.writes()
        for file in try Self.engineFiles() {
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
