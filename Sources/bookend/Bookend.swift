import ArgumentParser
import Bookend
import Foundation

@main
struct BookendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bookend",
        abstract: "A self-hosted batch engine with Azure Batch jobs, tasks, and job preparation and release tasks.",
        subcommands: [Migrate.self, SampleCommand.self, SQLCommand.self, Serve.self, BackupCommand.self, RestoreCommand.self, DoctorCommand.self, PoolCommand.self, NodeCommand.self, JobCommand.self, TaskCommand.self, WorkloadCommand.self, UILinkCommand.self, GenerateManual.self]
    )
}

/// Options shared by commands that work on a data directory.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The data directory; the database is <data-dir>/bookend.db.")
    var dataDirectory: String
}

/// How the daemon runs over its data directory. `bookend serve` takes these; `bookend doctor` takes the
/// same flags, so what it checks is the set-up the daemon runs with.
struct DaemonSetupOptions: ParsableArguments {
    @Option(name: .customLong("key-file"), help: "File holding the base64 account key. Default: <data-dir>/account.key, which serve generates on first start (loopback only).")
    var keyFile: String?

    @Option(name: .customLong("node-provider"), help: "Where nodes of pools that do not say (pool metadata bookend.nodeProvider) run: local (folders and processes on this machine, the default) or slurm (each node a Slurm allocation, each execution a job step; see docs/slurm.md).")
    var nodeProvider: NodeProviderKind = .local

    @Option(name: .customLong("nodes-dir"), help: "Where node folders live. Default: <data-dir>/nodes. As root, task accounts must be able to reach it.")
    var nodesDirectory: String?

    // Unconditional: "-5G" is a value to refuse with a reason, not a flag ArgumentParser cannot find.
    @Option(name: .customLong("min-free-disk"), parsing: .unconditional, help: "Keep this much free on the node folders' file system (e.g. 10% or 5G): below it, completed tasks' folders are deleted before their retention time, oldest first. Default: off for serve; doctor checks against 5%.")
    var minFreeDisk: String?
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or upgrade <data-dir>/bookend.db and print its schema version.")

    @OptionGroup var options: DataDirectoryOptions

    func run() async throws {
        do {
            try DataDirectory.prepare(options.dataDirectory)
            // Not under a running engine: it migrates on open itself, and owns the file while it runs.
            let lock = try DataDirectoryLock(directory: options.dataDirectory)
            defer { lock.release() }
            let (_, version) = try DataDirectory.openMigrated(options.dataDirectory) { from, to in
                FileHandle.standardError.write(Data("upgrading from schema version \(from) to \(to); a large file takes a while\n".utf8))
            }
            print("\(DataDirectory.databasePath(options.dataDirectory)): schema version \(version)")
        } catch {
            throw CLIError("\(error)")
        }
    }
}

/// A one-line error for people: printed as `error: <message>`, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
