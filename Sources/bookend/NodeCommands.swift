import ArgumentParser
import BatchModels
import Client

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "List, show and reboot the nodes of a pool.", subcommands: [ListCommand<List>.self, ShowCommand<Show>.self, VerbCommand<Reboot>.self, ListCommand<Files>.self])

    enum List: ListDefinition {
        static var listing: Listing<NodesOfPool, BatchNode> {
            Listing(abstract: "List a pool's nodes.", filterExample: "state eq 'idle'", columns: [
                Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("RUNNING") { $0.runningTasksCount },
                Column("RUN") { $0.totalTasksRun }, Column("SUCCEEDED") { $0.totalTasksSucceeded },
                Column("START TASK") { $0.startTaskInfo?.result }, Column("BOOTED") { $0.lastBootTime }]) {
                BatchOperations.listNodes($0.pool, filter: $1)
            }
        }
    }

    enum Show: ShowDefinition {
        static var showing: Showing<NodePath, BatchNode> {
            Showing(abstract: "Show one node.", columns: [
                Column("ID") { $0.id }, Column("STATE") { $0.state }, Column("SCHEDULING") { $0.schedulingState },
                Column("RUNNING") { $0.runningTasksCount }, Column("RUN") { $0.totalTasksRun }, Column("BOOTED") { $0.lastBootTime }]) {
                BatchOperations.getNode($0.pool, $0.node)
            }
        }
    }

    enum Files: ListDefinition {
        struct Target: ParsableArguments {
            @Argument(help: "The pool id.") var pool: String
            @Argument(help: "The node id.") var node: String
            @Flag(help: "List what is in its subfolders too (shared/..., workitems/...).") var recursive = false
        }

        static var listing: Listing<Target, BatchNodeFile> {
            Listing("files", abstract: "List the files of a node's folder (shared/, startup/, workitems/).",
                    filterExample: "startswith(name,'shared/')", columns: TaskCommand.Files.columns) {
                BatchOperations.listNodeFiles($0.pool, $0.node, recursive: $0.recursive, filter: $1)
            }
        }
    }

    /// `node reboot POOL NODE --node-reboot-option requeue`.
    enum Reboot: VerbDefinition {
        struct Target: ParsableArguments {
            @Argument(help: "The pool id.") var pool: String
            @Argument(help: "The node id.") var node: String
            @Option(name: [.customLong("node-reboot-option"), .customLong("option")], help: "What happens to the node's running tasks.")
            var nodeRebootOption: BatchNodeRebootOption = .requeue
        }

        static let verb = Verb<Target>("reboot", abstract: "Reboot a node (its start task and, per job, preparation run again).",
                                       done: { "rebooting node \($0.node)" }) {
            try BatchOperations.rebootNode($0.pool, $0.node, BatchNodeRebootOptions(nodeRebootOption: $0.nodeRebootOption))
        }
    }
}
