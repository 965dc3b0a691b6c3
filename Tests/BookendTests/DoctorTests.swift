import Bookend
import Foundation
import SQLite
import TestSupport
import Testing

/// `bookend doctor`: each FAIL made by a real bad set-up, and a sound directory without any.
@Suite(.ownThread) struct DoctorTests {
    /// A migrated data directory, as `bookend migrate` leaves it.
    static func migrated() throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let data = directory.file("data")
        _ = try DataDirectory.openMigrated(data)
        return (directory, data)
    }

    static func check(_ name: String, in checks: [Doctor.Check]) throws -> Doctor.Check {
        try #require(checks.first { $0.name == name }, "no check named \(name) in \(checks.map(\.name))")
    }

    @Test func aSoundDirectoryHasNoFailure() throws {
        let (directory, data) = try Self.migrated()
        let checks = Doctor.run(Doctor.Options(dataDirectory: data, minFreeDisk: .bytes(1)))
        #expect(checks.filter { $0.status == .fail }.isEmpty, "\(checks)")
        #expect(Set(checks.map(\.name)).isSuperset(of: [
            "sqlite library", "journal mode", "schema version", "clock", "database size", "database mode", "lock", "task accounts",
            "free disk", "free inodes",
        ]))
        #expect(try Self.check("lock", in: checks).detail.contains("not held"))
        _ = directory
    }

    /// As root the file API serves what a task hard-linked into its folder: only the kernel's
    /// `fs.protected_hardlinks` keeps that to files the task could read anyway. Checked from the
    /// machine's own setting, and each other value says what to do.
    @Test func hardLinkProtectionIsCheckedAsRoot() throws {
        let (directory, data) = try Self.migrated()
        let machine = Doctor.protectedHardLinks()
        let check = try Self.check("hard links", in: Doctor.run(Doctor.Options(dataDirectory: data, minFreeDisk: .bytes(1), asRoot: true)))
        #expect(check.status == (machine == "1" ? .ok : .warn), "\(machine ?? "unreadable"): \(check)")
        for (setting, status) in [("1", Doctor.Status.ok), ("0", .warn), ("2", .warn)] as [(String?, Doctor.Status)] + [(nil, .warn)] {
            let checked = Doctor.hardLinkProtection(asRoot: true, setting: setting)
            #expect(checked.status == status, "\(setting ?? "nil"): \(checked)")
            if status == .warn { #expect(checked.fix.contains("protected_hardlinks")) }
        }
        #expect(Doctor.hardLinkProtection(asRoot: false, setting: "0").status == .ok, "not root: nothing is read as root")
        _ = directory
    }

    @Test func slurmIsCheckedOnlyWhenAskedForAndNamesAMissingCommand() throws {
        let (directory, data) = try Self.migrated()
        // A local directory without Slurm nodes: no Slurm check at all.
        #expect(!Doctor.run(Doctor.Options(dataDirectory: data)).contains { $0.name == "slurm" })
        // Asked for, with a PATH that holds no Slurm commands (an empty folder): a FAIL naming the first.
        let empty = directory.file("empty-bin")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let check = try Self.check("slurm", in: Doctor.run(Doctor.Options(dataDirectory: data, nodeProvider: .slurm, environment: ["PATH": empty])))
        #expect(check.status == .fail)
        #expect(check.detail.contains("sbatch is not on PATH (\(empty))"))
        #expect(check.fix.contains("slurm-client"))
    }

    @Test func aDatabaseOthersCanReadFails() throws {
        let (directory, data) = try Self.migrated()
        chmod(DataDirectory.databasePath(data), 0o666)
        let check = try Self.check("database mode", in: Doctor.run(Doctor.Options(dataDirectory: data)))
        #expect(check.status == .fail)
        #expect(check.detail.contains("0666"))
        #expect(check.fix.hasPrefix("chmod 600"))
        _ = directory
    }

    @Test func aKeyFileOthersCanReadFails() throws {
        let (directory, data) = try Self.migrated()
        let key = directory.file("account.key")
        #expect(FileManager.default.createFile(atPath: key, contents: Data("a2V5".utf8), attributes: [.posixPermissions: 0o644]))
        let check = try Self.check("key file mode", in: Doctor.run(Doctor.Options(dataDirectory: data, keyFile: key)))
        #expect(check.status == .fail)
        chmod(key, 0o600)
        #expect(try Self.check("key file mode", in: Doctor.run(Doctor.Options(dataDirectory: data, keyFile: key))).status == .ok)
    }

    @Test func aSchemaNewerThanTheBinaryFailsAndAnOlderOneWarns() throws {
        let (directory, data) = try Self.migrated()
        do {
            let connection = try Connection(path: DataDirectory.databasePath(data))
            try connection.execute("PRAGMA user_version = \(Schema.version + 1)")
        }
        let newer = try Self.check("schema version", in: Doctor.run(Doctor.Options(dataDirectory: data)))
        #expect(newer.status == .fail)
        #expect(newer.detail.contains("\(Schema.version + 1)"))
        do {
            let connection = try Connection(path: DataDirectory.databasePath(data))
            try connection.execute("PRAGMA user_version = \(Schema.version - 1)")
        }
        #expect(try Self.check("schema version", in: Doctor.run(Doctor.Options(dataDirectory: data))).status == .warn)
        _ = directory
    }

    @Test func aLockHeldByAnotherProgramFailsNamingIt() async throws {
        let (directory, data) = try Self.migrated()
        let lock = DataDirectoryLock.path(data)
        let pidFile = directory.file("holder.pid")
        let stop = directory.file("stop")
        // A real second process holds the lock: flock(1), which takes it and then runs a shell that
        // writes flock's pid and waits for the stop file.
        async let holder = run("/usr/bin/flock", ["--exclusive", lock, "/bin/sh", "-c",
            "echo $PPID > \(pidFile).tmp && mv \(pidFile).tmp \(pidFile); while [ ! -e \(stop) ]; do sleep 0.05; done"])
        try await withCleanup({ _ = FileManager.default.createFile(atPath: stop, contents: nil) }) {
            try await EngineHarness.waitUntil("flock holds the lock") { FileManager.default.fileExists(atPath: pidFile) }
            let pid = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
            let check = try Self.check("lock", in: Doctor.run(Doctor.Options(dataDirectory: data)))
            #expect(check.status == .fail)
            #expect(check.detail.contains("pid \(pid)"))
            #expect(check.detail.contains("flock"))
            #expect(check.fix.contains("stop pid \(pid)"))
        }
        #expect(try await holder.status == 0)
        // Once it has let go, nothing holds the lock.
        #expect(try Self.check("lock", in: Doctor.run(Doctor.Options(dataDirectory: data))).status == .ok)
    }

    @Test func aLockHeldByAnEngineIsReportedAsRunning() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let check = try Self.check("lock", in: Doctor.run(Doctor.Options(dataDirectory: h.directory)))
            #expect(check.status == .ok)
            #expect(check.detail.contains("pid \(getpid())"))
        }
    }

    @Test func storedTimesAheadOfTheClockFail() throws {
        let (directory, data) = try Self.migrated()
        do {
            let connection = try Connection(path: DataDirectory.databasePath(data))
            try connection.run("INSERT INTO event (time, kind) VALUES (?, 'pool.created')", [Timestamp.string(Date().addingTimeInterval(3_600))])
        }
        let check = try Self.check("clock", in: Doctor.run(Doctor.Options(dataDirectory: data)))
        #expect(check.status == .fail)
        #expect(check.detail.contains("ahead"))
        _ = directory
    }

    @Test func aJournalModeOtherThanWALFails() async throws {
        let (directory, data) = try Self.migrated()
        let result = try await run("/usr/bin/sqlite3", [DataDirectory.databasePath(data), "PRAGMA journal_mode = DELETE"])
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "delete")
        let check = try Self.check("journal mode", in: Doctor.run(Doctor.Options(dataDirectory: data)))
        #expect(check.status == .fail)
        #expect(check.detail.contains("delete"))
        _ = directory
    }

    @Test func tooLittleFreeDiskFails() throws {
        let (directory, data) = try Self.migrated()
        let space = try #require(FileSystemSpace.of(data))
        let check = try Self.check("free disk", in: Doctor.run(Doctor.Options(dataDirectory: data, minFreeDisk: .bytes(space.totalBytes))))
        #expect(check.status == .fail)
        #expect(try Self.check("free disk", in: Doctor.run(Doctor.Options(dataDirectory: data, minFreeDisk: .bytes(1)))).status == .ok)
        _ = directory
    }

    @Test func aMissingDatabaseFails() throws {
        let directory = try TemporaryDirectory()
        let check = try Self.check("database", in: Doctor.run(Doctor.Options(dataDirectory: directory.file("nothing"))))
        #expect(check.status == .fail)
        #expect(check.fix.contains("bookend migrate"))
    }

    @Test func nodeFoldersTaskAccountsCannotReachFailAsRoot() throws {
        let (directory, data) = try Self.migrated()
        let closed = directory.file("closed")
        try FileManager.default.createDirectory(atPath: closed + "/nodes", withIntermediateDirectories: true)
        chmod(closed, 0o700)
        let check = try Self.check("task accounts", in: Doctor.run(Doctor.Options(dataDirectory: data, nodesDirectory: closed + "/nodes", asRoot: true)))
        #expect(check.status == .fail)
        #expect(check.detail.contains(closed))
        #expect(try Self.check("task accounts", in: Doctor.run(Doctor.Options(dataDirectory: data, asRoot: true))).status == .ok)
    }

    /// A data directory in a private folder whose daemon keeps its nodes elsewhere (`--nodes-dir`):
    /// without `--nodes-dir`, doctor checks the folders the live nodes are in, not the default
    /// under the private data directory (which no node uses), and finds nothing wrong.
    @Test func withoutNodesDirDoctorChecksWhereTheLiveNodesAre() async throws {
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let closed = directory.file("closed")
        try FileManager.default.createDirectory(atPath: closed, withIntermediateDirectories: true)
        chmod(closed, 0o700)
        let data = closed + "/data"
        let nodes = directory.file("nodes")
        let engine = try await Engine.open(dataDirectory: data, configuration: EngineConfiguration(nodesDirectory: nodes, tickInterval: .milliseconds(100)))
        _ = try await engine.createPool(PoolSpec(id: "p", targetDedicatedNodes: 1))
        try await engine.wait(timeout: .seconds(60)) { try $0.nodes(poolID: "p").first?.state == .idle }
        await engine.shutdown()
        let check = try Self.check("task accounts", in: Doctor.run(Doctor.Options(dataDirectory: data, asRoot: true)))
        #expect(check.status == .ok, "\(check.detail)")
        #expect(check.detail.contains(nodes), "\(check.detail)")
        // Named explicitly, the private default is still checked, and fails.
        let explicit = try Self.check("task accounts", in: Doctor.run(Doctor.Options(dataDirectory: data, nodesDirectory: data + "/nodes", asRoot: true)))
        #expect(explicit.status == .fail)
    }

    /// The command: a table by default, JSON on request, and exit status 1 on any FAIL.
    @Test func theCommandExitsNonZeroOnAFailure() async throws {
        let binary = Repository.path(".build/debug/bookend")
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        let (directory, data) = try Self.migrated()
        let sound = try await run(binary, ["doctor", "--data-dir", data, "--min-free-disk", "1"])
        #expect(sound.status == 0, "\(sound.stdout)\(sound.stderr)")
        #expect(sound.stdout.hasPrefix("CHECK"))
        chmod(DataDirectory.databasePath(data), 0o644)
        let failing = try await run(binary, ["doctor", "--data-dir", data, "--min-free-disk", "1", "--format", "json"])
        #expect(failing.status == 1)
        let checks = try JSONDecoder().decode([Doctor.Check].self, from: Data(failing.stdout.utf8))
        #expect(checks.first { $0.name == "database mode" }?.status == .fail)
        _ = directory
    }
}
