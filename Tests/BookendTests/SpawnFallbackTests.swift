import Foundation
import TestSupport
import Testing

/// Where no spawn helper can be started, the engine forks its shims itself, as it did before the
/// helper existed. `BOOKEND_SPAWN_HELPER_OFF=1` forces that path; the sample must run all the same.
@Suite struct SpawnFallbackTests {
    let binary = Repository.path(".build/debug/bookend")

    @Test func theSampleRunsWhenTheEngineForksShimsItself() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        var environment = ProcessInfo.processInfo.environment
        environment["BOOKEND_SPAWN_HELPER_OFF"] = "1"
        let result = try await run(binary, ["sample", "job-prep-release", "--data-dir", "var/demo", "--keep-job"], in: directory.path,
            environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.components(separatedBy: "Prep task exit code:    0").count == 3)
        #expect(result.stdout.components(separatedBy: "Release task exit code: 0").count == 3)
        let tasks = try await run("/usr/bin/sqlite3", ["-readonly", directory.file("var/demo/bookend.db"),
            "SELECT count(*) FROM execution WHERE kind = 'task' AND exit_code = 0"])
        #expect(tasks.stdout == "8\n")
    }
}
