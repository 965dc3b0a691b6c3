import ArgumentParser
import BatchModels
import Client
import Foundation

struct PoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool", abstract: "Create, list, resize and delete pools on a running daemon.",
        subcommands: [Create.self, List.self, Show.self, Resize.self, VerbCommand<Delete>.self])

    struct Create: ActionCommand {
        static let configuration = CommandConfiguration(abstract: "Create a pool (local nodes, or Slurm allocations under --node-provider slurm or bookend.nodeProvider metadata).")
        @OptionGroup var options: ClientOptions
        @Option(help: "The pool id.") var id: String?
        @Option(name: .customLong("display-name"), help: "A name for people.") var displayName: String?
        @Option(name: .customLong("vm-size"), help: "Stored and echoed; local nodes have the machine's size.") var vmSize = "standard_d1_v2"
        @Option(name: [.customLong("target-dedicated-nodes"), .customLong("nodes")], help: "Number of nodes.")
        var targetDedicatedNodes = 1
        @Option(name: [.customLong("task-slots-per-node"), .customLong("slots")], help: "Task slots per node.")
        var taskSlotsPerNode = 1
        @Option(name: [.customLong("node-fill-type"), .customLong("fill")], help: "How tasks are placed on the nodes.")
        var nodeFillType: BatchNodeFillType = .spread
        @Option(help: "A JSON file (or - for stdin) with the whole pool, as for Azure Batch's POST /pools.") var json: String?

        func pool() throws -> BatchPoolCreateOptions {
            if let json { return try readJSONFile(json, as: BatchPoolCreateOptions.self, what: "a pool") }
            guard let id else { throw ValidationError("give --id or --json") }
            return BatchPoolCreateOptions(
                id: id, displayName: displayName, vmSize: vmSize, targetDedicatedNodes: targetDedicatedNodes,
                taskSlotsPerNode: taskSlotsPerNode, taskSchedulingPolicy: BatchTaskSchedulingPolicy(nodeFillType: nodeFillType))
        }
        func action() throws -> Action<NoContent> {
            let pool = try pool()
            return Action(try BatchOperations.createPool(pool)) { _ in "created pool \(pool.id)" }
        }
    }

    struct List: ListCommand {
        static let configuration = CommandConfiguration(abstract: "List pools.")
        @OptionGroup var options: ClientOptions
        @Option(help: "An OData filter, e.g. \"state eq 'active'\".") var filter: String?
        func request() -> BatchRequest<BatchPoolList> { BatchOperations.listPools(filter: filter) }
        static var columns: [Column<BatchPool>] {
            [Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("ALLOCATION") { $0.allocationState },
             Column("NODES") { $0.currentDedicatedNodes }, Column("TARGET") { $0.targetDedicatedNodes },
             Column("SLOTS") { $0.taskSlotsPerNode }]
        }
    }

    struct Show: ShowCommand {
        static let configuration = CommandConfiguration(abstract: "Show one pool.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The pool id.") var id: String
        func request() -> BatchRequest<BatchPool> { BatchOperations.getPool(id) }
        static var columns: [Column<BatchPool>] {
            [Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("ALLOCATION") { $0.allocationState },
             Column("NODES") { $0.currentDedicatedNodes }, Column("SLOTS") { $0.taskSlotsPerNode }, Column("CREATED") { $0.creationTime }]
        }
    }

    struct Resize: ActionCommand {
        static let configuration = CommandConfiguration(abstract: "Change a pool's node count.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The pool id.") var id: String
        @Option(name: [.customLong("target-dedicated-nodes"), .customLong("nodes")], help: "The new number of nodes.")
        var targetDedicatedNodes: Int
        func action() throws -> Action<NoContent> {
            Action(try BatchOperations.resizePool(id, BatchPoolResizeOptions(targetDedicatedNodes: targetDedicatedNodes))) { _ in
                "resizing pool \(id) to \(targetDedicatedNodes) nodes"
            }
        }
    }

    enum Delete: VerbDefinition {
        static let verb = Verb<PoolID>("delete", abstract: "Delete a pool (its running tasks are requeued).",
                                      done: { "deleting pool \($0.id)" }) { BatchOperations.deletePool($0.id) }
    }
}
