import ArgumentParser
import BatchModels
import Client
import Foundation

struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Add, list and control tasks on a running daemon.",
        subcommands: [Add.self, ListCommand<List>.self, ShowCommand<Show>.self, VerbCommand<Terminate>.self, VerbCommand<Delete>.self, VerbCommand<Reactivate>.self,
                      File.self, ListCommand<Files>.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add one task, or many from a JSON array (sent 100 per call, as addtaskcollection).",
            discussion: "Exit status 1 when any task was refused; each refusal is one line on stderr.",
            // `az batch task create` is the name Azure's CLI users type; the REST API says "add".
            aliases: ["create"])
        @OptionGroup var options: ClientOptions
        @OptionGroup var target: TasksOfJob
        @Option(help: "The task id.") var id: String?
        @Option(name: .customLong("display-name"), help: "A name for people.") var displayName: String?
        @Option(name: [.customLong("command-line"), .customLong("command")], help: "The command line (run without a shell).")
        var commandLine: String?
        @Option(name: .customLong("max-task-retry-count"), parsing: .unconditional, help: "Retries when it fails (-1: no limit; default: the job's).")
        var maxTaskRetryCount: Int?
        @Option(name: .customLong("required-slots"), help: "Task slots it takes on its node.") var requiredSlots: Int?
        @Option(help: "A JSON file (or - for stdin) with one task object or an array of them.") var json: String?

        // Checked before `run`, so that the error comes with this command's own usage.
        func validate() throws {
            if json == nil, id == nil || commandLine == nil { throw ValidationError("give --id and --command-line, or --json") }
        }

        func tasks() throws -> [BatchTaskCreateOptions] {
            if let json {
                // One object or an array of them, told apart by the first character.
                let data = try readJSONFile(json)
                if data.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "[") {
                    return try decodeJSON([BatchTaskCreateOptions].self, data, from: json, what: "an array of tasks")
                }
                return [try decodeJSON(BatchTaskCreateOptions.self, data, from: json, what: "a task")]
            }
            guard let id, let commandLine else { throw ValidationError("give --id and --command-line, or --json") }
            return [BatchTaskCreateOptions(
                id: id, displayName: displayName, commandLine: commandLine,
                constraints: maxTaskRetryCount.map { BatchTaskConstraints(maxTaskRetryCount: $0) }, requiredSlots: requiredSlots)]
        }

        func run() async throws {
            let api = try options.client()
            let job = target.job
            let tasks = try tasks()
            var failed = 0
            var offset = 0
            // Thousands of tasks take a while (100 per call): say how far it got, on a terminal.
            let progress = ProgressLine(enabled: tasks.count > 100 && isatty(STDERR_FILENO) == 1)
            defer { progress.finish() }
            while offset < tasks.count {
                progress.show("adding tasks to job \(job): \(offset)/\(tasks.count)")
                let chunk = Array(tasks[offset..<min(offset + 100, tasks.count)])
                offset += chunk.count
                let request = try BatchOperations.createTaskCollection(job, BatchTaskGroup(value: chunk))
                let result = try await calling { try await api.send(request) }
                for item in result.value where item.status != .success {
                    failed += 1
                    let message = item.error?.message?.value.split(separator: "\n").first.map(String.init) ?? ""
                    progress.finish()
                    FileHandle.standardError.write(Data("Error: task \(item.taskId): \(item.error?.code ?? item.status.rawValue) \(message)\n".utf8))
                }
            }
            print("added \(tasks.count - failed) of \(tasks.count) tasks to job \(job)")
            if failed > 0 { throw ExitCode(1) }
        }
    }

    enum List: ListDefinition {
        static var listing: Listing<TasksOfJob, BatchTask> {
            Listing(abstract: "List a job's tasks.", filterExample: "state eq 'completed'", columns: [
                Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("NODE") { $0.nodeInfo?.nodeId },
                Column("EXIT") { $0.executionInfo?.exitCode }, Column("RESULT") { $0.executionInfo?.result },
                Column("RETRIES") { $0.executionInfo?.retryCount }, Column("FAILURE") { $0.executionInfo?.failureInfo?.code }]) {
                BatchOperations.listTasks($0.job, filter: $1)
            }
        }
    }

    enum Show: ShowDefinition {
        static var showing: Showing<TaskPath, BatchTask> {
            Showing(abstract: "Show one task.", columns: [
                Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("NODE") { $0.nodeInfo?.nodeId },
                Column("EXIT") { $0.executionInfo?.exitCode }, Column("RESULT") { $0.executionInfo?.result },
                Column("STARTED") { $0.executionInfo?.startTime }, Column("ENDED") { $0.executionInfo?.endTime },
                Column("FAILURE") { $0.executionInfo?.failureInfo?.code }]) { BatchOperations.getTask($0.job, $0.id) }
        }
    }

    enum Terminate: VerbDefinition {
        static let verb = Verb<TaskPath>("terminate", abstract: "End a task (it completes as failed with TaskEnded).",
                                        says: "terminated task") { BatchOperations.terminateTask($0.job, $0.id) }
    }

    enum Delete: VerbDefinition {
        static let verb = Verb<TaskPath>("delete", abstract: "Delete a task and its files.",
                                        says: "deleted task") { BatchOperations.deleteTask($0.job, $0.id) }
    }

    enum Reactivate: VerbDefinition {
        static let verb = Verb<TaskPath>("reactivate", abstract: "Run a failed task again.",
                                        says: "reactivated task") { BatchOperations.reactivateTask($0.job, $0.id) }
    }

    enum Files: ListDefinition {
        static var listing: Listing<TaskFolder, BatchNodeFile> {
            Listing("files", abstract: "List the files of a task's folder (stdout.txt, wd/...).", filterExample: "startswith(name,'wd/')",
                    columns: columns) {
                BatchOperations.listTaskFiles($0.job, $0.id, recursive: $0.recursive, filter: $1)
            }
        }

        /// A file's row, for task and node folders alike.
        static let columns: [Column<BatchNodeFile>] = [
            Column("NAME") { $0.name }, Column("DIRECTORY") { $0.isDirectory }, Column("SIZE") { $0.properties?.contentLength },
            Column("MODIFIED") { $0.properties?.lastModified }, Column("MODE") { $0.properties?.fileMode }]
    }

    struct File: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a file of a task, e.g. stdout.txt or wd/out.txt.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The job id.") var job: String
        @Argument(help: "The task id.") var id: String
        @Argument(help: "The path inside the task directory.") var path = "stdout.txt"
        // An empty path named the task's folder itself, whose listing came back as raw JSON.
        func validate() throws {
            if path.isEmpty { throw ValidationError("give the path of a file in the task's folder, e.g. stdout.txt or wd/out.txt") }
        }
        func run() async throws {
            let content = try await options.withClient { try await $0.send(BatchOperations.getTaskFile(job, id, path: path)) }
            FileHandle.standardOutput.write(content)
        }
    }
}
