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

/// Migration 10 rewrites `IN (…)` CHECKs of three or more values as OR chains, because SQLite builds a
/// temporary table for such a list on every row it checks.
@Suite struct CheckFormTests {
    static let rebuilt = ["pool", "node", "job", "task", "task_count", "job_node", "execution"]

    /// A CHECK with a constant list of three or more values, the form that costs a table per row.
    static func listChecks(in sql: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: #"\w+\s+(NOT\s+)?IN\s*\(\s*'[^']*'\s*(,\s*'[^']*'\s*){2,}\)"#, options: [.caseInsensitive])
        return pattern.matches(in: sql, range: NSRange(sql.startIndex..., in: sql)).map { (sql as NSString).substring(with: $0.range) }
    }

    @Test func noTableChecksAColumnAgainstAListOfThreeOrMore() throws {
        let data = try MigratedDirectory()
        let tables = try data.connection.query("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql IS NOT NULL")
        #expect(tables.count >= Self.rebuilt.count)
        for table in tables {
            let name = table[0].string ?? "", sql = table[1].string ?? ""
            #expect(Self.listChecks(in: sql).isEmpty, "\(name): \(Self.listChecks(in: sql))")
        }
        // What the engine runs: storing a task and its count, launching an execution, changing a state.
        for statement in [
            "INSERT INTO task (job_pk, id, command_line, max_task_retry_count, state, creation_time, last_modified, state_transition_time, e_tag) VALUES (1, 't', 'true', 0, 'active', '', '', '', '')",
            "INSERT INTO task_count (job_pk, bucket, tasks, slots) VALUES (1, 'active', 1, 1) ON CONFLICT (job_pk, bucket) DO UPDATE SET tasks = tasks + 1",
            "INSERT INTO execution (kind, node_pk, attempt, state, task_dir, status_dir, start_time) VALUES ('task', 1, 1, 'starting', '', '', '')",
            "UPDATE task SET state = 'running', previous_state = state WHERE pk = 1",
            "UPDATE execution SET state = 'completed', kill_reason = 'timeout' WHERE pk = 1",
            "UPDATE node SET state = 'running' WHERE pk = 1",
            "UPDATE job SET state = 'terminating', previous_state = state WHERE pk = 1",
        ] {
            let program = try data.connection.query("EXPLAIN \(statement)").compactMap { $0[1].string }
            #expect(!program.contains("OpenEphemeral"), "\(statement) builds a temporary table")
        }
    }

    @Test func theListCheckFinderFindsTheFormEarlierVersionsUsed() throws {
        let nine = try #require(Schema.migrations.first { $0.version == 1 })
        #expect(Self.listChecks(in: nine.sql).contains("state IN ('active', 'preparing', 'running', 'completed')"))
        #expect(Self.listChecks(in: "CHECK (x IN ('a', 'b'))").isEmpty)
    }

