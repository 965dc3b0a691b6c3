import Bookend
import Foundation
import SQLite
import TestSupport
import Testing

/// `historyRetention`: the events of deleted jobs go once the retention has passed, in small
/// transactions, and the file shrinks; live jobs and the views are untouched.
@Suite struct HistoryRetentionTests {
    static let tasksPerJob = 60

    @Test func deletedJobsHistoryIsPrunedAndTheFileShrinks() async throws {
        let h = try await EngineHarness.make(configuration: EngineConfiguration(
            tickInterval: .milliseconds(100), historyRetention: .milliseconds(200)))
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 2, slots: 8)
            let deleted = ["old1", "old2", "old3", "old4"]
            for job in deleted + ["live"] {
                try await h.engine.createJob(JobSpec(id: job, poolID: "pool", jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"),
                    jobReleaseTask: JobReleaseTask(commandLine: "/bin/true")))
                try await h.engine.addTasks(jobID: job, (1...Self.tasksPerJob).map {
                    TaskSpec(id: "t\($0)", commandLine: "/bin/true", environmentSettings: [EnvironmentSetting(name: "PAD", value: String(repeating: "x", count: 2000))])
                })
            }
            // A generous bound: 300 tasks on a machine shared with other test suites.
            for job in deleted + ["live"] { try await h.engine.waitForTasks(jobID: job, timeout: .seconds(600)) }
            let database = DataDirectory.databasePath(h.directory)
            let reader = try Connection(path: database, options: ConnectionOptions(readOnly: true, create: false))
            #expect(try reader.scalar("PRAGMA auto_vacuum").int == AutoVacuum.incremental.rawValue)
            let pagesBefore = try #require(try reader.scalar("PRAGMA page_count").int)
            let liveEvents = try reader.query("SELECT * FROM event WHERE job_id = 'live' ORDER BY seq").map(\.values)
            let deletedEvents = try #require(try reader.scalar("SELECT count(*) FROM event WHERE job_id LIKE 'old%'").int)
            #expect(deletedEvents > 4 * Self.tasksPerJob * 2, "each task left events")

            // A live job's events stay append-only whatever the retention.
            let writer = try Connection(path: database, options: ConnectionOptions(create: false))
            let refused = #expect(throws: SQLiteError.self) { try writer.run("DELETE FROM event WHERE job_id = 'live'") }
            #expect(refused?.message == "the event log is append-only")

            for job in deleted { try await h.engine.deleteJob(id: job) }
            for job in deleted { try await h.waitForJobDeletion(job) }
            try await h.engine.wait(timeout: .seconds(60)) { _ in
                try h.sqlOnCallingThread("SELECT count(*) FROM event WHERE job_id LIKE 'old%'") == [["0"]]
            }
            try await h.engine.wait(timeout: .seconds(60)) { engine in try engine.housekeepingReport().deletedJobsPruned == 4 }
            let report = try h.engine.housekeepingReport()
            // Every event of the four jobs went, their deletions' events included, and nothing else: the
            // log's rows number one per sequence number ever given, less those pruned.
            #expect(report.historyEventsPruned > deletedEvents + 4)
            let remaining = try reader.query("SELECT count(*), max(seq) FROM event")
            #expect(remaining.first.map { ($0[0].int ?? 0) + report.historyEventsPruned } == remaining.first?[1].int)

            // The live job and its history are untouched, and the views answer on what remains.
            #expect(try reader.query("SELECT * FROM event WHERE job_id = 'live' ORDER BY seq").map(\.values) == liveEvents)
            #expect(try reader.scalar("SELECT count(*) FROM job_history WHERE job_id = 'live'").int == 1)
            #expect(try reader.scalar("SELECT count(*) FROM task_history WHERE job_id = 'live'").int == Self.tasksPerJob)
            #expect(try reader.scalar("SELECT count(*) FROM prep_release_status WHERE job_id = 'live'").int == 2, "one row per node")
            // Nothing is blocked: both blockage views answer, with no rows.
            #expect(try reader.scalar("SELECT count(*) FROM job_blockage").int == 0)
            #expect(try reader.scalar("SELECT count(*) FROM task_blockage").int == 0)
            #expect(try reader.scalar("SELECT count(*) FROM job_history WHERE job_id LIKE 'old%'").int == 0)

