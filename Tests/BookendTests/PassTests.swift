@testable import Bookend
import Foundation
import SQLite
import Supervisor
import TestSupport
import Testing

/// The scheduler pass on a real engine: what it costs in write transactions, and that one job whose
/// rows do not decode is skipped without holding back the rest of the pass.
@Suite struct PassTests {
    /// Tasks run one after another on one slot: each pass that sees a task end records that exit and
    /// dispatches the next task in one transaction, then records the new process in one more. Before
    /// the pass was one transaction, the exit, the dispatch and the record committed separately (three
    /// or more per task).
    @Test func sequentialTasksCostAtMostTwoWriteTransactionsEach() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            let tasks = 20
            let before = await h.engine.writeTransactions
            // One transaction adds them all.
            _ = try await h.engine.addTasks(jobID: "job", (0..<tasks).map { TaskSpec(id: "t\($0)", commandLine: "/bin/true") })
            try await h.waitForTasks("job")
            try await h.engine.wait(timeout: .seconds(60)) { engine in try engine.nodes(poolID: "pool").allSatisfy { $0.state == .idle } }
            let writes = await h.engine.writeTransactions - before
            // The ingest, 2 per task, and the node going idle after the last.
            #expect(writes <= 1 + 2 * tasks + 1, "\(writes) write transactions for \(tasks) sequential tasks")
            #expect(try await h.sql("SELECT count(*) FROM task WHERE result = 'success'") == [["\(tasks)"]])
        }
    }

    /// Before any pool exists (so nothing is dispatched while its row is changed underneath): a job
    /// "broken", first in dispatch order, with one task and a stored preparation task that no longer
    /// decodes, so its dispatch fails in every pass; and a job "fine" with `fineTasks`.
    static func brokenJobBeforeFineJob(_ h: EngineHarness, fineTasks: [TaskSpec]) async throws {
        try await h.engine.createJob(JobSpec(id: "broken", poolID: "pool", jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"),
            priority: 10))
        try await h.engine.addTask(jobID: "broken", TaskSpec(id: "t", commandLine: "/bin/true"))
        let db = try Connection(path: DataDirectory.databasePath(h.directory))
        try db.run(#"UPDATE job SET job_preparation_task = '{"commandLine":5}' WHERE id = 'broken'"#)
        try await h.engine.createJob(JobSpec(id: "fine", poolID: "pool"))
        _ = try await h.engine.addTasks(jobID: "fine", fineTasks)
    }

    /// A job whose stored preparation task no longer decodes fails its own dispatch (logged, rolled
    /// back to its savepoint); the job behind it in dispatch order still runs its tasks.
    @Test func aJobThatCannotBeReadIsSkippedAndTheJobsBehindItRun() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await Self.brokenJobBeforeFineJob(h, fineTasks: [TaskSpec(id: "t", commandLine: "/bin/true")])
            try await h.pool()
            try await h.waitForTasks("fine")
            #expect(try await h.engine.task(jobID: "fine", taskID: "t").executionInfo.result == "success")
            #expect(try await h.sql("SELECT state FROM task WHERE id = 't' AND job_pk = (SELECT pk FROM job WHERE id = 'broken')") == [["active"]])
        }
    }

    /// A pass runs its steps without savepoints first; when one fails (here the dispatch of a job whose
    /// stored preparation task no longer decodes, in every pass), the whole pass is rolled back and run
    /// again with a savepoint per step. What the rolled-back run did must not count twice: each task
    /// of the job beside the broken one runs once, its exit is recorded once, and subscribers hear of
    /// each state change once.
    @Test func aPassRunAgainWithSavepointsDoesNothingTwice() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let events = await h.engine.events()
            let tasks = 12
            try await Self.brokenJobBeforeFineJob(h, fineTasks: (0..<tasks).map { TaskSpec(id: "t\($0)", commandLine: "/bin/true") })
            try await h.pool(slots: 2)
            try await h.waitForTasks("fine")
            #expect(try await h.sql("""
                SELECT count(*), count(DISTINCT e.task_pk) FROM execution e JOIN task t ON t.pk = e.task_pk
                JOIN job j ON j.pk = t.job_pk WHERE j.id = 'fine'
                """) == [["\(tasks)", "\(tasks)"]])
            #expect(try await h.sql("SELECT count(*) FROM task t JOIN job j ON j.pk = t.job_pk WHERE j.id = 'fine' AND t.result = 'success'")
                == [["\(tasks)"]])
            // Every completion is committed by now; its event follows the commit's sync. Bounded: a
            // missing one ends the wait (and fails below) instead of hanging the suite.
            let collector = Task {
                var heard: [String: Int] = [:]
                for await event in events where event.jobId == "fine" && event.taskId != nil {
                    heard[event.kind + ":" + event.taskId!, default: 0] += 1
                    if heard.keys.filter({ $0.hasPrefix("task.completed:") }).count == tasks { break }
                }
                return heard
            }
            let deadline = Task { try await Task.sleep(for: .seconds(30)); collector.cancel() }
            let heard = await collector.value
            deadline.cancel()
            #expect(heard.keys.filter { $0.hasPrefix("task.completed:") }.count == tasks, "\(heard)")
            #expect(heard.values.allSatisfy { $0 == 1 }, "\(heard.filter { $0.value != 1 })")
            #expect(try await h.sql("SELECT state FROM task WHERE id = 't' AND job_pk = (SELECT pk FROM job WHERE id = 'broken')") == [["active"]])
        }
    }

    /// Every pass reads the live executions three times: through a partial index, never by a scan of
    /// the whole table, which would cost every pass time in proportion to every execution still
    /// stored; those Bookend decided to end through the index of those alone, so that the pass does
    /// not read every running row to find none. Asked of SQLite itself, on the migrated schema.
    @Test(arguments: ExecutionRecord.Live.all)
    func livePassReadsUseThePartialIndex(filter: String) async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let plan = try Self.plan(h, ExecutionRecord.selection(where: filter))
            let index = filter.contains("kill_reason IS NOT NULL") ? "execution_killing" : "execution_live"
            #expect(plan.contains { $0.hasPrefix("SCAN execution USING INDEX \(index)") }, "\(plan)")
            #expect(!plan.contains("SCAN execution"), "\(plan)")
        }
    }

    /// The two other reads of every pass whose cost could grow with the work running: wall clocks
    /// that ran out (only those past, through `execution_deadline`) and the nodes' used slots (summed
    /// from `task_on_node` alone, no table read per running task).
    @Test func clockAndSlotReadsStayOnTheirIndexes() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let clocks = try Self.plan(h, Engine.clocksRunOut)
            #expect(clocks.contains { $0.hasPrefix("SEARCH execution USING INDEX execution_deadline") }, "\(clocks)")
            let slots = try Self.plan(h, Engine.nodesTakingTasks)
            #expect(slots.contains { $0.hasPrefix("SEARCH t USING COVERING INDEX task_on_node") }, "\(slots)")
        }
    }

    /// A pass reads only the active jobs it may end: never the many that have nothing due (no wall
    /// clock, or one far off; terminatejob with tasks left), which it read and decoded ten times a
    /// second before. The stored timestamps are read by SQLite's own date functions, so the query
    /// is checked against what the engine stores, and the jobs that are due still end.
    @Test func aPassReadsOnlyTheActiveJobsItMayEnd() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            // A pool without nodes: tasks stay active.
            _ = try await h.pool("empty", nodes: 0)
            try await h.engine.createJob(JobSpec(id: "plain", poolID: "empty"))
            try await h.engine.createJob(JobSpec(id: "far", poolID: "empty"))
            try await h.engine.updateJob(id: "far", JobUpdate(constraints: JobConstraints(maxWallClockTime: "P1D")))
            try await h.engine.createJob(JobSpec(id: "waiting", poolID: "empty"))
            try await h.engine.addTask(jobID: "waiting", TaskSpec(id: "t", commandLine: "/bin/true"))
            try await h.engine.updateJob(id: "waiting", JobUpdate(onAllTasksComplete: "terminatejob"))
            let db = try Connection(path: DataDirectory.databasePath(h.directory), options: ConnectionOptions(readOnly: true, create: false))
            let now = Timestamp.string(Date())
            #expect(try db.query(Engine.activeJobsThatMayEnd, [now]).isEmpty)
            // SQLite reads the stored form to the millisecond.
            let stored = Timestamp.string(Date(timeIntervalSince1970: 1_800_000_000.123))
            let day = try #require(try db.scalar("SELECT julianday(?)", [stored]).double)
            #expect(abs((day - 2_440_587.5) * 86_400 - 1_800_000_000.123) < 0.001, "\(stored) read as \(day)")
            // A day from now the far clock is due; so is a job that ends when its (no) tasks are done.
            let tomorrow = Timestamp.string(Date().addingTimeInterval(86_401))
            #expect(try db.query(Engine.activeJobsThatMayEnd, [tomorrow]).compactMap { $0["id"].string } == ["far"])
            try await h.engine.createJob(JobSpec(id: "done", poolID: "empty"))
            try await h.engine.updateJob(id: "done", JobUpdate(onAllTasksComplete: "terminatejob"))
            try await h.engine.updateJob(id: "plain", JobUpdate(constraints: JobConstraints(maxWallClockTime: "PT0S")))
            try await h.waitForJob("done", .completed)
            try await h.waitForJob("plain", .completed)
            #expect(try await h.engine.job(id: "plain").executionInfo.terminateReason == "MaxWallClockTimeExpiry")
            #expect(try await h.engine.job(id: "done").executionInfo.terminateReason == "AllTasksComplete")
            #expect(try await h.engine.job(id: "far").state == .active && h.engine.job(id: "waiting").state == .active)
        }
    }

    /// Dispatch reads only the jobs with a task to place: a job whose tasks all completed (and was
    /// left active, as Azure's default `noaction` leaves it) is not read on every pass.
    @Test func dispatchReadsOnlyJobsWithActiveTasks() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            _ = try await h.pool()
            _ = try await h.pool("empty", nodes: 0)
            try await h.engine.createJob(JobSpec(id: "finished", poolID: "pool"))
            try await h.engine.addTask(jobID: "finished", TaskSpec(id: "t", commandLine: "/bin/true"))
            try await h.waitForTasks("finished")
            try await h.engine.createJob(JobSpec(id: "none", poolID: "pool"))
            try await h.engine.createJob(JobSpec(id: "queued", poolID: "empty"))
            try await h.engine.addTask(jobID: "queued", TaskSpec(id: "t", commandLine: "/bin/true"))
            let db = try Connection(path: DataDirectory.databasePath(h.directory), options: ConnectionOptions(readOnly: true, create: false))
            #expect(try db.query(Engine.jobsWithTasksToPlace).compactMap { $0["id"].string } == ["queued"])
            // A new task on the finished job makes it a candidate again, and it runs.
            try await h.engine.addTask(jobID: "finished", TaskSpec(id: "again", commandLine: "/bin/true"))
            try await h.waitForTasks("finished")
            #expect(try await h.engine.task(jobID: "finished", taskID: "again").executionInfo.result == "success")
        }
    }

    static func plan(_ h: EngineHarness, _ sql: String) throws -> [String] {
        let db = try Connection(path: DataDirectory.databasePath(h.directory), options: ConnectionOptions(readOnly: true, create: false))
        let arguments: [any SQLiteBindable] = Array(repeating: 1, count: sql.filter { $0 == "?" }.count)
        return try db.query("EXPLAIN QUERY PLAN " + sql, arguments).compactMap { $0["detail"].string }
    }

    /// More processes running than a pass looks at: it still tries the exit files of the last
    /// launches, and only theirs. Real status folders; the exit file is what a shim writes last.
    @Test func recentLaunchesAreTheOnesProbed() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("recent-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var recent = RecentLaunches()
        let total = Engine.exitProbeLimit + 8
        var identities: [ProcessIdentity] = []
        for pk in 1...Int64(total) {
            let folder = root + "/\(pk)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data("exit 0\n".utf8).write(to: URL(fileURLWithPath: folder + "/exit"))
            let identity = ProcessIdentity(pid: Int32(1000 + pk), startTime: UInt64(pk))
            identities.append(identity)
            recent.add(pk: pk, identity: identity, statusDirectory: folder)
        }
        // The oldest beyond the limit are gone; every kept one has its exit file.
        let kept = Array(Int64(total - Engine.exitProbeLimit + 1)...Int64(total))
        #expect(recent.ended(besides: [], spawned: [:]) == kept)
        #expect(!recent.contains(1) && recent.contains(Int64(total)))
        // One still running (no exit file), one reported by the watcher, one spawned since the last pass.
        try FileManager.default.removeItem(atPath: root + "/\(total)/exit")
        let reported: Set<ProcessIdentity> = [identities[total - 2]]
        let spawned = [Int64(total - 2): identities[total - 3]]
        #expect(recent.ended(besides: reported, spawned: spawned) == kept.filter { $0 < Int64(total - 2) })
        // Found ended, or reported: not tried again.
        recent.forget(Array(kept.prefix(5)), reported: reported)
        #expect(recent.ended(besides: [], spawned: [:]) == kept.dropFirst(5).filter { $0 != Int64(total - 1) && $0 != Int64(total) })
        #expect(recent.contains(Int64(total)))
    }
}
