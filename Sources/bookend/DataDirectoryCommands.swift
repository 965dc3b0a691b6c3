import ArgumentParser
import Bookend
import Foundation

/// `bookend backup`: an online copy of the database, taken while the daemon runs.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy <data-dir>/bookend.db to a file while the daemon runs (SQLite's online backup), fsynced and integrity-checked.",
        discussion: """
            Takes no lock: it reads one snapshot of the database in steps and never blocks the daemon's writer. The copy \
            is written to FILE.partial, checked with PRAGMA integrity_check and only then renamed to FILE (mode 0600: it \
            holds every command line and environment setting). Node folders are not copied; `bookend restore` explains \
            what happens to the work that was running.
            """)

    @OptionGroup var options: DataDirectoryOptions

    @Option(name: .customLong("to"), help: "The backup file to write, outside the data directory (replaced atomically if it exists).")
    var destination: String

    @Option(name: .customLong("pages-per-step"), parsing: .unconditional, help: "Database pages copied per step (at least 1).")
    var pagesPerStep: Int32 = 256

    func validate() throws {
        guard pagesPerStep >= 1 else { throw ValidationError("--pages-per-step must be at least 1, not \(pagesPerStep)") }
    }

    func run() async throws {
        let interactive = isatty(STDOUT_FILENO) == 1
        let (dataDirectory, destination, pagesPerStep) = (options.dataDirectory, destination, pagesPerStep)
        let started = Date()
        do {
            let report = try await onOwnThread {
                try Backup.backup(dataDirectory: dataDirectory, to: destination, pagesPerStep: max(pagesPerStep, 1)) { copied, total in
                    guard interactive, total > 0 else { return }
                    FileHandle.standardOutput.write(Data("\r\u{1B}[Kcopying: \(copied)/\(total) pages (\(copied * 100 / total)%)".utf8))
                }
            }
            if interactive { print() }
            print("backed up \(report.source) to \(report.destination)")
            print("  \(report.pages) pages, \(FileSystemSpace.human(report.bytes)), schema version \(report.schemaVersion), "
                + String(format: "%.1f s", Date().timeIntervalSince(started)))
            print("  fsynced; PRAGMA integrity_check: \(report.integrity.joined(separator: "; "))")
        } catch {
            if interactive { print() }
            throw CLIError("\(error)")
        }
    }
}

/// `bookend restore`: a backup placed in a new data directory.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Place a backup made by `bookend backup` in a new data directory, ready for `bookend serve`.",
        discussion: """
            The data directory must not hold a database yet. Node folders start empty under --nodes-dir (default \
            <data-dir>/nodes). Executions that were running when the backup was taken are treated as lost when the \
            daemon opens the directory: their tasks are requeued (requeueCount + 1) and job preparation runs again on \
            the node that next runs a task of the job. Completed work stays completed and is never run again; work \
            acknowledged after the backup was taken is not in it.
            """)

    @Option(name: .customLong("from"), help: "The backup file.")
    var source: String

    @OptionGroup var options: DataDirectoryOptions

    @Option(name: .customLong("nodes-dir"), help: "Where node folders will live (as for bookend serve). Default: <data-dir>/nodes.")
    var nodesDirectory: String?

    func run() async throws {
        let (source, dataDirectory, nodesDirectory) = (source, options.dataDirectory, nodesDirectory)
        do {
            let report = try await onOwnThread {
                try Backup.restore(from: source, dataDirectory: dataDirectory, nodesDirectory: nodesDirectory)
            }
            print("restored \(source) to \(report.database) (schema version \(report.schemaVersion))")
            print("  node folders: \(report.nodesDirectory) (\(report.nodes) nodes; were \(report.previousNodesDirectories.joined(separator: ", ")))")
            print("  \(report.lostExecutions) execution(s) that were running will be treated as lost and requeued when the daemon opens it")
            // The key is not in the database, so not in the backup: without the old one, serve makes a
            // new key and every client that signs with the old one is refused (AuthenticationFailed).
            print("  account key: not in the backup; pass the old one with --key-file (or copy it to \((dataDirectory as NSString).appendingPathComponent("account.key")), mode 0600), or serve makes a new key and clients with the old one are refused")
            print("next: bookend serve --data-dir \(dataDirectory)" + (nodesDirectory.map { " --nodes-dir \($0)" } ?? "") + " --key-file OLD-KEY-FILE")
        } catch {
            throw CLIError("\(error)")
        }
    }
}

/// `bookend doctor`: what is wrong with a data directory's set-up.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check a data directory's set-up: one line per check with OK, WARN or FAIL and a fix; exit status 1 on any FAIL.")

    @OptionGroup var options: DataDirectoryOptions

    /// The flags the daemon runs (or will run) with, so the check is of that set-up: the key file's
    /// mode, the node folders' file system and its free space, and Slurm when it is the provider.
    @OptionGroup var setup: DaemonSetupOptions

    @Option(name: [.customLong("format"), .customLong("output")], help: "table (for people) or json (for scripts).")
    var format: OutputFormat = .table

    func run() async throws {
        let minimum: DiskSpace?
        do {
            minimum = try setup.minFreeDisk.map { try DiskSpace(parsing: $0) }
        } catch {
            throw ValidationError("--min-free-disk: \(error)")
        }
        let doctorOptions = Doctor.Options(dataDirectory: options.dataDirectory, keyFile: setup.keyFile, nodesDirectory: setup.nodesDirectory,
            minFreeDisk: minimum, nodeProvider: setup.nodeProvider)
        let checks = try await onOwnThread { Doctor.run(doctorOptions) }
        switch format {
        case .table:
            printTable(titles: ["CHECK", "STATUS", "DETAIL", "FIX"], rows: checks.map { [$0.name, $0.status.rawValue, $0.detail, $0.fix] })
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(checks), as: UTF8.self))
        }
        if checks.contains(where: { $0.status == .fail }) { throw ExitCode(1) }
    }
}

/// Runs blocking work (file copies, fsync, SQLite) on a thread of its own rather than on one of the
/// cooperative pool's few threads.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
