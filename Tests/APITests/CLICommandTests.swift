import BatchModels
import Foundation
import TestSupport
import Testing

/// The real `bookend` binary against a live daemon, one test per command group: every subcommand,
/// new flag names and the old ones they replaced, and bad input as one line with a non-zero exit.
@Suite struct CLICommandTests {
    func bookend(_ server: LiveServer, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> BookendCLI.Ran {
        try await BookendCLI.run(server, arguments)
    }

    /// Runs a command that must succeed and returns its stdout.
    func ok(_ server: LiveServer, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let ran = try await BookendCLI.run(server, arguments)
        #expect(ran.status == 0, "bookend \(arguments.joined(separator: " ")): \(ran.stdout)\(ran.stderr)", sourceLocation: sourceLocation)
        return ran.stdout
    }

    func decode<T: Decodable>(_ type: T.Type, _ stdout: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(stdout.utf8))
    }

    func job(_ server: LiveServer, _ id: String) async throws -> BatchJob {
        try decode(BatchJob.self, try await server.send(.get, "/jobs/\(id)").text)
    }

    @Test func poolAndNodeCommands() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: BookendCLI.binary), "build bookend first (swift build)")
        try await withServer { server in
            // The old short flags still work.
            #expect(try await ok(server, ["pool", "create", "--id", "cp", "--nodes", "1", "--slots", "2", "--fill", "pack"]) == "created pool cp\n")
            let created = try decode(BatchPool.self, try await ok(server, ["pool", "show", "cp", "--output", "json"]))
            #expect(created.targetDedicatedNodes == 1)
            #expect(created.taskSlotsPerNode == 2)
            #expect(created.taskSchedulingPolicy?.nodeFillType == .pack)
            // The names of the properties they set.
            #expect(try await ok(server, ["pool", "create", "--id", "cq", "--target-dedicated-nodes", "0", "--task-slots-per-node", "3",
                                          "--node-fill-type", "spread", "--vm-size", "small", "--display-name", "second"]) == "created pool cq\n")
            let second = try decode(BatchPool.self, try await ok(server, ["pool", "show", "cq", "--output", "json"]))
            #expect(second.taskSlotsPerNode == 3)
            #expect(second.vmSize == "small")
            #expect(second.displayName == "second")
            let pools = try decode([BatchPool].self, try await ok(server, ["pool", "list", "--output", "json"]))
            #expect(pools.map(\.id).sorted() == ["cp", "cq"])
            let table = try await ok(server, ["pool", "list"]).split(separator: "\n")
            #expect(table.first?.hasPrefix("ID") == true)
            #expect(table.count == 3)

            #expect(try await eventually(60) {
                try decode([BatchNode].self, try await ok(server, ["node", "list", "cp", "--output", "json"])).first?.state == .idle
            })
            let node = try #require(try decode([BatchNode].self, try await ok(server, ["node", "list", "cp", "--output", "json"])).first)
            #expect(try await ok(server, ["node", "show", "cp", node.id]).contains(node.id))
            #expect(try await ok(server, ["node", "reboot", "cp", node.id, "--option", "requeue"]) == "rebooting node \(node.id)\n")
            #expect(try await eventually(60) {
                try decode(BatchNode.self, try await ok(server, ["node", "show", "cp", node.id, "--output", "json"])).state == .idle
            })
            #expect(try await ok(server, ["node", "reboot", "cp", node.id, "--node-reboot-option", "taskcompletion"]) == "rebooting node \(node.id)\n")

            #expect(try await ok(server, ["pool", "resize", "cq", "--nodes", "1"]) == "resizing pool cq to 1 nodes\n")
            #expect(try await eventually(60) {
                try decode(BatchPool.self, try await ok(server, ["pool", "show", "cq", "--output", "json"])).currentDedicatedNodes == 1
            })
            #expect(try await ok(server, ["pool", "resize", "cq", "--target-dedicated-nodes", "0"]) == "resizing pool cq to 0 nodes\n")
            #expect(try await ok(server, ["pool", "delete", "cq"]) == "deleting pool cq\n")
        }
    }

    @Test func jobAndTaskCommands() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: BookendCLI.binary), "build bookend first (swift build)")
        try await withServer { server in
            _ = try await ok(server, ["pool", "create", "--id", "jp", "--target-dedicated-nodes", "1", "--task-slots-per-node", "2"])
            // New names for the pool and the preparation task, the old one for release.
            #expect(try await ok(server, ["job", "create", "--id", "cj", "--pool-id", "jp", "--job-preparation-task", "/bin/true",
                                          "--release", "/bin/true", "--priority", "7", "--max-task-retry-count", "0"]) == "created job cj\n")
            let created = try await job(server, "cj")
            #expect(created.priority == 7)
            #expect(created.jobReleaseTask?.commandLine == "/bin/true")
            #expect(created.constraints?.maxTaskRetryCount == 0)

            #expect(try await ok(server, ["task", "add", "cj", "--id", "t1", "--command", "/bin/echo hi"]) == "added 1 of 1 tasks to job cj\n")
            // Azure's CLI says `task create`, the REST API "add" for all three: both names work.
            #expect(try await ok(server, ["task", "create", "cj", "--id", "t2", "--command-line", "/bin/true"]) == "added 1 of 1 tasks to job cj\n")
            #expect(try await ok(server, ["job", "add", "--id", "alias", "--pool-id", "jp"]) == "created job alias\n")
            #expect(try await ok(server, ["pool", "add", "--id", "aliased", "--target-dedicated-nodes", "0"]) == "created pool aliased\n")
            // Many from JSON; the duplicate is refused with one line and exit status 1.
            let file = NSTemporaryDirectory() + "tasks-\(UUID().uuidString).json"
            try Data(#"[{"id":"f","commandLine":"/bin/sh -c 'exit 2'"},{"id":"t1","commandLine":"/bin/true"}]"#.utf8).write(to: URL(fileURLWithPath: file))
            defer { try? FileManager.default.removeItem(atPath: file) }
            let many = try await bookend(server, ["task", "add", "cj", "--json", file])
            #expect(many.status == 1)
            #expect(many.stdout == "added 1 of 2 tasks to job cj\n")
            #expect(many.errorLines.count == 1)
            #expect(many.errorLines.first?.hasPrefix("Error: task t1: TaskExists") == true, "\(many.stderr)")

            // One task object on stdin.
            let piped = try await BookendCLI.run(server, ["task", "add", "cj", "--json", "-"], stdin: #"{"id":"piped","commandLine":"/bin/true","requiredSlots":2}"#)
            #expect(piped.status == 0 && piped.stdout == "added 1 of 1 tasks to job cj\n", "\(piped.stdout)\(piped.stderr)")
            let waited = try await bookend(server, ["job", "wait", "cj", "--timeout", "120"])
            #expect(waited.status == 3, "some failed: \(waited.stdout)\(waited.stderr)")
            let tasks = try decode([BatchTask].self, try await ok(server, ["task", "list", "cj", "--output", "json"]))
            #expect(tasks.map(\.id).sorted() == ["f", "piped", "t1", "t2"])
            #expect(tasks.first { $0.id == "piped" }?.requiredSlots == 2)
            #expect(tasks.first { $0.id == "f" }?.executionInfo?.exitCode == 2)
            let failed = try await ok(server, ["task", "list", "cj", "--filter", "executionInfo/result eq 'failure'"]).split(separator: "\n")
            #expect(failed.count == 2 && failed[1].hasPrefix("f "), "\(failed)")
            #expect(try await ok(server, ["task", "show", "cj", "t1"]).contains("success"))
            #expect(try await ok(server, ["task", "file", "cj", "t1"]) == "hi\n")
            // Dot segments reach the daemon and get its answer (they were squashed out of the URL after
            // signing, and the daemon answered 403); an empty path is refused with usage.
            for (path, status, message) in [(".", 1, "The path . is a directory"), ("..", 1, "The file path must not contain '..'"),
                                            ("", 64, "give the path of a file in the task's folder")] {
                let file = try await bookend(server, ["task", "file", "cj", "t1", path])
                #expect(file.status == Int32(status) && file.stderr.contains(message), "'\(path)': \(file.stderr)")
            }
            let counts = try decode(BatchTaskCountsResult.self, try await ok(server, ["job", "task-counts", "cj", "--output", "json"]))
            #expect(counts.taskCounts == BatchTaskCounts(active: 0, running: 0, completed: 4, succeeded: 3, failed: 1))

            #expect(try await ok(server, ["task", "reactivate", "cj", "f"]) == "reactivated task f\n")
            #expect(try await ok(server, ["task", "add", "cj", "--id", "long", "--command-line", "/bin/sleep 300"]) == "added 1 of 1 tasks to job cj\n")
            #expect(try await ok(server, ["task", "terminate", "cj", "long"]) == "terminated task long\n")
            #expect(try await eventually(60) {
                try decode(BatchTask.self, try await ok(server, ["task", "show", "cj", "long", "--output", "json"])).state == .completed
            })
            #expect(try await ok(server, ["task", "delete", "cj", "f"]) == "deleted task f\n")

            #expect(try await ok(server, ["job", "disable", "cj", "--tasks", "wait"]) == "disabling job cj\n")
            #expect(try await eventually(60) { try await job(server, "cj").state == .disabled })
            #expect(try await ok(server, ["job", "enable", "cj"]) == "enabling job cj\n")
            #expect(try await eventually(60) { try await job(server, "cj").state == .active })
            #expect(try await ok(server, ["job", "disable", "cj", "--disable-tasks", "requeue"]) == "disabling job cj\n")
            #expect(try await eventually(60) { try await job(server, "cj").state == .disabled })
            // A task added to a disabled job waits until someone enables the job.
            _ = try await ok(server, ["task", "add", "cj", "--id", "queued", "--command-line", "/bin/true", "--max-task-retry-count", "1"])
            let why = try await ok(server, ["job", "why", "cj"])
            #expect(why.hasPrefix("job cj is blocked (JobDisabled)"), "\(why)")
            let reason = try decode(BookendWaitReason.self, try await ok(server, ["job", "why", "cj", "t1", "--output", "json"]))
            #expect(reason.state == .notWaiting)
            #expect(try await ok(server, ["job", "enable", "cj"]) == "enabling job cj\n")

            #expect(try await ok(server, ["job", "terminate", "cj", "--reason", "done"]) == "terminating job cj\n")
            #expect(try await eventually(60) { try await job(server, "cj").state == .completed })
            let ended = try decode(BatchJob.self, try await ok(server, ["job", "show", "cj", "--output", "json"]))
            #expect(ended.executionInfo?.terminateReason == "done")
            let status = try decode([BatchJobPreparationAndReleaseTaskStatus].self,
                try await ok(server, ["job", "prep-release-status", "cj", "--output", "json"]))
            #expect(try await ok(server, ["task", "show", "cj", "queued", "--output", "json"]).contains(#""maxTaskRetryCount" : 1"#))
            #expect(status.count == 1)
            #expect(status.first?.jobReleaseTaskExecutionInfo?.result == .success)
            #expect(try await ok(server, ["job", "prep-release-status", "cj"]).split(separator: "\n").count == 2)
            // prep-release-status takes --filter like every other list.
            let released = try decode([BatchJobPreparationAndReleaseTaskStatus].self, try await ok(server,
                ["job", "prep-release-status", "cj", "--filter", "jobReleaseTaskExecutionInfo/state eq 'completed'", "--output", "json"]))
            #expect(released.map(\.nodeId) == status.map(\.nodeId))
            let running = try decode([BatchJobPreparationAndReleaseTaskStatus].self, try await ok(server,
                ["job", "prep-release-status", "cj", "--filter", "jobReleaseTaskExecutionInfo/state eq 'running'", "--output", "json"]))
            #expect(running.isEmpty)

            // Negative values as separate arguments, as `--help` writes them (-1: no limit).
            _ = try await ok(server, ["job", "create", "--id", "cn", "--pool", "jp", "--max-task-retry-count", "-1", "--priority", "-5"])
            let negative = try await job(server, "cn")
            #expect(negative.constraints?.maxTaskRetryCount == -1)
            #expect(negative.priority == -5)
            _ = try await ok(server, ["task", "add", "cn", "--id", "t", "--command-line", "/bin/true", "--max-task-retry-count", "-1"])
            _ = try await ok(server, ["job", "create", "--id", "ck", "--pool", "jp"])
            #expect(try await ok(server, ["job", "terminate", "ck", "--terminate-reason", "stop"]) == "terminating job ck\n")
            #expect(try await eventually(60) { try await job(server, "ck").executionInfo?.terminateReason == "stop" })
            let jobs = try decode([BatchJob].self, try await ok(server, ["job", "list", "--output", "json"]))
            #expect(jobs.map(\.id).sorted() == ["alias", "cj", "ck", "cn"])
            #expect(try await ok(server, ["job", "delete", "ck"]) == "deleting job ck\n")
        }
    }

    /// `task files` lists a task's folder as the API pages it; a name a task chose with an escape
    /// sequence in it reaches the terminal as text, never as the sequence.
    @Test func taskFilesAreListedAndTheirNamesCannotDriveTheTerminal() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: BookendCLI.binary), "build bookend first (swift build)")
        try await withServer { server in
            _ = try await ok(server, ["pool", "create", "--id", "fp", "--target-dedicated-nodes", "1"])
            _ = try await ok(server, ["job", "create", "--id", "fj", "--pool-id", "fp"])
            // A name with ESC [2J (clear the screen) and a bell; 1,200 more files so that the list spans pages.
            let command = #"/bin/sh -c 'mkdir sub && touch "$(printf "x\033[2Jy\007")" sub/inner && seq 1 1200 | sed s/^/n/ | xargs touch && echo made'"#
            _ = try await ok(server, ["task", "add", "fj", "--id", "ft", "--command-line", command])
            #expect(try await eventually(60) { try await ok(server, ["task", "file", "fj", "ft"]) == "made\n" })

            let top = try await ok(server, ["task", "files", "fj", "ft"]).split(separator: "\n").map(String.init)
            #expect(top.first?.hasPrefix("NAME") == true, "\(top.prefix(3))")
            #expect(Set(top.dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }) == ["certs", "stderr.txt", "stdout.txt", "wd"])
            let table = try await bookend(server, ["task", "files", "fj", "ft", "--recursive"])
            #expect(table.status == 0, "\(table.stderr)")
            #expect(!table.stdout.utf8.contains(0x1B) && !table.stdout.utf8.contains(0x07))
            #expect(table.stdout.contains(#"wd/x\u{1B}[2Jy\u{7}"#), "\(table.stdout.prefix(400))")
            let listed = try decode([BatchNodeFile].self, try await ok(server, ["task", "files", "fj", "ft", "--recursive", "--output", "json"]))
            // certs, stderr.txt, stdout.txt, wd, the hostile name, sub, sub/inner and the 1,200.
            let expectedCount = 1_207
            #expect(listed.count == expectedCount, "\(listed.count)")
            #expect(listed.contains { $0.name == "wd/x\u{1B}[2Jy\u{7}" && $0.isDirectory == false })
            #expect(listed.contains { $0.name == "wd/sub/inner" })
            let filtered = try decode([BatchNodeFile].self, try await ok(server,
                ["task", "files", "fj", "ft", "--recursive", "--filter", "startswith(name,'wd/sub')", "--output", "json"]))
            #expect(filtered.map(\.name) == ["wd/sub", "wd/sub/inner"])
            let missing = try await bookend(server, ["task", "files", "fj", "nope"])
            #expect(missing.status == 1 && missing.errorLines.count == 1, "\(missing.stderr)")

            // The node's folder holds the task's, under workitems/.
            let node = try #require(try decode([BatchNode].self, try await ok(server, ["node", "list", "fp", "--output", "json"])).first?.id)
            let nodeTop = try decode([BatchNodeFile].self, try await ok(server, ["node", "files", "fp", node, "--output", "json"])).map(\.name)
            #expect(nodeTop.contains("shared") && nodeTop.contains("workitems"), "\(nodeTop)")
            let inNode = try decode([BatchNodeFile].self, try await ok(server,
                ["node", "files", "fp", node, "--recursive", "--filter", "startswith(name,'workitems/fj/job-1/ft/wd/sub')", "--output", "json"]))
            #expect(inNode.map(\.name) == ["workitems/fj/job-1/ft/wd/sub", "workitems/fj/job-1/ft/wd/sub/inner"])
        }
    }

    @Test func badInputIsOneLineAndANonZeroExit() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: BookendCLI.binary), "build bookend first (swift build)")
        try await withServer { server in
            let missing = try await bookend(server, ["job", "show", "nope"])
            #expect(missing.status == 1)
            #expect(missing.errorLines == ["Error: JobNotFound (HTTP 404): The job nope does not exist"], "\(missing.stderr)")

            let file = NSTemporaryDirectory() + "pool-\(UUID().uuidString).json"
            try Data(#"{"id": 3, "targetDedicatedNodes": 1}"#.utf8).write(to: URL(fileURLWithPath: file))
            defer { try? FileManager.default.removeItem(atPath: file) }
            let wrongType = try await bookend(server, ["pool", "create", "--json", file])
            #expect(wrongType.status == 1)
            #expect(wrongType.errorLines == ["Error: \(file) is not a pool: id is not a string"], "\(wrongType.stderr)")

            try Data(#"{"id": "x""#.utf8).write(to: URL(fileURLWithPath: file))
            let notJSON = try await bookend(server, ["job", "create", "--json", file])
            #expect(notJSON.status == 1)
            #expect(notJSON.errorLines == ["Error: \(file) is not valid JSON"], "\(notJSON.stderr)")

            // A file that never ends (or is far too large for a list of tasks) is refused once 64 MiB
            // are read; until 2026-12-08 it was read until memory ran out. A missing one says why.
            let endless = try await bookend(server, ["task", "add", "cj", "--json", "/dev/zero"])
            #expect(endless.status == 1)
            #expect(endless.errorLines == ["Error: /dev/zero holds more than 64 MiB of JSON; split it into several files"], "\(endless.stderr)")
            let absent = try await bookend(server, ["task", "add", "cj", "--json", file + ".absent"])
            #expect(absent.status == 1)
            #expect(absent.errorLines == ["Error: cannot read \(file).absent (No such file or directory)"], "\(absent.stderr)")

            // Nothing was created by any of them.
            #expect(try await ok(server, ["pool", "list"]) == "ID  STATE  ALLOCATION  NODES  TARGET  SLOTS\n")

            // A timeout that is no number of seconds is refused with usage; `nan` killed the wait
            // with a trap until 2026-12-07.
            for timeout in ["nan", "inf", "-1"] {
                let waited = try await bookend(server, ["job", "wait", "any", "--timeout=\(timeout)"])
                #expect(waited.status == 64, "\(timeout): \(waited.stderr)")
                #expect(waited.stderr.contains("--timeout must be a number of seconds (0 or more)"), "\(timeout): \(waited.stderr)")
            }
        }
    }
}
