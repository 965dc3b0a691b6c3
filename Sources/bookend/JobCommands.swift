import ArgumentParser
import BatchModels
import Client
import Foundation

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Create, watch and end jobs on a running daemon.",
        subcommands: [Create.self, ListCommand<List>.self, ShowCommand<Show>.self, VerbCommand<Terminate>.self, VerbCommand<Delete>.self,
                      VerbCommand<Disable>.self, VerbCommand<Enable>.self, Wait.self, Why.self,
                      ListCommand<JobPreparationAndReleaseTaskStatus>.self, TaskCounts.self])

    struct Create: ActionCommand {
        static let configuration = CommandConfiguration(abstract: "Create a job, with optional preparation and release tasks.",
            aliases: ["add"])  // the REST API's name ("Add Job"); Azure's CLI says create
        @OptionGroup var options: ClientOptions
        @Option(help: "The job id.") var id: String?
        @Option(name: .customLong("display-name"), help: "A name for people.") var displayName: String?
        @Option(name: [.customLong("pool-id"), .customLong("pool")], help: "The pool its tasks run on.") var poolId: String?
        @Option(name: [.customLong("job-preparation-task"), .customLong("prep")], help: "The job preparation task's command line.")
        var jobPreparationTask: String?
        @Option(name: [.customLong("job-release-task"), .customLong("release")], help: "The job release task's command line (needs a preparation task).")
        var jobReleaseTask: String?
        @Option(parsing: .unconditional, help: "From -1000 to 1000; higher runs first.") var priority: Int?
        @Option(name: .customLong("max-task-retry-count"), parsing: .unconditional, help: "Retries of a failed task (-1: no limit); the default of the job's tasks.")
        var maxTaskRetryCount: Int?
        @Option(name: .customLong("on-all-tasks-complete"), help: "What the job does once all its tasks have completed.")
        var onAllTasksComplete: OnAllBatchTasksComplete?
        @Option(help: "A JSON file (or - for stdin) with the whole job, as for Azure Batch's POST /jobs.") var json: String?

        // Checked before `run`, so that the error comes with this command's own usage.
        func validate() throws {
            if json == nil, id == nil || poolId == nil { throw ValidationError("give --id and --pool-id, or --json") }
        }

        func job() throws -> BatchJobCreateOptions {
            if let json { return try readJSONFile(json, as: BatchJobCreateOptions.self, what: "a job") }
            guard let id, let poolId else { throw ValidationError("give --id and --pool-id, or --json") }
            return BatchJobCreateOptions(
                id: id, displayName: displayName, priority: priority,
                constraints: maxTaskRetryCount.map { BatchJobConstraints(maxTaskRetryCount: $0) },
                jobPreparationTask: jobPreparationTask.map { BatchJobPreparationTask(commandLine: $0) },
                jobReleaseTask: jobReleaseTask.map { BatchJobReleaseTask(commandLine: $0) },
                poolInfo: BatchPoolInfo(poolId: poolId), onAllTasksComplete: onAllTasksComplete)
        }
        func action() throws -> Action<NoContent> { try .creating("job", job(), id: \.id, BatchOperations.createJob) }
    }

    enum List: ListDefinition {
        static var listing: Listing<NoIDs, BatchJob> {
            Listing(abstract: "List jobs.", filterExample: "state eq 'active'", columns: [
                Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("POOL") { $0.poolInfo?.poolId }, Column("PRIORITY") { $0.priority },
                Column("CREATED") { $0.creationTime }, Column("ENDED") { $0.executionInfo?.endTime },
                Column("REASON") { $0.executionInfo?.terminateReason }]) { BatchOperations.listJobs(filter: $1) }
        }
    }

    enum Show: ShowDefinition {
        static var showing: Showing<JobID, BatchJob> {
            Showing(abstract: "Show one job.", columns: [
                Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("POOL") { $0.poolInfo?.poolId }, Column("CREATED") { $0.creationTime },
                Column("ENDED") { $0.executionInfo?.endTime }, Column("REASON") { $0.executionInfo?.terminateReason },
                Column("SCHEDULING ERROR") { $0.executionInfo?.schedulingError?.code }]) { BatchOperations.getJob($0.id) }
        }
    }

    /// `job terminate ID --terminate-reason R`.
    enum Terminate: VerbDefinition {
        struct Target: IdentifiedTarget {
            @Argument(help: "The job id.") var id: String
            @Option(name: [.customLong("terminate-reason"), .customLong("reason")], help: "The terminate reason to record.")
            var terminateReason: String?
        }

        static let verb = Verb<Target>("terminate", abstract: "End a job: running tasks stop, then release runs on every prepared node.",
                                       says: "terminating job") {
            try BatchOperations.terminateJob($0.id, BatchJobTerminateOptions(terminateReason: $0.terminateReason))
        }
    }

    enum Delete: VerbDefinition {
        static let verb = Verb<JobID>("delete", abstract: "Delete a job (release runs first where it is still owed).",
                                     says: "deleting job") { BatchOperations.deleteJob($0.id) }
    }

    /// `job disable ID --disable-tasks requeue`.
    enum Disable: VerbDefinition {
        struct Target: IdentifiedTarget {
            @Argument(help: "The job id.") var id: String
            @Option(name: [.customLong("disable-tasks"), .customLong("tasks")], help: "What happens to running tasks.")
            var disableTasks: DisableBatchJobOption = .requeue
        }

        static let verb = Verb<Target>("disable", abstract: "Stop a job's tasks from starting.", says: "disabling job") {
            try BatchOperations.disableJob($0.id, BatchJobDisableOptions(disableTasks: $0.disableTasks))
        }
    }

    enum Enable: VerbDefinition {
        static let verb = Verb<JobID>("enable", abstract: "Let a disabled job's tasks start again.",
                                     says: "enabling job") { BatchOperations.enableJob($0.id) }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait until every task of a job has completed, with a live progress bar.",
            discussion: """
                Exit status: 0 when every task succeeded, 3 when some failed, 4 when --timeout passed first, \
                5 when the job is blocked: its remaining tasks can never complete until someone acts (the job \
                preparation task failed on every node, the pool is gone or has no usable node, the job is \
                disabled, ...). On 5 the reason, the failing nodes, exit codes and the preparation's last stderr \
                lines are printed; `bookend job why` explains any wait. A daemon that restarts meanwhile does not \
                end the wait: it says the daemon does not answer and retries every second until it does or \
                --timeout passes.
                """)
        @OptionGroup var options: ClientOptions
        @Argument(help: "The job id.") var id: String
        @Option(help: "Give up after this many seconds.") var timeout: Double = 3600

        /// Whole seconds when the timeout is whole (`60`), else as given (`0.5`).
        static func seconds(_ value: Double) -> String {
            value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
        }

        // `nan` parses as a Double, and made the wait die of a trap when it turned it into whole seconds.
        func validate() throws {
            guard timeout.isFinite, timeout >= 0 else {
                throw ValidationError("--timeout must be a number of seconds (0 or more), not \(timeout)")
            }
        }

        func run() async throws {
            let api = try options.client()
            let deadline = Date().addingTimeInterval(timeout)
            let interactive = isatty(STDOUT_FILENO) == 1
            var last = ""
            var unreachable = false
            // A daemon that restarts (an upgrade, a crash) does not end the wait: its state is on
            // disk and it carries on. Until it answers again, or the timeout, this says so and retries.
            func answered<T>(_ body: () async throws -> T) async throws -> T? {
                do {
                    let answer = try await body()
                    if unreachable {
                        unreachable = false
                        FileHandle.standardError.write(Data("the daemon answers again; still waiting for job \(id)\n".utf8))
                    }
                    return answer
                } catch let error as ClientError where error.status == 0 || error.status == 503 {
                    guard Date() < deadline else {
                        FileHandle.standardError.write(Data("Error: timed out after \(Self.seconds(timeout)) s waiting for job \(id); the daemon does not answer: \(error.message)\n".utf8))
                        throw ExitCode(4)
                    }
                    if !unreachable {
                        unreachable = true
                        if interactive { print() }
                        FileHandle.standardError.write(Data("the daemon does not answer (\(error.message)); retrying every second until it does or --timeout passes\n".utf8))
                    }
                    try await Task.sleep(for: .seconds(1))
                    return nil
                } catch let error as ClientError {
                    throw CLIError(error.description)
                }
            }
            while true {
                guard let counts = try await answered({ try await api.send(BatchOperations.getJobTaskCounts(id)) })?.taskCounts else { continue }
                let line = Self.progress(counts)
                if interactive {
                    FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
                } else if line != last {
                    // Flushed at once: to a pipe or a file, stdout is buffered, and a log read while
                    // the wait goes on (`| tee`, a CI log) showed nothing until it ended.
                    print(line)
                    fflush(nil)
                }
                last = line
                if counts.active == 0 && counts.running == 0 {
                    if interactive { print() }
                    if options.format == .json { try printJSON(counts) }
                    if counts.failed > 0 { throw ExitCode(3) }
                    return
                }
                // The daemon says when no task can ever finish as things stand; waiting on would be silent forever.
                guard let job = try await answered({ try await api.send(BatchOperations.getJob(id)) }) else { continue }
                if let reason = job.bookendWaitReason, reason.state == .blocked {
                    if interactive { print() }
                    if options.format == .json { try printJSON(reason) }
                    let lines = describe(reason, subject: "job \(id)")
                    FileHandle.standardError.write(Data(("Error: " + lines.joined(separator: "\n") + "\n").utf8))
                    throw ExitCode(5)
                }
                if Date() >= deadline {
                    if interactive { print() }
                    FileHandle.standardError.write(Data("Error: timed out after \(Self.seconds(timeout)) s waiting for job \(id)\n".utf8))
                    throw ExitCode(4)
                }
                try await Task.sleep(for: .milliseconds(250))
            }
        }

        static func progress(_ counts: BatchTaskCounts) -> String {
            let width = 30
            let total = counts.active + counts.running + counts.completed
            let filled = total == 0 ? width : width * counts.completed / total
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            return "[\(bar)] \(counts.completed)/\(total) completed, \(counts.running) running, \(counts.succeeded) succeeded, \(counts.failed) failed"
        }
    }

    struct Why: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain why a job's tasks, or one task, have not started: blocked (needs an action), waiting, or not waiting.",
            discussion: "Exit status 0 whatever the answer; 1 when the job or task does not exist.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The job id.") var job: String
        @Argument(help: "A task id (default: the job as a whole).") var task: String?

        func run() async throws {
            let reason: BookendWaitReason? = try await options.withClient { api in
                if let task { return try await api.send(BatchOperations.getTask(job, task)).bookendWaitReason }
                return try await api.send(BatchOperations.getJob(job)).bookendWaitReason
            }
            guard let reason else { throw CLIError("the daemon did not say why (it predates bookendWaitReason)") }
            if options.format == .json { return try printJSON(reason) }
            let subject = task.map { "task \($0) of job \(job)" } ?? "job \(job)"
            for line in describe(reason, subject: subject) { print(line) }
        }
    }

    enum JobPreparationAndReleaseTaskStatus: ListDefinition {
        static var listing: Listing<JobID, BatchJobPreparationAndReleaseTaskStatus> {
            Listing("prep-release-status", abstract: "Show, per node, the job's preparation and release tasks.",
                    filterExample: "jobPreparationTaskExecutionInfo/state eq 'completed'", columns: [
                Column("NODE") { $0.nodeId }, Column("PREP") { $0.jobPreparationTaskExecutionInfo?.state },
                Column("PREP RESULT") { $0.jobPreparationTaskExecutionInfo?.result },
                Column("PREP EXIT") { $0.jobPreparationTaskExecutionInfo?.exitCode },
                Column("RETRIES") { $0.jobPreparationTaskExecutionInfo?.retryCount },
                Column("PREP ENDED") { $0.jobPreparationTaskExecutionInfo?.endTime }, Column("RELEASE") { $0.jobReleaseTaskExecutionInfo?.state },
                Column("RELEASE EXIT") { $0.jobReleaseTaskExecutionInfo?.exitCode },
                Column("RELEASE ENDED") { $0.jobReleaseTaskExecutionInfo?.endTime }]) {
                BatchOperations.listJobPreparationAndReleaseTaskStatus($0.id, filter: $1)
            }
        }
    }

    struct TaskCounts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "task-counts", abstract: "Count a job's tasks by state.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The job id.") var id: String
        func run() async throws {
            let result = try await options.withClient { try await $0.send(BatchOperations.getJobTaskCounts(id)) }
            try options.present(result, rows: [result.taskCounts], columns: [
                Column("ACTIVE") { $0.active }, Column("RUNNING") { $0.running }, Column("COMPLETED") { $0.completed },
                Column("SUCCEEDED") { $0.succeeded }, Column("FAILED") { $0.failed }])
        }
    }
}

