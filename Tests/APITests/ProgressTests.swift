import Foundation
import TestSupport
import Testing

/// Long-running CLI commands show progress on a terminal and nothing extra elsewhere.
@Suite struct ProgressTests {
    /// `task add --json` with 250 tasks (three calls of at most 100): under a pseudo-terminal made by
    /// script(1) it redraws "adding tasks … N/250" on stderr; through a pipe its output is the one line
    /// it always printed.
    @Test func taskAddShowsProgressOnATerminalOnly() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: BookendCLI.binary), "build bookend first (swift build)")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else {
            print("ProgressTests skipped: no script(1) to make a pseudo-terminal (Debian: bsdutils)")
            return
        }
        try await withServer { server in
            #expect(try await server.send(.post, "/pools", body: #"{"id":"gp","vmSize":"small","targetDedicatedNodes":0}"#).status == 201)
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"gj","poolInfo":{"poolId":"gp"}}"#).status == 201)
            let file = NSTemporaryDirectory() + "bookend-progress-\(UUID().uuidString.prefix(8)).json"
            defer { try? FileManager.default.removeItem(atPath: file) }
            let tasks = (0..<250).map { #"{"id":"a\#($0)","commandLine":"/bin/true"}"# }.joined(separator: ",")
            try "[\(tasks)]".write(toFile: file, atomically: true, encoding: .utf8)

            let command = [BookendCLI.binary, "task", "add", "gj", "--json", file,
                "--endpoint", "http://127.0.0.1:\(server.port)", "--account", server.account].joined(separator: " ")
            let key = server.key.base64EncodedString()
            let terminal = try await onOwnThread { () -> (Int32, String) in
                var environment = ProcessInfo.processInfo.environment
                environment["BOOKEND_KEY"] = key
                let result = try spawnAndWait("/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment, stdin: "")
                return (result.status, result.stdout)
            }
            #expect(terminal.0 == 0, "\(terminal.1)")
            for done in [0, 100, 200] { #expect(terminal.1.contains("adding tasks to job gj: \(done)/250"), "\(terminal.1)") }
            #expect(terminal.1.contains("added 250 of 250 tasks to job gj"))

            // Through pipes: the result line only.
            let file2 = file + ".2"
            defer { try? FileManager.default.removeItem(atPath: file2) }
            try "[\((0..<250).map { #"{"id":"b\#($0)","commandLine":"/bin/true"}"# }.joined(separator: ","))]"
                .write(toFile: file2, atomically: true, encoding: .utf8)
            let piped = try await BookendCLI.run(server, ["task", "add", "gj", "--json", file2])
            #expect(piped.status == 0)
            #expect(piped.stdout == "added 250 of 250 tasks to job gj\n")
            #expect(piped.stderr.isEmpty)
        }
    }
}