    /// A file of some size: the rebuild's statements journal megabytes of pages. (With SQLite's
    /// statement-journal spill threshold raised to 256 KiB or more, SQLite 3.40 failed this upgrade
    /// with SQLITE_FULL; the sample rows alone were too few to show it.)
    @Test func migrationTenUpgradesAFileOfTenThousandTasks() throws {
        let directory = try TemporaryDirectory()
        let connection = try Connection(path: DataDirectory.databasePath(directory.path))
        #expect(try connection.migrate(Array(Schema.migrations.prefix(9))) == 9)
        try SampleData.insert(into: connection, version: 9)
        try connection.transaction { db in
            try db.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
                INSERT INTO task (job_pk, id, command_line, spec, max_task_retry_count, state, creation_time, last_modified,
                    state_transition_time, e_tag)
                SELECT (SELECT pk FROM job WHERE id = 'nightly'), 'bulk-' || i, '/bin/true',
                    '{"commandLine":"/bin/true","id":"bulk-' || i || '","userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"pool"}}}',
                    0, 'active', '2026-11-30T00:00:00.000Z', '2026-11-30T00:00:00.000Z', '2026-11-30T00:00:00.000Z', '0x' || i
                FROM n;
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
                INSERT INTO event (time, kind, job_id, task_id, to_state)
                SELECT '2026-11-30T00:00:00.000Z', 'task.added', 'nightly', 'bulk-' || i, 'active' FROM n;
                """)
        }
        let tasks = try connection.count("task"), events = try connection.count("event")
        #expect(tasks == SampleData.taskCount + 10_000)
        #expect(try connection.migrate(Schema.migrations) == Schema.version)
        #expect(try connection.count("task") == tasks)
        #expect(try connection.count("event") == events)
        #expect(try connection.scalar("SELECT tasks FROM task_count c JOIN job j ON j.pk = c.job_pk WHERE j.id = 'nightly' AND c.bucket = 'active'")
            .int ?? 0 >= 10_000)
        #expect(try connection.values("PRAGMA integrity_check") == [[.text("ok")]])
        #expect(try connection.values("PRAGMA foreign_key_check").isEmpty)
    }

    /// Every row, key and counter survives the rebuild; nothing that refers to a rebuilt table is
    /// deleted with it; the CHECKs still refuse what they refused.
    @Test func migrationTenKeepsEveryRowAndStillRefusesWhatVersionNineRefused() throws {
        let directory = try TemporaryDirectory()
        let connection = try Connection(path: DataDirectory.databasePath(directory.path))
        #expect(try connection.migrate(Array(Schema.migrations.prefix(9))) == 9)
        try SampleData.insert(into: connection, version: 9)
        try connection.run("INSERT INTO task_dependency (task_pk, depends_on_id) SELECT pk, 'other' FROM task")
        // A deleted newest execution: its key must not come back.
        let newest = try #require(try connection.scalar("SELECT max(pk) FROM execution").int64)
        try connection.run("DELETE FROM execution WHERE pk = ?", [newest])
        let read = Self.rebuilt + ["task_dependency", "event", "sqlite_sequence"]
        let views = ["job_history", "task_history", "prep_release_status", "job_blockage", "task_blockage"]
        func snapshot() throws -> [String: [[SQLiteValue]]] {
            var rows: [String: [[SQLiteValue]]] = [:]
            // Sorted here, whole rows, since views have no key to order by.
            for name in read + views { rows[name] = try connection.values("SELECT * FROM \(name)").sorted { "\($0)" < "\($1)" } }
            return rows
        }
        func schemaObjects() throws -> [[SQLiteValue]] {
            try connection.values("SELECT type, name, tbl_name FROM sqlite_schema WHERE type <> 'table' ORDER BY type, name")
        }
        let before = try snapshot(), objects = try schemaObjects()
        #expect(before["task_dependency"]?.count == SampleData.taskCount)

        // Up to ten only: later versions add indexes of their own.
        #expect(try connection.migrate(Array(Schema.migrations.prefix(10))) == 10)
        let after = try snapshot()
        for name in read + views { #expect(after[name] == before[name], "\(name) is unchanged") }
        #expect(try schemaObjects() == objects, "every index, trigger and view is back")
        #expect(try connection.scalar("PRAGMA foreign_keys") == .integer(1), "foreign keys are on again")
        #expect(try connection.values("PRAGMA foreign_key_check").isEmpty)
        #expect(try connection.values("PRAGMA integrity_check") == [[.text("ok")]])

        // Keys continue past the deleted one.
        try connection.run(
            """
            INSERT INTO execution (kind, node_pk, job_pk, task_pk, attempt, state, task_dir, status_dir, start_time)
            SELECT kind, node_pk, job_pk, task_pk, attempt, 'starting', task_dir, '', start_time FROM execution LIMIT 1
            """)
        #expect(connection.lastInsertRowID > newest)
        // The same values are refused, and the triggers still count.
        let task = try #require(try connection.scalar("SELECT pk FROM task WHERE state = 'active' LIMIT 1").int64)
        for refused in [
            "UPDATE task SET state = 'bogus' WHERE pk = \(task)", "UPDATE task SET previous_state = 'Active' WHERE pk = \(task)",
            "UPDATE execution SET kill_reason = 'bogus'", "UPDATE node SET state = 'bogus'", "UPDATE job SET state = 'bogus'",
            "UPDATE job_node SET release_state = 'bogus'", "UPDATE pool SET allocation_state = 'bogus'",
            "UPDATE task_count SET bucket = 'bogus'",
        ] {
            #expect(throws: SQLiteError.self, "\(refused)") { try connection.run(refused) }
        }
        let job = try #require(try connection.scalar("SELECT job_pk FROM task WHERE pk = ?", [task]).int64)
        let active = try connection.scalar("SELECT tasks FROM task_count WHERE job_pk = ? AND bucket = 'active'", [job]).int64 ?? 0
        try connection.run("DELETE FROM task WHERE pk = ?", [task])
        #expect(try connection.scalar("SELECT tasks FROM task_count WHERE job_pk = ? AND bucket = 'active'", [job]).int64 == active - 1)
        #expect(try connection.scalar("SELECT count(*) FROM task_dependency WHERE task_pk = ?", [task]) == .integer(0), "cascades are back on")
    }
}
