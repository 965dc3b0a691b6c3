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
            let (_, version) = try DataDirectory.openMigrated(options.dataDirectory)
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