/// A `bookendWaitReason` for people: what state and why, then each failed node with its exit code
/// and the preparation's last stderr lines.
func describe(_ reason: BookendWaitReason, subject: String) -> [String] {
    let verdict = switch reason.state {
    case .blocked: "is blocked"
    case .waiting: "is waiting"
    case .notWaiting: "is not waiting"
    case .unrecognized(let state): "is \(state)"
    }
    var lines = ["\(subject) \(verdict) (\(reason.code ?? "")): \(reason.message ?? "")"]
    for failure in reason.failedPreparations ?? [] {
        let exit = failure.exitCode.map(String.init) ?? "none"
        let failureCode = failure.failureInfo?.code.map { " (\($0))" } ?? ""
        lines.append("  node \(failure.nodeId): exit code \(exit)\(failureCode)")
        for line in (failure.stderrTail ?? "").split(separator: "\n") { lines.append("    stderr: \(terminalSafe(line))") }
    }
    return lines
}

/// What a task wrote, made safe to print on an operator's terminal: control characters (escape
/// sequences that set the title, clear the screen or move the cursor) are shown as `\xNN`, not sent.
func terminalSafe(_ text: some StringProtocol) -> String {
    var safe = ""
    for scalar in text.unicodeScalars {
        let value = scalar.value
        if value == 9 || (value >= 0x20 && value != 0x7F && !(0x80...0x9F).contains(value)) {
            safe.unicodeScalars.append(scalar)
        } else {
            safe += "\\x" + String(value, radix: 16, uppercase: true).leftPadded(to: 2)
        }
    }
    return safe
}

private extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
