import Foundation
import TestSupport
import Testing

/// `bookend serve` and the CLI as processes: TLS start-up checks, refusing plain HTTP off loopback,
/// and the CLI over HTTPS with a self-signed certificate made by openssl for the test.
@Suite struct ServeTests {
    let binary = Repository.path(".build/debug/bookend")

    /// A self-signed certificate for 127.0.0.1 and localhost in `directory`.
    static func makeCertificate(in directory: TemporaryDirectory, name: String = "server") async throws -> (certificate: String, key: String) {
        let certificate = directory.file("\(name).crt")
        let key = directory.file("\(name).key")
        let result = try await run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        try #require(result.status == 0, "openssl req failed: \(result.stderr)")
        return (certificate, key)
    }

    /// A running `bookend serve`, started once it has printed its `Endpoint:` line.
    final class Daemon: @unchecked Sendable {
        // @unchecked: `process` and `endpoint` are set in `init` and only read afterwards (`stop`
        // signals and waits on a thread of its own).
        let process: ChildProcess
        let endpoint: String
        private let lines: LineCollector

        /// What it printed (stdout and stderr) and, once it has ended, how: for a failure's message.
        var diagnosis: String {
            let state = process.termination.map { "it ended: \($0)" } ?? "it is running"
            return "bookend serve (\(state)) printed:\n\(lines.text)"
        }

        /// Starts the daemon and waits for its endpoint on a thread of its own.
        /// `fileLimit`: the daemon's limit of open descriptors (`ulimit -n`), when a test needs it low.
        /// `environment`: variables added to the test's own (a crash point, say).
        /// `directory`: its working directory (the test's own when nil).
        static func start(binary: String, arguments: [String], fileLimit: Int? = nil, environment: [String: String] = [:],
                          in directory: String? = nil) async throws -> Daemon {
            try await onOwnThread { try Daemon(binary: binary, arguments: arguments, fileLimit: fileLimit, environment: environment, directory: directory) }
        }

        private init(binary: String, arguments: [String], fileLimit: Int?, environment: [String: String], directory: String?) throws {
            let serve = ["serve", "--log-level", "warning"] + arguments
            let variables = environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { $1 }
            if let fileLimit {
                process = try ChildProcess("/bin/sh", ["-c", "ulimit -n \(fileLimit) && exec \"$0\" \"$@\"", binary] + serve,
                    in: directory, environment: variables, output: .pipe)
            } else {
                process = try ChildProcess(binary, serve, in: directory, environment: variables, output: .pipe)
            }
            // Read on a thread of its own so the wait below has a deadline and can say what it saw.
            let lines = LineCollector()
            self.lines = lines
            let handle = process.output!
            Thread.detachNewThread {
                while true {
                    let data = handle.availableData
                    if data.isEmpty { lines.finish(); return }
                    lines.append(data)
                }
            }
            let deadline = Date().addingTimeInterval(120)
            while true {
                if let line = lines.text.split(separator: "\n").first(where: { $0.hasPrefix("Endpoint: ") }) {
                    endpoint = String(line.dropFirst("Endpoint: ".count))
                    return
                }
                if lines.finished || Date() > deadline {
                    process.terminate()
                    throw Failure(description: "bookend serve did not print its endpoint (\(lines.finished ? "it exited" : "120 s passed")): \(lines.text)")
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }

        /// SIGTERM (a graceful shutdown) and its exit status, waited for on a thread of its own.
        func stop() async -> Int32 {
            let process = process
            process.terminate()
            return (try? await onOwnThread { process.terminationStatus }) ?? -1
        }

        struct Failure: Error, CustomStringConvertible { let description: String }

        /// Sends `signal` and waits, on a thread of its own, for how the daemon ended.
        func end(by signal: Int32) async throws -> ChildProcess.Termination {
            let process = process
            process.signal(signal)
            return try await onOwnThread { process.waitUntilExit() }
        }

        final class LineCollector: @unchecked Sendable {
            // Guarded by `lock`: written by the reader thread, read by the test.
            private let lock = NSLock()
            private var data = Data()
            private var done = false
            func append(_ chunk: Data) { lock.withLock { data.append(chunk) } }
            func finish() { lock.withLock { done = true } }
            var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
            var finished: Bool { lock.withLock { done } }
        }
    }

    /// Runs the CLI with `environment` added to a minimal one (no BOOKEND_* from the caller's).
    func cli(_ arguments: [String], environment: [String: String] = [:], home: String) async throws -> ProcessResult {
        try await run(binary, arguments, environment: ["PATH": "/usr/bin:/bin", "HOME": home].merging(environment) { $1 })
    }

    /// Through the CLI: pool `p` of one node, job `j` on it, and a task for each of `tasks` (the
    /// arguments after `task add j`), each command expected to succeed.
    func createJobOfOneNodePool(tasks: [[String]], environment: [String: String], home: String) async throws {
        for command in [["pool", "create", "--id", "p", "--nodes", "1"], ["job", "create", "--id", "j", "--pool-id", "p"]]
            + tasks.map({ ["task", "add", "j"] + $0 }) {
            let ran = try await cli(command, environment: environment, home: home)
            #expect(ran.status == 0, "\(command): \(ran.stderr)")
        }
    }

    /// A daemon on a new data directory (its folder searchable by task accounts) that dies at
    /// `crashPoint`: what a crash test starts from, and what it restarts with.
    struct Armed {
        let directory: TemporaryDirectory
        let data: String
        let daemon: Daemon
        /// `host:port` of the first daemon, for the second to listen on.
        let address: String
        /// What the CLI needs to reach it.
        let environment: [String: String]
    }

    func daemon(crashingAt crashPoint: String) async throws -> Armed {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let data = directory.file("data")
        let daemon = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", "127.0.0.1:0"],
            environment: ["BOOKEND_CRASH_AT": crashPoint])
        return Armed(directory: directory, data: data, daemon: daemon, address: String(daemon.endpoint.dropFirst("http://".count)),
            environment: ["BOOKEND_ENDPOINT": daemon.endpoint, "BOOKEND_KEY_FILE": data + "/account.key"])
    }