            // The freed pages went back to the file system: once the WAL is checkpointed, the file is smaller.
            try await h.engine.wait(timeout: .seconds(60)) { _ in
                Int(try h.sqlOnCallingThread("PRAGMA freelist_count").first?.first ?? "") ?? .max < 50
            }
            try writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            let pagesAfter = try #require(try reader.scalar("PRAGMA page_count").int)
            let pageSize = try #require(try reader.scalar("PRAGMA page_size").int)
            #expect(pagesAfter < pagesBefore / 2, "\(pagesBefore) pages before, \(pagesAfter) after")
            let fileSize = try #require(try FileManager.default.attributesOfItem(atPath: database)[.size] as? Int)
            #expect(fileSize < pagesBefore * pageSize / 2, "the file itself is smaller: \(fileSize) bytes")
            #expect(try reader.integrityCheck() == ["ok"])
        }
    }

    @Test func historyOfADeletedJobIsKeptWithinTheRetention() async throws {
        let h = try await EngineHarness.make(configuration: EngineConfiguration(tickInterval: .milliseconds(100), historyRetention: .seconds(3600)))
        try await withCleanup({ await h.finish() }) {
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "gone", poolID: "pool"))
            try await h.engine.addTask(jobID: "gone", TaskSpec(id: "t", commandLine: "/bin/true"))
            try await h.waitForTasks("gone")
            try await h.engine.deleteJob(id: "gone")
            try await h.waitForJobDeletion("gone")
            // Passes ran after the deletion (this job's task ran to completion in one).
            try await h.dispatchSentinel()
            #expect(try await h.sql("SELECT count(*) FROM event WHERE job_id = 'gone' AND kind = 'job.deleted'") == [["1"]])
            #expect(try h.engine.housekeepingReport().historyEventsPruned == 0)
        }
    }

    static let periods: [(String, Duration)] = [
        ("7d", .seconds(604_800)), ("12h", .seconds(43_200)), ("90m", .seconds(5_400)), ("45s", .seconds(45)),
        ("2w", .seconds(1_209_600)), ("P30D", .seconds(2_592_000)), ("PT1.5S", .milliseconds(1_500)), ("p1dt1h", .seconds(90_000)),
    ]

    @Test(arguments: periods)
    func retentionPeriodsParse(_ text: String, _ expected: Duration) throws {
        #expect(try RetentionPeriod.parse(text) == expected)
    }

    @Test func foreverKeepsHistory() throws {
        #expect(try RetentionPeriod.parse("forever") == nil)
        #expect(try RetentionPeriod.parse(ISODuration.unlimited) == nil)
    }

    @Test(arguments: ["", "7", "d", "-1d", "7y", "P", "PT", "seven days"])
    func malformedRetentionPeriodsAreRefused(_ text: String) {
        #expect(throws: RetentionPeriod.ParseError.self) { try RetentionPeriod.parse(text) }
    }

    @Test func anUpgradedDatabaseGetsIncrementalAutoVacuum() throws {
        let directory = try TemporaryDirectory()
        let path = DataDirectory.databasePath(directory.path)
        do {
            let connection = try Connection(path: path)
            try connection.migrate(Array(Schema.migrations.prefix(7)))
            #expect(try connection.scalar("PRAGMA auto_vacuum").int == AutoVacuum.none.rawValue)
        }
        let (connection, version) = try DataDirectory.openMigrated(directory.path)
        #expect(version == Schema.version)
        #expect(try connection.scalar("PRAGMA auto_vacuum").int == AutoVacuum.incremental.rawValue)
        #expect(try connection.integrityCheck() == ["ok"])
    }
}
