import ArgumentParser
import Client
import Foundation

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Create, watch and end jobs on a running daemon.",
        subcommands: [Create.self, List.self, Show.self, Terminate.self, Delete.self, Disable.self, Enable.self, Wait.self, Why.self,
                      PrepReleaseStatus.self, TaskCounts.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a job, with optional preparation and release tasks.")
        @OptionGroup var client: ClientOptions
        @Option(help: "The job id.") var id: String?
        @Option(help: "The pool its tasks run on.") var pool: String?
        @Option(help: "The job preparation task's command line.") var prep: String?
        @Option(help: "The job release task's command line (needs --prep).") var release: String?
        @Option(help: "A JSON file (or - for stdin) with the whole job, as for Azure Batch's POST /jobs.") var json: String?

        func run() async throws {
            let api = try client.client()
            let payload: Data
            if let json {
                payload = try readJSONFile(json)
            } else {
                guard let id, let pool else { throw ValidationError("give --id and --pool, or --json") }
                var job: [String: Any] = ["id": id, "poolInfo": ["poolId": pool]]
                if let prep { job["jobPreparationTask"] = ["commandLine": prep] }
                if let release { job["jobReleaseTask"] = ["commandLine": release] }
                payload = try body(job)
            }
            _ = try await calling { try await api.send("POST", "/jobs", body: payload, expect: [201]) }
            print("created job \(jsonObject(payload)["id"] as? String ?? "")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs.")
        @OptionGroup var client: ClientOptions
        func run() async throws {
            let api = try client.client()
            let jobs = try await calling { try await listObjects(api, "/jobs") }
            if client.output == .json { return printJSON(jobs) }
            printTable(jobs, columns: [("ID", "id"), ("STATE", "state"), ("POOL", "poolInfo.poolId"), ("PRIORITY", "priority"),
                                       ("CREATED", "creationTime"), ("ENDED", "executionInfo.endTime"), ("REASON", "executionInfo.terminateReason")])
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one job.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var id: String
        func run() async throws {
            let api = try client.client()
            let response = try await calling { try await api.send("GET", "/jobs/\(seg(id))", expect: [200]) }
            let job = jsonObject(response.body)
            if client.output == .json { return printJSON(job) }
            printTable([job], columns: [("ID", "id"), ("STATE", "state"), ("POOL", "poolInfo.poolId"), ("CREATED", "creationTime"),
                                        ("ENDED", "executionInfo.endTime"), ("REASON", "executionInfo.terminateReason"),
                                        ("SCHEDULING ERROR", "executionInfo.schedulingError.code")])
        }
    }

    struct Terminate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a job: running tasks stop, then release runs on every prepared node.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var id: String
        @Option(help: "The terminate reason to record.") var reason: String?
        func run() async throws {
            let api = try client.client()
            let payload = try body(reason.map { ["terminateReason": $0] } ?? [:])
            _ = try await calling { try await api.send("POST", "/jobs/\(seg(id))/terminate", body: payload, expect: [202]) }
            print("terminating job \(id)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a job (release runs first where it is still owed).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var id: String
        func run() async throws {
            let api = try client.client()
            _ = try await calling { try await api.send("DELETE", "/jobs/\(seg(id))", expect: [202]) }
            print("deleting job \(id)")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a job's tasks from starting.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var id: String
        @Option(help: "What happens to running tasks: requeue, terminate or wait.") var tasks = "requeue"
        func run() async throws {
            let api = try client.client()
            _ = try await calling { try await api.send("POST", "/jobs/\(seg(id))/disable", body: try body(["disableTasks": tasks]), expect: [202]) }
            print("disabling job \(id)")
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a disabled job's tasks start again.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var id: String
        func run() async throws {
            let api = try client.client()
            _ = try await calling { try await api.send("POST", "/jobs/\(seg(id))/enable", expect: [202]) }
            print("enabling job \(id)")
        }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait until every task of a job has completed, with a live progress bar.",
            discussion: """
                Exit status: 0 when every task succeeded, 3 when some failed, 4 when --timeout passed first, \
                5 when the job is blocked: its remaining tasks can never complete until someone acts (the job \
                preparation task failed on every node, the pool is gone or has no usable node, the job is \
                disabled, ...). On 5 the reason, the failing nodes, exit codes and the preparation's last stderr \
                lines are printed; `bookend job why` explains any wait.
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var id: String
        @Option(help: "Give up after this many seconds.") var timeout: Double = 3600

        func run() async throws {
            let api = try client.client()
            let deadline = Date().addingTimeInterval(timeout)
            let interactive = isatty(STDOUT_FILENO) == 1
            var last = ""
            while true {
                let response = try await calling { try await api.send("GET", "/jobs/\(seg(id))/taskcounts", expect: [200]) }
                let counts = jsonObject(response.body)["taskCounts"] as? [String: Any] ?? [:]
                func count(_ key: String) -> Int { (counts[key] as? NSNumber)?.intValue ?? 0 }
                let total = count("active") + count("running") + count("completed")
                let line = Self.progress(completed: count("completed"), total: total, running: count("running"),
                                         succeeded: count("succeeded"), failed: count("failed"))
                if interactive {
                    FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
                } else if line != last {
                    print(line)
                }
                last = line
                if count("active") == 0 && count("running") == 0 {
                    if interactive { print() }
                    if client.output == .json { printJSON(counts) }
                    if count("failed") > 0 { throw ExitCode(3) }
                    return
                }
                // The daemon says when no task can ever finish as things stand; waiting on would be silent forever.
                let job = try await calling { try await api.send("GET", "/jobs/\(seg(id))", expect: [200]) }
                if let reason = jsonObject(job.body)[waitReasonProperty] as? [String: Any], reason["state"] as? String == "blocked" {
                    if interactive { print() }
                    if client.output == .json { printJSON(reason) }
                    let lines = describe(reason, subject: "job \(id)")
                    FileHandle.standardError.write(Data(("error: " + lines.joined(separator: "\n") + "\n").utf8))
                    throw ExitCode(5)
                }
                if Date() >= deadline {
                    if interactive { print() }
                    FileHandle.standardError.write(Data("error: timed out after \(Int(timeout)) s waiting for job \(id)\n".utf8))
                    throw ExitCode(4)
                }
                try await Task.sleep(for: .milliseconds(250))
            }
        }

        static func progress(completed: Int, total: Int, running: Int, succeeded: Int, failed: Int) -> String {
            let width = 30
            let filled = total == 0 ? width : width * completed / total
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            return "[\(bar)] \(completed)/\(total) completed, \(running) running, \(succeeded) succeeded, \(failed) failed"
        }
    }

    struct Why: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain why a job's tasks, or one task, have not started: blocked (needs an action), waiting, or not waiting.",
            discussion: "Exit status 0 whatever the answer; 1 when the job or task does not exist.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var job: String
        @Argument(help: "A task id (default: the job as a whole).") var task: String?

        func run() async throws {
            let api = try client.client()
            let path = "/jobs/\(seg(job))" + (task.map { "/tasks/\(seg($0))" } ?? "")
            let response = try await calling { try await api.send("GET", path, expect: [200]) }
            guard let reason = jsonObject(response.body)[waitReasonProperty] as? [String: Any] else {
                throw CLIError("the daemon did not say why (it predates \(waitReasonProperty))")
            }
            if client.output == .json { return printJSON(reason) }
            let subject = task.map { "task \($0) of job \(job)" } ?? "job \(job)"
            for line in describe(reason, subject: subject) { print(line) }
        }
    }

    struct PrepReleaseStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prep-release-status", abstract: "Show, per node, the job's preparation and release tasks.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var id: String
        func run() async throws {
            let api = try client.client()
            let items = try await calling { try await listObjects(api, "/jobs/\(seg(id))/jobpreparationandreleasetaskstatus") }
            if client.output == .json { return printJSON(items) }
            printTable(items, columns: [
                ("NODE", "nodeId"), ("PREP", "jobPreparationTaskExecutionInfo.state"), ("PREP RESULT", "jobPreparationTaskExecutionInfo.result"),
                ("PREP EXIT", "jobPreparationTaskExecutionInfo.exitCode"), ("RETRIES", "jobPreparationTaskExecutionInfo.retryCount"),
                ("PREP ENDED", "jobPreparationTaskExecutionInfo.endTime"), ("RELEASE", "jobReleaseTaskExecutionInfo.state"),
                ("RELEASE EXIT", "jobReleaseTaskExecutionInfo.exitCode"), ("RELEASE ENDED", "jobReleaseTaskExecutionInfo.endTime"),
            ])
        }
    }

    struct TaskCounts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "task-counts", abstract: "Count a job's tasks by state.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var id: String
        func run() async throws {
            let api = try client.client()
            let response = try await calling { try await api.send("GET", "/jobs/\(seg(id))/taskcounts", expect: [200]) }
            let object = jsonObject(response.body)
            if client.output == .json { return printJSON(object) }
            printTable([object["taskCounts"] as? [String: Any] ?? [:]], columns: [
                ("ACTIVE", "active"), ("RUNNING", "running"), ("COMPLETED", "completed"), ("SUCCEEDED", "succeeded"), ("FAILED", "failed")])
        }
    }
}

/// The daemon's extension property that explains a wait (docs/daemon.md).
let waitReasonProperty = "bookendWaitReason"

/// A `bookendWaitReason` for people: what state and why, then each failed node with its exit code
/// and the preparation's last stderr lines.
func describe(_ reason: [String: Any], subject: String) -> [String] {
    let state = reason["state"] as? String ?? ""
    let code = reason["code"] as? String ?? ""
    let message = reason["message"] as? String ?? ""
    let verdict: String
    switch state {
    case "blocked": verdict = "is blocked"
    case "waiting": verdict = "is waiting"
    case "notwaiting": verdict = "is not waiting"
    default: verdict = "is \(state)"
    }
    var lines = ["\(subject) \(verdict) (\(code)): \(message)"]
    for failure in reason["failedPreparations"] as? [[String: Any]] ?? [] {
        let exit = (failure["exitCode"] as? NSNumber).map { "\($0)" } ?? "none"
        let failureCode = ((failure["failureInfo"] as? [String: Any])?["code"] as? String).map { " (\($0))" } ?? ""
        lines.append("  node \(failure["nodeId"] as? String ?? ""): exit code \(exit)\(failureCode)")
        for line in (failure["stderrTail"] as? String ?? "").split(separator: "\n") { lines.append("    stderr: \(line)") }
    }
    return lines
}
