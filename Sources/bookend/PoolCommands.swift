import ArgumentParser
import Client
import Foundation

struct PoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool", abstract: "Create, list, resize and delete pools on a running daemon.",
        subcommands: [Create.self, List.self, Show.self, Resize.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a pool of local nodes.")
        @OptionGroup var client: ClientOptions
        @Option(help: "The pool id.") var id: String?
        @Option(help: "Number of nodes.") var nodes = 1
        @Option(help: "Task slots per node.") var slots = 1
        @Option(help: "spread or pack.") var fill = "spread"
        @Option(help: "A JSON file (or - for stdin) with the whole pool, as for Azure Batch's POST /pools.") var json: String?

        func run() async throws {
            let api = try client.client()
            let payload: Data
            if let json {
                payload = try readJSONFile(json)
            } else {
                guard let id else { throw ValidationError("give --id or --json") }
                payload = try body(["id": id, "vmSize": "standard_d1_v2", "targetDedicatedNodes": nodes, "taskSlotsPerNode": slots,
                                    "taskSchedulingPolicy": ["nodeFillType": fill]])
            }
            _ = try await calling { try await api.send("POST", "/pools", body: payload, expect: [201]) }
            print("created pool \(id ?? (jsonObject(payload)["id"] as? String ?? ""))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List pools.")
        @OptionGroup var client: ClientOptions
        func run() async throws {
            let api = try client.client()
            let pools = try await calling { try await listObjects(api, "/pools") }
            if client.output == .json { return printJSON(pools) }
            printTable(pools, columns: [("ID", "id"), ("STATE", "state"), ("ALLOCATION", "allocationState"),
                                        ("NODES", "currentDedicatedNodes"), ("TARGET", "targetDedicatedNodes"), ("SLOTS", "taskSlotsPerNode")])
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one pool.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The pool id.") var id: String
        func run() async throws {
            let api = try client.client()
            let response = try await calling { try await api.send("GET", "/pools/\(seg(id))", expect: [200]) }
            let pool = jsonObject(response.body)
            if client.output == .json { return printJSON(pool) }
            printTable([pool], columns: [("ID", "id"), ("STATE", "state"), ("ALLOCATION", "allocationState"),
                                         ("NODES", "currentDedicatedNodes"), ("SLOTS", "taskSlotsPerNode"), ("CREATED", "creationTime")])
        }
    }

    struct Resize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a pool's node count.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The pool id.") var id: String
        @Option(help: "The new number of nodes.") var nodes: Int
        func run() async throws {
            let api = try client.client()
            _ = try await calling {
                try await api.send("POST", "/pools/\(seg(id))/resize", body: try body(["targetDedicatedNodes": nodes]), expect: [202])
            }
            print("resizing pool \(id) to \(nodes) nodes")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a pool (its running tasks are requeued).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The pool id.") var id: String
        func run() async throws {
            let api = try client.client()
            _ = try await calling { try await api.send("DELETE", "/pools/\(seg(id))", expect: [202]) }
            print("deleting pool \(id)")
        }
    }
}

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "List, show and reboot the nodes of a pool.", subcommands: [List.self, Show.self, Reboot.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a pool's nodes.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The pool id.") var pool: String
        func run() async throws {
            let api = try client.client()
            let nodes = try await calling { try await listObjects(api, "/pools/\(seg(pool))/nodes") }
            if client.output == .json { return printJSON(nodes) }
            printTable(nodes, columns: [("ID", "id"), ("STATE", "state"), ("RUNNING", "runningTasksCount"), ("RUN", "totalTasksRun"),
                                        ("SUCCEEDED", "totalTasksSucceeded"), ("START TASK", "startTaskInfo.result"), ("BOOTED", "lastBootTime")])
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one node.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The pool id.") var pool: String
        @Argument(help: "The node id.") var node: String
        func run() async throws {
            let api = try client.client()
            let response = try await calling { try await api.send("GET", "/pools/\(seg(pool))/nodes/\(seg(node))", expect: [200]) }
            let object = jsonObject(response.body)
            if client.output == .json { return printJSON(object) }
            printTable([object], columns: [("ID", "id"), ("STATE", "state"), ("SCHEDULING", "schedulingState"),
                                           ("RUNNING", "runningTasksCount"), ("RUN", "totalTasksRun"), ("BOOTED", "lastBootTime")])
        }
    }

    struct Reboot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reboot a node (its start task and, per job, preparation run again).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The pool id.") var pool: String
        @Argument(help: "The node id.") var node: String
        @Option(help: "requeue, terminate, taskcompletion or retaineddata.") var option = "requeue"
        func run() async throws {
            let api = try client.client()
            _ = try await calling {
                try await api.send("POST", "/pools/\(seg(pool))/nodes/\(seg(node))/reboot", body: try body(["nodeRebootOption": option]), expect: [202])
            }
            print("rebooting node \(node)")
        }
    }
}
