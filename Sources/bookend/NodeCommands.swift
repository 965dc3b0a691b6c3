import ArgumentParser
import BatchModels
import Client

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "List, show and reboot the nodes of a pool.", subcommands: [List.self, Show.self, Reboot.self])

    struct List: ListCommand {
        static let configuration = CommandConfiguration(abstract: "List a pool's nodes.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The pool id.") var pool: String
        @Option(help: "An OData filter, e.g. \"state eq 'idle'\".") var filter: String?
        func request() -> BatchRequest<BatchNodeList> { BatchOperations.listNodes(pool, filter: filter) }
        static var columns: [Column<BatchNode>] {
            [Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("RUNNING") { $0.runningTasksCount },
             Column("RUN") { $0.totalTasksRun }, Column("SUCCEEDED") { $0.totalTasksSucceeded },
             Column("START TASK") { $0.startTaskInfo?.result }, Column("BOOTED") { $0.lastBootTime }]
        }
    }

    struct Show: ShowCommand {
        static let configuration = CommandConfiguration(abstract: "Show one node.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The pool id.") var pool: String
        @Argument(help: "The node id.") var node: String
        func request() -> BatchRequest<BatchNode> { BatchOperations.getNode(pool, node) }
        static var columns: [Column<BatchNode>] {
            [Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("SCHEDULING") { $0.schedulingState },
             Column("RUNNING") { $0.runningTasksCount }, Column("RUN") { $0.totalTasksRun }, Column("BOOTED") { $0.lastBootTime }]
        }
    }

    struct Reboot: ActionCommand {
        static let configuration = CommandConfiguration(abstract: "Reboot a node (its start task and, per job, preparation run again).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The pool id.") var pool: String
        @Argument(help: "The node id.") var node: String
        @Option(name: [.customLong("node-reboot-option"), .customLong("option")], help: "What happens to the node's running tasks.")
        var nodeRebootOption: BatchNodeRebootOption = .requeue
        func action() throws -> Action<NoContent> {
            Action(try BatchOperations.rebootNode(pool, node, BatchNodeRebootOptions(nodeRebootOption: nodeRebootOption))) { _ in
                "rebooting node \(node)"
            }
        }
    }
}
