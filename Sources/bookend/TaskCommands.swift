import ArgumentParser
import Client
import Foundation

struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Add, list and control tasks on a running daemon.",
        subcommands: [Add.self, List.self, Show.self, Terminate.self, Delete.self, Reactivate.self, File.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add one task, or many from a JSON array (sent 100 per call, as addtaskcollection).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var job: String
        @Option(help: "The task id.") var id: String?
        @Option(help: "The command line (run without a shell).") var command: String?
        @Option(help: "A JSON file (or - for stdin) with one task object or an array of them.") var json: String?

        func run() async throws {
            let api = try client.client()
            var tasks: [Any] = []
            if let json {
                let value = try JSONSerialization.jsonObject(with: try readJSONFile(json))
                tasks = value as? [Any] ?? [value]
            } else {
                guard let id, let command else { throw ValidationError("give --id and --command, or --json") }
                tasks = [["id": id, "commandLine": command]]
            }
            var failed = 0
            var offset = 0
            while offset < tasks.count {
                let chunk = Array(tasks[offset..<min(offset + 100, tasks.count)])
                offset += chunk.count
                let response = try await calling {
                    try await api.send("POST", "/jobs/\(seg(job))/addtaskcollection", body: try JSONSerialization.data(withJSONObject: ["value": chunk]), expect: [200])
                }
                for item in jsonObject(response.body)["value"] as? [[String: Any]] ?? [] where item["status"] as? String != "success" {
                    failed += 1
                    let error = item["error"] as? [String: Any]
                    let message = (error?["message"] as? [String: Any])?["value"] as? String ?? ""
                    FileHandle.standardError.write(Data("error: task \(item["taskId"] ?? ""): \(error?["code"] ?? "") \(message.split(separator: "\n").first ?? "")\n".utf8))
                }
            }
            print("added \(tasks.count - failed) of \(tasks.count) tasks to job \(job)")
            if failed > 0 { throw ExitCode(1) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a job's tasks.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var job: String
        @Option(help: "An OData filter, e.g. \"state eq 'completed'\".") var filter: String?
        func run() async throws {
            let api = try client.client()
            let tasks = try await calling { try await listObjects(api, "/jobs/\(seg(job))/tasks", query: filter.map { [("$filter", $0)] } ?? []) }
            if client.output == .json { return printJSON(tasks) }
            printTable(tasks, columns: [("ID", "id"), ("STATE", "state"), ("NODE", "nodeInfo.nodeId"), ("EXIT", "executionInfo.exitCode"),
                                        ("RESULT", "executionInfo.result"), ("RETRIES", "executionInfo.retryCount"),
                                        ("FAILURE", "executionInfo.failureInfo.code")])
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one task.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var job: String
        @Argument(help: "The task id.") var id: String
        func run() async throws {
            let api = try client.client()
            let response = try await calling { try await api.send("GET", "/jobs/\(seg(job))/tasks/\(seg(id))", expect: [200]) }
            let task = jsonObject(response.body)
            if client.output == .json { return printJSON(task) }
            printTable([task], columns: [("ID", "id"), ("STATE", "state"), ("NODE", "nodeInfo.nodeId"), ("EXIT", "executionInfo.exitCode"),
                                         ("RESULT", "executionInfo.result"), ("STARTED", "executionInfo.startTime"),
                                         ("ENDED", "executionInfo.endTime"), ("FAILURE", "executionInfo.failureInfo.code")])
        }
    }

    struct Terminate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a task (it completes as failed with TaskEnded).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var job: String
        @Argument(help: "The task id.") var id: String
        func run() async throws {
            let api = try client.client()
            _ = try await calling { try await api.send("POST", "/jobs/\(seg(job))/tasks/\(seg(id))/terminate", expect: [204]) }
            print("terminated task \(id)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a task and its files.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var job: String
        @Argument(help: "The task id.") var id: String
        func run() async throws {
            let api = try client.client()
            _ = try await calling { try await api.send("DELETE", "/jobs/\(seg(job))/tasks/\(seg(id))", expect: [200]) }
            print("deleted task \(id)")
        }
    }

    struct Reactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a failed task again.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var job: String
        @Argument(help: "The task id.") var id: String
        func run() async throws {
            let api = try client.client()
            _ = try await calling { try await api.send("POST", "/jobs/\(seg(job))/tasks/\(seg(id))/reactivate", expect: [204]) }
            print("reactivated task \(id)")
        }
    }

    struct File: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a file of a task, e.g. stdout.txt or wd/out.txt.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job id.") var job: String
        @Argument(help: "The task id.") var id: String
        @Argument(help: "The path inside the task directory.") var path = "stdout.txt"
        func run() async throws {
            let api = try client.client()
            let response = try await calling { try await api.send("GET", "/jobs/\(seg(job))/tasks/\(seg(id))/files/\(seg(path))", expect: [200]) }
            FileHandle.standardOutput.write(response.body)
        }
    }
}
