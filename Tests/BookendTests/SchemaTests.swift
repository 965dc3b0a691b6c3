import Bookend
import Foundation
import SQLite
import Testing

@Suite struct SchemaTests {
    @Test func migrationsAreNumberedOneToNAndMatchTheFilesInTheRepository() throws {
        let versions = Schema.migrations.map(\.version)
        #expect(!versions.isEmpty)
        #expect(versions == Array(1...Schema.version))
        let files = try FileManager.default.contentsOfDirectory(atPath: Repository.path("migrations"))
            .filter { $0.hasSuffix(".sql") }
        #expect(Schema.migrations.count == files.count, "every migrations/*.sql is embedded (rebuild if not)")
        #expect(Set(files.compactMap { Migration(file: $0, sql: "")?.version }) == Set(versions))
    }

    @Test func migratingAnEmptyDataDirectoryReachesTheCurrentVersion() throws {
        let directory = try TemporaryDirectory()
        let dataDirectory = directory.file("data")
        let (connection, version) = try DataDirectory.openMigrated(dataDirectory)
        #expect(version == Schema.version)
        #expect(try connection.userVersion() == Schema.version)
        #expect(FileManager.default.fileExists(atPath: DataDirectory.databasePath(dataDirectory)))
        #expect(try connection.scalar("PRAGMA journal_mode") == .text("wal"))
        #expect(try connection.scalar("PRAGMA foreign_keys") == .integer(1))
        #expect(try connection.values("PRAGMA integrity_check") == [[.text("ok")]])
        #expect(try connection.values("PRAGMA foreign_key_check").isEmpty)
        let views = try connection.query("SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY name").compactMap { $0[0].string }
        #expect(views == ["job_blockage", "job_history", "prep_release_status", "task_blockage", "task_history"])
        for view in views {
            #expect(try connection.query("SELECT * FROM \(view)").isEmpty)
        }
        // Opening again is a no-op.
        #expect(try DataDirectory.openMigrated(dataDirectory).version == Schema.version)
    }

    @Test func viewsReturnTheSampleRows() throws {
        let data = try MigratedDirectory()
        try SampleData.insert(into: data.connection, version: Schema.version)
        #expect(try data.connection.count("job_history") == SampleData.jobCount)
        #expect(try data.connection.count("task_history") == 6)  // task executions only
        #expect(try data.connection.count("prep_release_status") == SampleData.jobNodeCount + 1)
        #expect(try data.connection.values("PRAGMA integrity_check") == [[.text("ok")]])
    }

    @Test(arguments: 1..<max(Schema.version, 1))
    func upgradeFromEarlierVersionKeepsRows(_ version: Int) throws {
        let directory = try TemporaryDirectory()
        let path = DataDirectory.databasePath(directory.path)
        let tables = ["pool", "node", "job", "task", "execution", "job_node", "event", "task_count"]
        var before: [String: Int] = [:]
        do {
            let connection = try Connection(path: path)
            #expect(try connection.migrate(Array(Schema.migrations.prefix(version))) == version)
            try SampleData.insert(into: connection, version: version)
            for table in tables { before[table] = try connection.count(table) }
        }
        #expect(before["task"] == SampleData.taskCount && before["event"] == SampleData.eventCount)

        let (connection, migrated) = try DataDirectory.openMigrated(directory.path)
        #expect(migrated == Schema.version)
        for table in tables {
            #expect(try connection.count(table) == before[table], "\(table) keeps its rows")
        }
        #expect(try connection.values("PRAGMA integrity_check") == [[.text("ok")]])
        #expect(try connection.values("PRAGMA foreign_key_check").isEmpty)
        #expect(
            try connection.values("SELECT job_id, state, completed, succeeded, failed FROM job_history ORDER BY job_id") == [
                [.text("etl"), .text("terminating"), .integer(1), .integer(0), .integer(1)],
                [.text("nightly"), .text("active"), .integer(0), .integer(0), .integer(0)],
                [.text("render"), .text("completed"), .integer(3), .integer(2), .integer(1)],
            ])
        #expect(try connection.count("task_history") == 6)
        #expect(try connection.scalar("SELECT count(*) FROM prep_release_status WHERE job_id = 'render'") == .integer(2))
    }
}
