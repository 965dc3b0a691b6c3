import Foundation
import TestSupport
import Testing

/// What operators get from the binary besides the daemon: the man page, shell completions, and
/// `--log-format json`.
@Suite struct OperationsCLITests {
    let binary = Repository.path(".build/debug/bookend")

    /// Starts `bookend serve` on a new data directory in `directory` with `extra` arguments, listening
    /// on `port` (a free one by default), and returns once it has told its notify socket READY=1.
    func serve(in directory: TemporaryDirectory, _ extra: [String], port: Int? = nil, errors: ChildProcess.Output = .discard) async throws -> ChildProcess {
        let socket = try SystemdTests.NotifySocket(name: directory.path + "/notify.sock")
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = directory.path + "/notify.sock"
        let process = try ChildProcess(
            binary, ["serve", "--data-dir", directory.path + "/data", "--listen", "127.0.0.1:\(try port ?? freePort())"] + extra,
            environment: environment, output: .discard, errors: errors)
        let ready = try await socket.receive(while: process)
        #expect(ready == "READY=1")
        return process
    }

    @Test func manualCoversEveryCommand() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let result = try await run(binary, ["generate-manual", "--date", "2026-01-02"])
        #expect(result.status == 0, "\(result.stderr)")
        let page = result.stdout
        #expect(page.hasPrefix(#".TH BOOKEND 1 "2026\-01\-02" "Bookend""#))
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH COMMANDS"] { #expect(page.contains("\n" + section + "\n"), "\(section)") }
        for command in ["migrate", "serve", "pool create", "job wait", "task add", "generate-manual"] {
            #expect(page.contains(".SS bookend " + command.replacingOccurrences(of: "-", with: "\\-") + "\n"), "no section for bookend \(command)")
        }
        // Flags as --help shows them, with roff's hyphens.
        #expect(page.contains(#"\-\-metrics\-listen"#))
        #expect(page.contains(#"\-\-log\-format"#))
        // man(1) itself formats it without a warning, where man is installed.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/groff") {
            let directory = try TemporaryDirectory()
            try page.write(toFile: directory.path + "/bookend.1", atomically: true, encoding: .utf8)
            let formatted = try await run("/usr/bin/groff", ["-man", "-Tutf8", "-ww", "-z", directory.path + "/bookend.1"])
            #expect(formatted.status == 0 && formatted.stderr.isEmpty, "groff: \(formatted.stderr)")
        }
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScripts(shell: String) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let result = try await run(binary, ["--generate-completion-script", shell])
        #expect(result.status == 0, "\(result.stderr)")
        for word in ["serve", "metrics-listen", "log-format", "generate-manual"] {
            #expect(result.stdout.contains(word), "\(shell) completion lacks \(word)")
        }
        // The script parses in its shell, where that shell is installed.
        let interpreter = ["bash": "/bin/bash", "zsh": "/usr/bin/zsh", "fish": "/usr/bin/fish"][shell] ?? ""
        if FileManager.default.isExecutableFile(atPath: interpreter), shell != "fish" {
            let directory = try TemporaryDirectory()
            try result.stdout.write(toFile: directory.path + "/completion", atomically: true, encoding: .utf8)
            let checked = try await run(interpreter, ["-n", directory.path + "/completion"])
            #expect(checked.status == 0, "\(shell) -n: \(checked.stderr)")
        }
    }

    @Test func jsonLogsAreOneObjectPerLineWithoutTheKey() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let log = directory.path + "/stderr"
        let process = try await serve(in: directory, ["--log-format", "json", "--log-level", "debug"], errors: .file(log))
        process.terminate()
        _ = try await onOwnThread { process.waitUntilExit() }
        let text = try String(contentsOfFile: log, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count >= 2, "\(text)")
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object != nil, "not a JSON object of strings: \(line)")
            for key in ["time", "level", "label", "message"] { #expect(object?[key] != nil, "\(key) missing in \(line)") }
        }
        #expect(lines.contains { $0.contains(#""message":"serving the Batch API""#) })
        let key = try String(contentsOfFile: directory.path + "/data/account.key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!text.contains(key))
    }

    /// The default text logs keep the layout they always had (swift-log's stream handler's:
    /// `<time> <level> <label>: <key=value ...> [<source>] <message>`), at every level, while a
    /// request's logger is given its id, and never show the account key.
    @Test func textLogsKeepTheirLayoutWithoutTheKey() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let log = directory.path + "/stderr"
        let port = try freePort()
        let process = try await serve(in: directory, ["--log-level", "trace"], port: port, errors: .file(log))
        // Requests, answered or refused, whose loggers carry a request id.
        for path in ["/health", "/pools?api-version=2025-06-01"] {
            _ = try await run("/usr/bin/curl", ["-s", "-o", "/dev/null", "--max-time", "10", "http://127.0.0.1:\(port)\(path)"])
        }
        process.terminate()
        _ = try await onOwnThread { process.waitUntilExit() }
        let text = try String(contentsOfFile: log, encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count >= 2, "\(text)")
        let layout = try Regex(#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4} (trace|debug|info|notice|warning|error|critical) [^ :]+:( [^ =]+=.*)? \[[^\]]+\] .+$"#)
        for line in lines { #expect(line.wholeMatch(of: layout) != nil, "not in the log layout: \(line)") }
        #expect(lines.contains { $0.contains(" info bookend.serve: ") && $0.contains("account=") && $0.hasSuffix("serving the Batch API") }, "\(text)")
        let key = try String(contentsOfFile: directory.path + "/data/account.key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!text.contains(key))
    }

    /// `--metrics-listen`: a second listener with `/metrics` and `/health` only, no key.
    @Test func metricsListenServesOnlyMetricsAndHealth() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let metricsPort = try freePort()
        let process = try await serve(in: directory, ["--metrics-listen", "127.0.0.1:\(metricsPort)", "--log-level", "warning"])
        let metrics = try await run("/usr/bin/curl", ["-s", "-w", "\n%{http_code}", "--max-time", "10", "http://127.0.0.1:\(metricsPort)/metrics"])
        #expect(metrics.stdout.hasSuffix("\n200"), "\(metrics.stdout.suffix(200))")
        #expect(metrics.stdout.contains("bookend_sqlite_database_bytes "))
        #expect(metrics.stdout.contains("bookend_jobs") == false)  // no jobs yet: no series
        let pools = try await run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
            "http://127.0.0.1:\(metricsPort)/pools?api-version=2025-06-01"])
        #expect(pools.stdout == "404")
        // Only `/metrics` and `/health`; its own requests are counted too.
        let again = try await run("/usr/bin/curl", ["-s", "--max-time", "10", "http://127.0.0.1:\(metricsPort)/metrics"])
        #expect(again.stdout.contains(#"bookend_http_requests_total{method="GET",route="/metrics",status="200"} 1"#), "\(again.stdout)")
        process.terminate()
        _ = try await onOwnThread { process.waitUntilExit() }
    }
}
