@testable import Bookend
import Foundation
import Testing
import TestSupport

/// Status folder nonces and node ids are sixteen lowercase hex digits (`%016llx`), ETags `0x` and
/// sixteen uppercase ones, written without Foundation's formatter.
@Suite struct HexTests {
    @Test(arguments: [
        (UInt64(0), "0000000000000000"), (0xabc, "0000000000000abc"), (0x1234_5678_9abc_def0, "123456789abcdef0"),
        (UInt64.max, "ffffffffffffffff"), (0x0fff_ffff_ffff_ffff, "0fffffffffffffff"),
    ])
    func sixteenDigits(_ value: UInt64, _ expected: String) {
        #expect(value.hex16() == expected)
        #expect(UInt64(value.hex16(), radix: 16) == value)
        #expect(value.hex16(uppercase: true, prefix: "0x") == "0x" + expected.uppercased())
    }

    /// What a launch stores: `<node root>/volatile/executions/<pk>-<nonce>`, and node ids
    /// `tvmps_<16 hex digits>_d`.
    @Test func statusFoldersAndNodeIDsCarrySixteenHexDigits() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let node = try #require(try await h.pool().first)
            #expect(node.id.wholeMatch(of: /tvmps_[0-9a-f]{16}_d/) != nil, "node id \(node.id)")
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/bin/true"))
            try await h.waitForTasks("job")
            let row = try #require(try await h.sql("SELECT pk, status_dir FROM execution WHERE kind = 'task'").first)
            let pk = try #require(row.first)
            let folder = try #require(row.last)
            #expect(folder.hasPrefix(node.rootDirectory + "/volatile/executions/\(pk)-"))
            #expect(folder.wholeMatch(of: /.*\/[0-9]+-[0-9a-f]{16}/) != nil, "status folder \(folder)")
        }
    }
}