    /// A folder every task account may write (0777) in `directory`: lines tasks append there count
    /// their real runs.
    static func sideEffects(in directory: TemporaryDirectory) throws -> String {
        let effects = directory.file("effects")
        try FileManager.default.createDirectory(atPath: effects, withIntermediateDirectories: true)
        chmod(effects, 0o777)
        return effects
    }

    /// The one line of a failed command's stderr.
    func errorLine(_ result: ProcessResult) -> String {
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "expected one line, got: \(result.stderr)")
        return lines.first.map(String.init) ?? ""
    }

    @Test func badTLSFilesStopServeBeforeAnythingStarts() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        let (certificate, key) = try await Self.makeCertificate(in: directory)
        let (_, otherKey) = try await Self.makeCertificate(in: directory, name: "other")
        let data = directory.file("data")
        let missing = directory.file("missing.pem")
        let cases: [([String], String)] = [
            (["--tls-cert", missing, "--tls-key", key], "cannot read --tls-cert \(missing): No such file or directory"),
            (["--tls-cert", certificate, "--tls-key", missing], "cannot read --tls-key \(missing): No such file or directory"),
            (["--tls-cert", key, "--tls-key", key], "--tls-cert \(key) holds no PEM certificate"),
            (["--tls-cert", certificate, "--tls-key", otherKey], "--tls-key \(otherKey) does not belong to the certificate in --tls-cert \(certificate)"),
            (["--tls-cert", certificate], "--tls-cert needs --tls-key"),
            (["--tls-key", key], "--tls-key needs --tls-cert"),
            (["--tls-cert", certificate, "--tls-key", key, "--insecure-http"], "--insecure-http contradicts --tls-cert/--tls-key"),
        ]
        for (arguments, message) in cases {
            let result = try await run(binary, ["serve", "--data-dir", data, "--listen", "127.0.0.1:0"] + arguments)
            #expect(result.status != 0)
            #expect(errorLine(result).contains(message), "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty, "nothing was served: \(result.stdout)")
            // Refused before the data directory (and so the engine) was touched.
            #expect(!FileManager.default.fileExists(atPath: data))
        }
    }

    /// A hangup (the terminal that started the daemon closed, `kill -HUP`) ends it as SIGTERM does:
    /// gracefully, exit status 0, its lock released for the next start. Until 2026-12-07 the signal's
    /// default action killed it on the spot, without a line in the log.
    @Test func aHangupShutsTheDaemonDownGracefully() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let data = directory.file("data")
        let daemon = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", "127.0.0.1:0"])
        let ended = try await daemon.end(by: SIGHUP)
        #expect(ended == .exited(0), "\(daemon.diagnosis)")
        // The next daemon over the same directory starts (and is stopped as usual).
        let next = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", "127.0.0.1:0"])
        #expect(await next.stop() == 0)
    }

    /// `job wait` outlives a restart of the daemon (an upgrade, a crash): it says the daemon does not
    /// answer, retries, says when it answers again, and ends as the job does.
    @Test func jobWaitRidesOutADaemonRestart() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let data = directory.file("data")
        let first = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", "127.0.0.1:0"])
        let address = String(first.endpoint.dropFirst("http://".count))
        let environment = ["BOOKEND_ENDPOINT": first.endpoint, "BOOKEND_KEY_FILE": data + "/account.key"]
        // The task runs until the test says `go` (at most 5 min, so that a machine slowed by the whole suite does not end it first), so the job ends only after the restart.
        let go = directory.file("go")
        let script = "i=0; while [ ! -e \(go) ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done"
        try await createJobOfOneNodePool(tasks: [["--id", "t", "--command-line", "/bin/sh -c '\(script)'"]], environment: environment, home: directory.path)
        let log = directory.file("wait.log")
        let waiter = try ChildProcess(binary, ["job", "wait", "j", "--timeout", "120"],
            environment: ["PATH": "/usr/bin:/bin", "HOME": directory.path].merging(environment) { $1 }, output: .file(log))
        func logged(_ text: String) async throws -> Bool {
            for _ in 0..<600 {
                if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(text) { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }
        #expect(try await logged("0/1 completed"), "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(await first.stop() == 0)
        #expect(try await logged("the daemon does not answer"))
        FileManager.default.createFile(atPath: go, contents: nil)
        let second = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", address])
        let ended = try await onOwnThread { waiter.waitUntilExit() }
        #expect(await second.stop() == 0)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(ended == .exited(0), "\(output)")
        #expect(output.contains("the daemon answers again"), "\(output)")
        #expect(output.contains("1/1 completed"), "\(output)")
    }

    /// Port 0 is a port above the kernel's ephemeral range, which no outgoing connection is given: the
    /// server binds it only after the engine has opened, and a port the kernel picked from that range
    /// was taken in between by a connection of the busy machine (a CI run failed so).
    @Test func portZeroIsAPortNoOutgoingConnectionCanTake() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let range = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
            .split(whereSeparator: { $0 == "\t" || $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        try #require(range.count == 2 && range[1] < 65_535, "the ephemeral range leaves no port above it: \(range)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let daemon = try await Daemon.start(binary: binary, arguments: [
            "--data-dir", directory.file("data"), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        try await withCleanup({ _ = await daemon.stop() }) {
            let port = try #require(daemon.endpoint.split(separator: ":").last.flatMap { Int($0) })
            #expect(port > range[1], "\(daemon.endpoint) is in the ephemeral range \(range)")
            var metricsLine: Substring?
            for _ in 0..<200 where metricsLine == nil {
                metricsLine = daemon.diagnosis.split(separator: "\n").first { $0.hasPrefix("Metrics:") }
                if metricsLine == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let metrics = try #require(metricsLine, "\(daemon.diagnosis)")
            let metricsPort = try #require(metrics.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) })
            #expect(metricsPort > range[1], "\(metrics)")
        }
    }

    /// A port another daemon holds: one line naming the address, a non-zero exit.
    @Test func aPortInUseIsNamedInOneLine() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let first = try await Daemon.start(binary: binary, arguments: ["--data-dir", directory.file("one"), "--listen", "127.0.0.1:0"])
        let port = try #require(first.endpoint.split(separator: ":").last.map(String.init))
        let second = try await run(binary, ["serve", "--data-dir", directory.file("two"), "--listen", "127.0.0.1:\(port)"])
        #expect(await first.stop() == 0)
        #expect(second.status != 0)
        #expect(errorLine(second) == "Error: cannot listen on 127.0.0.1:\(port): the address is already in use (another bookend serve, or another program, listens there); pick another --listen",
            "\(second.stderr)")
    }

    /// A key file written with the usual umask (0644) let a non-admin task read the key, sign a task
    /// with admin elevation and run it as root. As root the daemon takes the file's "other" bits away
    /// before anything runs; a real task then cannot read it.
    @Test func aKeyFileEveryAccountCanReadIsKeptFromTasks() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let keyFile = directory.file("shared.key")
        try Data((Data(repeating: 7, count: 32).base64EncodedString() + "\n").utf8).write(to: URL(fileURLWithPath: keyFile))
        chmod(keyFile, 0o644)
        let data = directory.file("data")
        let daemon = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", "127.0.0.1:0", "--key-file", keyFile])
        try await withCleanup({ _ = await daemon.stop() }) {
            var info = stat()
            #expect(stat(keyFile, &info) == 0)
            #expect(info.st_mode & 0o777 == (geteuid() == 0 ? 0o640 : 0o644), "as root only the others' bits go; otherwise tasks are the daemon's own account")
            guard geteuid() == 0 else { return }
            let environment = ["BOOKEND_ENDPOINT": daemon.endpoint, "BOOKEND_KEY_FILE": keyFile]
            let effects = try Self.sideEffects(in: directory)
            let steal = "/bin/sh -c 'cat \(keyFile) >> \(effects)/out 2>&1; echo status=$? >> \(effects)/out'"
            try await createJobOfOneNodePool(tasks: [["--id", "steal", "--command-line", steal]], environment: environment, home: directory.path)
            let waited = try await cli(["job", "wait", "j", "--timeout", "120"], environment: environment, home: directory.path)
            #expect(waited.status == 0, "\(waited.stdout) \(waited.stderr)")
            let seen = (try? String(contentsOfFile: effects + "/out", encoding: .utf8)) ?? ""
            #expect(seen.contains("Permission denied") && seen.contains("status=1"), "\(seen)")
            #expect(!seen.contains(Data(repeating: 7, count: 32).base64EncodedString()))
        }
    }

    /// Anyone who can reach the port could fill the daemon's descriptor table with idle connections.
    /// A task that ended meanwhile had its exit file unreadable ("Too many open files") and was taken
    /// for a lost process and run again, a launch failed, and in one run in ten under load the daemon
    /// died (SIGILL, nothing logged). Now the listener stops at its cap (11 connections under a limit
    /// of 200) and the rest wait in the kernel's backlog: the engine keeps its descriptors, each task
    /// runs once, and the daemon is still there when the flood ends.
    @Test func aFloodOfIdleConnectionsLeavesTheEngineItsDescriptors() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let data = directory.file("data")
        let effects = try Self.sideEffects(in: directory)
        let daemon = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", "127.0.0.1:0", "--log-level", "info"], fileLimit: 200)
        try await withCleanup({ _ = await daemon.stop() }) {
            let environment = ["BOOKEND_ENDPOINT": daemon.endpoint, "BOOKEND_KEY_FILE": data + "/account.key"]
            let gate = effects + "/go"
            let block = "/bin/sh -c 'echo run >> \(effects)/block; i=0; while [ ! -e \(gate) ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done'"
            try await createJobOfOneNodePool(tasks: [
                ["--id", "block", "--command-line", block],
                ["--id", "victim", "--command-line", "/bin/sh -c 'echo run >> \(effects)/victim'"],
            ], environment: environment, home: directory.path)
            for _ in 0..<600 where EngineHarness.lines(effects + "/block").isEmpty { try await Task.sleep(for: .milliseconds(100)) }
            #expect(EngineHarness.lines(effects + "/block") == ["run"])
            // Idle connections until the daemon has no descriptor left (it accepts what it can).
            let port = try #require(daemon.endpoint.split(separator: ":").last.flatMap { Int($0) })
            var sockets: [Int32] = []
            defer { for socket in sockets { close(socket) } }
            // More than the limit, fewer than the listener's backlog (256): each connect completes.
            for _ in 0..<240 {
                if let fd = try? connectLoopback(port: port) { sockets.append(fd) }
            }
            #expect(sockets.count == 240)
            try await Task.sleep(for: .seconds(1))
            // The blocking task ends during the flood; the victim is dispatched then.
            FileManager.default.createFile(atPath: gate, contents: nil)
            try await Task.sleep(for: .seconds(3))
            for socket in sockets { close(socket) }
            sockets = []
            let waited = try await cli(["job", "wait", "j", "--timeout", "120"], environment: environment, home: directory.path)
            #expect(waited.status == 0, "\(waited.stdout) \(waited.stderr)\n\(daemon.diagnosis)")
            #expect(EngineHarness.lines(effects + "/victim") == ["run"])
            #expect(EngineHarness.lines(effects + "/block") == ["run"], "the blocking task ran once")
            #expect(daemon.process.isRunning, "\(daemon.diagnosis)")
            // The listener stopped at its cap (11 under this limit) instead of taking every descriptor.
            #expect(daemon.diagnosis.contains("the most it holds (--max-connections)"), "\(daemon.diagnosis)")
        }
    }

    /// `--max-connections` beyond what the descriptor limit allows is refused before anything starts,
    /// naming the largest value that fits.
    @Test func aConnectionCapTheDescriptorLimitCannotHoldIsRefused() async throws {
        let directory = try TemporaryDirectory()
        let ran = try await run("/bin/sh", ["-c", "ulimit -n 400 && exec \"$0\" \"$@\"", binary, "serve", "--data-dir", directory.file("data"),
                                            "--listen", "127.0.0.1:0", "--max-connections", "1000"])
        #expect(ran.status != 0)
        #expect(ran.stderr.contains("--max-connections 1000 is more than the descriptor limit allows (400") && ran.stderr.contains("at most 86"), "\(ran.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("data")), "nothing was created")
    }

    /// `bookend.db-wal` removed under a running daemon: SQLite went on writing to the removed file, and
    /// after a kill -9 the daemon started on a database without the jobs it had acknowledged. Now the
    /// engine notices and copies every commit into the database: both jobs are there after the crash.
    @Test(arguments: ["removed", "replaced"])
    func jobsAcknowledgedAfterTheLogWasRemovedSurviveACrash(_ how: String) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let data = directory.file("data")
        let first = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", "127.0.0.1:0"])
        let environment = ["BOOKEND_ENDPOINT": first.endpoint, "BOOKEND_KEY_FILE": data + "/account.key"]
        #expect(try await cli(["job", "create", "--id", "before", "--pool-id", "p"], environment: environment, home: directory.path).status == 0)
        let log = data + "/bookend.db-wal"
        if how == "removed" {
            #expect(unlink(log) == 0)
        } else {
            // A copy moved over it: the path never stops naming a file, but no longer SQLite's.
            try FileManager.default.copyItem(atPath: log, toPath: log + ".copy")
            #expect(rename(log + ".copy", log) == 0)
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await cli(["job", "create", "--id", "after", "--pool-id", "p"], environment: environment, home: directory.path).status == 0)
        kill(first.process.pid, SIGKILL)
        _ = await first.stop()
        let second = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", "127.0.0.1:0"])
        try await withCleanup({ _ = await second.stop() }) {
            let again = ["BOOKEND_ENDPOINT": second.endpoint, "BOOKEND_KEY_FILE": data + "/account.key"]
            let listed = try await cli(["job", "list"], environment: again, home: directory.path)
            #expect(listed.status == 0, "\(listed.stderr)")
            #expect(listed.stdout.contains("before") && listed.stdout.contains("after"), "\(listed.stdout)")
        }
    }

    /// A terminate whose daemon crashed right after its SIGTERM: the restart collects the task's exit,
    /// and what the command had put in a process group of its own is ended then too (it outlived the
    /// crash, because only the pass ended a session).
    @Test func aTerminateInterruptedByACrashStillEndsTheWholeSession() async throws {
        let armed = try await daemon(crashingAt: "kill.after-signal")
        let (directory, data, first, address, environment) = (armed.directory, armed.data, armed.daemon, armed.address, armed.environment)
        let effects = try Self.sideEffects(in: directory)
        let go = effects + "/go"
        let script = effects + "/task.sh"
        try """
            perl -e 'setpgrp(0, 0); exec @ARGV' sh -c 'i=0; while [ ! -e \(go) ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done; echo leftover >> \(effects)/runs' &
            echo start >> \(effects)/runs
            wait
            """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        defer { FileManager.default.createFile(atPath: go, contents: nil) }
        try await createJobOfOneNodePool(tasks: [["--id", "t", "--command-line", "/bin/sh \(script)"]], environment: environment, home: directory.path)
        for _ in 0..<600 where EngineHarness.lines(effects + "/runs").isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        #expect(EngineHarness.lines(effects + "/runs") == ["start"])
        // The daemon dies right after the SIGTERM to the command's group.
        _ = try await cli(["task", "terminate", "j", "t"], environment: environment, home: directory.path)
        _ = await first.stop()
        let second = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", address])
        try await withCleanup({ _ = await second.stop() }) {
            let waited = try await cli(["job", "wait", "j", "--timeout", "120"], environment: environment, home: directory.path)
            #expect(waited.status == 3, "the task ended as failed: \(waited.stdout) \(waited.stderr)")
            // Were the process in its own group still alive, it would write its line within 0.1 s of `go`.
            FileManager.default.createFile(atPath: go, contents: nil)
            try await Task.sleep(for: .milliseconds(1000))
            #expect(EngineHarness.lines(effects + "/runs") == ["start"])
        }
    }

    /// A task deletion whose daemon died before the deletion was committed: the deletion did not
    /// happen (it was never answered), so the task's run goes on, once. The process used to be killed
    /// before the commit: the task was still stored after the restart, its run was taken for lost,
    /// and it ran again.
    @Test func aTaskDeletionThatNeverCommittedLeavesItsRunAlone() async throws {
        let armed = try await daemon(crashingAt: "task-delete.before-commit")
        let (directory, data, first, address, environment) = (armed.directory, armed.data, armed.daemon, armed.address, armed.environment)
        let effects = try Self.sideEffects(in: directory)
        let go = effects + "/go"
        defer { FileManager.default.createFile(atPath: go, contents: nil) }
        let command = "/bin/sh -c 'echo start >> \(effects)/runs; i=0; while [ ! -e \(go) ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done'"
        try await createJobOfOneNodePool(tasks: [["--id", "t", "--command-line", command]], environment: environment, home: directory.path)
        for _ in 0..<600 where EngineHarness.lines(effects + "/runs").isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        #expect(EngineHarness.lines(effects + "/runs") == ["start"])
        let deleted = try await cli(["task", "delete", "j", "t"], environment: environment, home: directory.path)
        #expect(deleted.status != 0, "the daemon died before answering")
        _ = await first.stop()
        let second = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", address])
        try await withCleanup({ _ = await second.stop() }) {
            try await Task.sleep(for: .seconds(1))
            FileManager.default.createFile(atPath: go, contents: nil)
            let waited = try await cli(["job", "wait", "j", "--timeout", "120"], environment: environment, home: directory.path)
            #expect(waited.status == 0, "the task's first run completed: \(waited.stdout) \(waited.stderr)")
            #expect(EngineHarness.lines(effects + "/runs") == ["start"], "it ran once")
        }
    }

    /// A task deletion whose daemon died after the commit and before the task's folder was removed:
    /// the folder used to stay on disk until its job was deleted. The deletion recorded it, and the
    /// next start removes it before dispatching anything; a task added again under the same id then
    /// runs in a fresh folder.
    @Test func aTaskFolderLeftByACrashAfterItsDeletionIsRemovedAtTheNextStart() async throws {
        let armed = try await daemon(crashingAt: "after-commit:task.deleted")
        let (directory, data, first, address, environment) = (armed.directory, armed.data, armed.daemon, armed.address, armed.environment)
        try await createJobOfOneNodePool(tasks: [["--id", "t", "--command-line", "/bin/sh -c 'echo first > left.txt'"]],
            environment: environment, home: directory.path)
        func folder() throws -> String? {
            let nodes = data + "/nodes"
            return try FileManager.default.subpathsOfDirectory(atPath: nodes).first { $0.hasSuffix("/workitems/j/job-1/t/wd/left.txt") }
                .map { nodes + "/" + $0 }
        }
        var left: String?
        for _ in 0..<600 where left == nil {
            left = try folder()
            if left == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let file = try #require(left, "the task's file")
        for _ in 0..<600 {
            let shown = try await cli(["task", "show", "j", "t", "--output", "json"], environment: environment, home: directory.path)
            if shown.stdout.contains(#""state" : "completed""#) || shown.stdout.contains(#""state":"completed""#) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let deleted = try await cli(["task", "delete", "j", "t"], environment: environment, home: directory.path)
        #expect(deleted.status != 0, "the daemon died before answering")
        _ = await first.stop()
        #expect(FileManager.default.fileExists(atPath: file), "the crash came before the folder's removal")

        let second = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", address])
        try await withCleanup({ _ = await second.stop() }) {
            #expect(!FileManager.default.fileExists(atPath: file), "removed by the start")
            let rows = try await cli(["sql", "--data-dir", data, "SELECT count(*) AS n FROM task_folder_removal"], home: directory.path)
            #expect(rows.stdout.split(separator: "\n").last == "0", "\(rows.stdout) \(rows.stderr)")
            let again = try await cli(["task", "add", "j", "--id", "t", "--command-line", "/bin/sh -c 'ls; echo second > new.txt'"],
                environment: environment, home: directory.path)
            #expect(again.status == 0, "\(again.stderr)")
            for _ in 0..<600 where !FileManager.default.fileExists(atPath: (file as NSString).deletingLastPathComponent + "/new.txt") {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(!FileManager.default.fileExists(atPath: file), "the new task's folder holds nothing of the deleted one's")
            // Deleted again without a crash: the folder goes, and the pass after forgets its row.
            #expect(try await cli(["task", "delete", "j", "t"], environment: environment, home: directory.path).status == 0)
            #expect(!FileManager.default.fileExists(atPath: (file as NSString).deletingLastPathComponent))
            var count = ""
            for _ in 0..<100 {
                count = String(try await cli(["sql", "--data-dir", data, "SELECT count(*) AS n FROM task_folder_removal"], home: directory.path)
                    .stdout.split(separator: "\n").last ?? "")
                if count == "0" { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(count == "0")
        }
    }

    /// The same crash with the task still running: the deletion committed, the daemon died before
    /// signalling the process, and no row names that process any more. It used to run on after the
    /// restart (a `sleep 300` for its 300 s) with nothing left to end it; the start now ends it, from
    /// the status folder its shim left.
    @Test func aDeletedTasksProcessLeftByACrashIsEndedAtTheNextStart() async throws {
        let armed = try await daemon(crashingAt: "after-commit:task.deleted")
        let (directory, data, first, address, environment) = (armed.directory, armed.data, armed.daemon, armed.address, armed.environment)
        let effects = try Self.sideEffects(in: directory)
        try await createJobOfOneNodePool(tasks: [["--id", "t", "--command-line", "/bin/sh -c 'echo $$ > \(effects)/pid.tmp; mv \(effects)/pid.tmp \(effects)/pid; exec sleep 300'"]],
            environment: environment, home: directory.path)
        var written: String?
        for _ in 0..<600 where written == nil {
            written = try? String(contentsOfFile: effects + "/pid", encoding: .utf8)
            if written == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let pid = try #require(written.flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }, "the task's pid")
        defer { kill(pid, SIGKILL) }
        /// Running: in /proc and not a zombie.
        func running() -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.range(of: ")", options: .backwards) else { return false }
            return !stat[close.upperBound...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
        }
        #expect(running())
        let deleted = try await cli(["task", "delete", "j", "t"], environment: environment, home: directory.path)
        #expect(deleted.status != 0, "the daemon died before answering")
        _ = await first.stop()
        #expect(running(), "the crash came before the process was signalled")

        let second = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", address])
        try await withCleanup({ _ = await second.stop() }) {
            for _ in 0..<100 where running() { try await Task.sleep(for: .milliseconds(100)) }
            #expect(!running(), "the deleted task's process was ended by the start")
            let jobs = try await cli(["task", "list", "j", "--output", "json"], environment: environment, home: directory.path)
            #expect(jobs.status == 0 && !jobs.stdout.contains(#""id" : "t""#), "\(jobs.stdout)")
        }
    }

    /// A task whose wall clock ran out while the daemon was down, and whose command then ended on its
    /// own, was recorded as a success with exit code 0: nobody had been there to end it, and the exit
    /// file was taken as it was. Now the exit file's time says it ended after its wall clock: the task
    /// failed with `MaxWallClockTimeExpiry`, as it would have with the daemon up.
    @Test func aWallClockThatRanOutWhileTheDaemonWasDownStillCounts() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let data = directory.file("data")
        let effects = try Self.sideEffects(in: directory)
        let first = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", "127.0.0.1:0"])
        let address = String(first.endpoint.dropFirst("http://".count))
        let environment = ["BOOKEND_ENDPOINT": first.endpoint, "BOOKEND_KEY_FILE": data + "/account.key"]
        let spec = directory.file("task.json")
        try """
            {"id": "t", "commandLine": "/bin/sh -c 'echo start >> \(effects)/runs; sleep 8'", "constraints": {"maxWallClockTime": "PT5S"}}
            """.write(toFile: spec, atomically: true, encoding: .utf8)
        try await createJobOfOneNodePool(tasks: [["--json", spec]], environment: environment, home: directory.path)
        for _ in 0..<600 where EngineHarness.lines(effects + "/runs").isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        // The wall clock leaves seconds between the task's first line and the kill: with one second, a
        // loaded machine let the daemon end the task itself before `echo` ran, which is not the case here.
        try #require(EngineHarness.lines(effects + "/runs") == ["start"], "the task started before the daemon was killed")
        kill(first.process.pid, SIGKILL)
        _ = await first.stop()
        // The wall clock runs out, then the command ends, all while no daemon runs.
        try await Task.sleep(for: .seconds(9))
        let second = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", address])
        try await withCleanup({ _ = await second.stop() }) {
            let waited = try await cli(["job", "wait", "j", "--timeout", "120"], environment: environment, home: directory.path)
            #expect(waited.status == 3, "the task failed: \(waited.stdout) \(waited.stderr)")
            let shown = try await cli(["task", "show", "j", "t", "--output", "json"], environment: environment, home: directory.path)
            #expect(shown.stdout.contains("MaxWallClockTimeExpiry"), "\(shown.stdout)")
            #expect(EngineHarness.lines(effects + "/runs") == ["start"])
        }
    }

    /// Bad flag values are refused before anything starts, each in one line with serve's own usage
    /// and exit status 64: an unknown log level started the daemon at info, a negative amount was
    /// taken for a missing value, and a bad --metrics-listen named --listen.
    @Test func badServeFlagValuesAreNamedBeforeAnythingStarts() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        let data = directory.file("data")
        for (flags, line) in [
            (["--log-level", "loud"], "Error: --log-level must be one of trace, debug, info, notice, warning, error, critical, not loud"),
            (["--min-free-disk", "-5G"], "Error: '-5G' is not an amount of free space such as 10% or 5G (K, M, G, T are powers of 1024; a bare number is bytes)"),
            (["--task-process-limit", "-5"], "Error: --task-process-limit must be a number of processes (at least 1) or none, not -5"),
            (["--task-process-limit", "0"], "Error: --task-process-limit must be a number of processes (at least 1) or none, not 0"),
            (["--listen", "127.0.0.1:99999"], "Error: --listen must be HOST:PORT (a port from 0 to 65535), e.g. 127.0.0.1:8080"),
            (["--listen", "8080"], "Error: --listen must be HOST:PORT, e.g. 127.0.0.1:8080"),
            (["--listen", "127.0.0.1:0", "--metrics-listen", "bogus"], "Error: --metrics-listen must be HOST:PORT, e.g. 127.0.0.1:8080"),
        ] {
            let refused = try await run(binary, ["serve", "--data-dir", data] + flags)
            #expect(refused.status == 64, "\(flags): \(refused.stderr)")
            #expect(refused.stderr.split(separator: "\n").first.map(String.init) == line)
            #expect(refused.stderr.contains("Usage: bookend serve"))
        }
        #expect(!FileManager.default.fileExists(atPath: data + "/bookend.db"), "nothing was started")
    }

    @Test func plainHTTPOffLoopbackNeedsInsecureHTTP() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let keyFile = directory.file("account.key")
        try Data((Data(repeating: 1, count: 32).base64EncodedString() + "\n").utf8).write(to: URL(fileURLWithPath: keyFile))
        let data = directory.file("data")

        let refused = try await run(binary, ["serve", "--data-dir", data, "--listen", "0.0.0.0:0", "--key-file", keyFile])
        #expect(refused.status != 0)
        #expect(errorLine(refused).contains(
            "refusing plain HTTP on 0.0.0.0: requests and bodies would cross the network unencrypted; pass --tls-cert PEM --tls-key PEM, or --insecure-http to accept that"))
        #expect(!FileManager.default.fileExists(atPath: data))

        let insecure = try await Daemon.start(binary: binary, arguments: ["--data-dir", data, "--listen", "0.0.0.0:0", "--key-file", keyFile, "--insecure-http"])
        #expect(insecure.endpoint.hasPrefix("http://0.0.0.0:"))
        #expect(await insecure.stop() == 0)

        let (certificate, key) = try await Self.makeCertificate(in: directory)
        let secure = try await Daemon.start(binary: binary, arguments: [
            "--data-dir", data, "--listen", "0.0.0.0:0", "--key-file", keyFile, "--tls-cert", certificate, "--tls-key", key])
        #expect(secure.endpoint.hasPrefix("https://0.0.0.0:"))
        #expect(await secure.stop() == 0)
    }

    @Test func theCLIUsesAnHTTPSDaemonWhoseCertificateItIsGiven() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let directory = try TemporaryDirectory()
        // Under root, tasks run as an unprivileged account that must reach their node folders.
        chmod(directory.path, 0o755)
        let (certificate, key) = try await Self.makeCertificate(in: directory)
        let (otherCertificate, _) = try await Self.makeCertificate(in: directory, name: "other")
        let data = directory.file("data")
        let daemon = try await Daemon.start(binary: binary, arguments: [
            "--data-dir", data, "--listen", "127.0.0.1:0", "--tls-cert", certificate, "--tls-key", key])
        try await withCleanup({ _ = await daemon.stop() }) {
            #expect(daemon.endpoint.hasPrefix("https://127.0.0.1:"))
            let home = directory.path
            let client = ["--endpoint", daemon.endpoint, "--key-file", data + "/account.key"]

            let pool = try await cli(["pool", "create", "--id", "tlspool", "--nodes", "1"] + client + ["--ca-cert", certificate], home: home)
            #expect(pool.status == 0, "\(pool.stderr)")
            // The CA file can come from the environment too.
            let trusted = ["BOOKEND_CA_CERT": certificate]
            #expect(try await cli(["job", "create", "--id", "tlsjob", "--pool", "tlspool"] + client, environment: trusted, home: home).status == 0)
            let add = try await cli(["task", "add", "tlsjob", "--id", "url", "--command", "/bin/sh -c 'echo $AZ_BATCH_ACCOUNT_URL'"] + client,
                              environment: trusted, home: home)
            #expect(add.status == 0, "\(add.stderr)")
            let wait = try await cli(["job", "wait", "tlsjob", "--timeout", "120"] + client, environment: trusted, home: home)
            #expect(wait.status == 0, "\(wait.stdout) \(wait.stderr)")
            // Tasks are told the https URL of the account.
            let stdout = try await cli(["task", "file", "tlsjob", "url", "stdout.txt"] + client, environment: trusted, home: home)
            #expect(stdout.stdout == daemon.endpoint + "/\n", "\(stdout.stderr)")

            // Without the CA, or with the wrong one, the CLI refuses the daemon in one line.
            let untrusted = try await cli(["pool", "list"] + client, home: home)
            #expect(untrusted.status != 0)
            #expect(errorLine(untrusted).contains("the server's TLS certificate is not trusted (pass --ca-cert PEM (or set BOOKEND_CA_CERT)"))
            let wrong = try await cli(["pool", "list"] + client + ["--ca-cert", otherCertificate], home: home)
            #expect(wrong.status != 0)
            #expect(errorLine(wrong).contains("the server's TLS certificate is not trusted (it is not signed by a CA in \(otherCertificate))"))
            // A CA file makes no sense for plain HTTP: say so rather than silently sending in clear.
            let plain = try await cli(["pool", "list", "--endpoint", "http://127.0.0.1:1", "--key-file", data + "/account.key", "--ca-cert", certificate], home: home)
            #expect(plain.status != 0)
            #expect(errorLine(plain).contains("--ca-cert is for https endpoints"))
        }
    }
}
