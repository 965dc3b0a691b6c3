import ArgumentParser
import BatchModels
import Client
import Foundation

struct PoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool", abstract: "Create, list, resize and delete pools on a running daemon.",
        subcommands: [Create.self, ListCommand<List>.self, ShowCommand<Show>.self, VerbCommand<Resize>.self, VerbCommand<Delete>.self])

    struct Create: ActionCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a pool (local nodes, or Slurm allocations under --node-provider slurm or bookend.nodeProvider metadata).",
            aliases: ["add"])  // the REST API's name ("Add Pool"); Azure's CLI says create
        @OptionGroup var options: ClientOptions
        @Option(help: "The pool id.") var id: String?
        @Option(name: .customLong("display-name"), help: "A name for people.") var displayName: String?
        @Option(name: .customLong("vm-size"), help: "Stored and echoed; local nodes have the machine's size.") var vmSize = "standard_d1_v2"
        @Option(name: [.customLong("target-dedicated-nodes"), .customLong("nodes")], parsing: .unconditional, help: "Number of nodes.")
        var targetDedicatedNodes = 1
        @Option(name: [.customLong("task-slots-per-node"), .customLong("slots")], help: "Task slots per node.")
        var taskSlotsPerNode = 1
        @Option(name: [.customLong("node-fill-type"), .customLong("fill")], help: "How tasks are placed on the nodes.")
        var nodeFillType: BatchNodeFillType = .spread
        @Option(help: "A JSON file (or - for stdin) with the whole pool, as for Azure Batch's POST /pools.") var json: String?

        // Checked before `run`, so that the error comes with this command's own usage.
        func validate() throws {
            if json == nil, id == nil { throw ValidationError("give --id or --json") }
        }

        func pool() throws -> BatchPoolCreateOptions {
            if let json { return try readJSONFile(json, as: BatchPoolCreateOptions.self, what: "a pool") }
            guard let id else { throw ValidationError("give --id or --json") }
            return BatchPoolCreateOptions(
                id: id, displayName: displayName, vmSize: vmSize, targetDedicatedNodes: targetDedicatedNodes,
                taskSlotsPerNode: taskSlotsPerNode, taskSchedulingPolicy: BatchTaskSchedulingPolicy(nodeFillType: nodeFillType))
        }
        func action() throws -> Action<NoContent> { try .creating("pool", pool(), id: \.id, BatchOperations.createPool) }
    }

    enum List: ListDefinition {
        static var listing: Listing<NoIDs, BatchPool> {
            Listing(abstract: "List pools.", filterExample: "state eq 'active'", columns: [
                Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("ALLOCATION") { $0.allocationState },
                Column("NODES") { $0.currentDedicatedNodes }, Column("TARGET") { $0.targetDedicatedNodes },
                Column("SLOTS") { $0.taskSlotsPerNode }]) { BatchOperations.listPools(filter: $1) }
        }
    }

    enum Show: ShowDefinition {
        static var showing: Showing<PoolID, BatchPool> {
            Showing(abstract: "Show one pool.", columns: [
                Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("ALLOCATION") { $0.allocationState },
                Column("NODES") { $0.currentDedicatedNodes }, Column("SLOTS") { $0.taskSlotsPerNode }, Column("CREATED") { $0.creationTime }]) {
                BatchOperations.getPool($0.id)
            }
        }
    }

    /// `pool resize ID --target-dedicated-nodes N`.
    enum Resize: VerbDefinition {
        struct Target: IdentifiedTarget {
            @Argument(help: "The pool id.") var id: String
            @Option(name: [.customLong("target-dedicated-nodes"), .customLong("nodes")], parsing: .unconditional, help: "The new number of nodes.")
            var targetDedicatedNodes: Int
        }

        static let verb = Verb<Target>("resize", abstract: "Change a pool's node count.",
                                       done: { "resizing pool \($0.id) to \($0.targetDedicatedNodes) nodes" }) {
            try BatchOperations.resizePool($0.id, BatchPoolResizeOptions(targetDedicatedNodes: $0.targetDedicatedNodes))
        }
    }

    enum Delete: VerbDefinition {
        static let verb = Verb<PoolID>("delete", abstract: "Delete a pool (its running tasks are requeued).",
                                      says: "deleting pool") { BatchOperations.deletePool($0.id) }
    }
}
