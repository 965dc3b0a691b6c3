@testable import Bookend
import Foundation
import SQLite
import TestSupport
import Testing

/// The stores on a real migrated database holding the sample rows: a legal transition writes the
/// state, its bookkeeping and one event; an illegal one, or one from a state the row is no longer in,
/// throws and writes nothing.
@Suite struct StoreTests {
    struct Snapshot: Equatable {
        var row: [SQLiteValue]
        var events: Int
    }

    static func snapshot(_ db: Connection, _ table: String, pk: Int64) throws -> Snapshot {
        Snapshot(row: try #require(db.query("SELECT * FROM \(table) WHERE pk = ?", [pk]).first).values,
            events: try db.count("event"))
    }

    static func sample() throws -> MigratedDirectory {
        let data = try MigratedDirectory()
        try SampleData.insert(into: data.connection, version: Schema.version)
        return data
    }

    static func taskKey(_ db: Connection, pk: Int64) throws -> TaskKey {
        let task = try #require(db.query("SELECT * FROM task WHERE pk = ?", [pk]).first)
        let job = try #require(db.query("SELECT * FROM job WHERE pk = ?", [task["job_pk"]]).first)
        return try TaskKey(task: task, job: job)
    }

    @Test func aLegalTaskTransitionWritesTheStateItsBookkeepingAndOneEvent() throws {
        let data = try Self.sample()
        let db = data.connection
        let before = try Self.snapshot(db, "task", pk: 6)
        var log: [EngineEvent] = []
        let to = try TaskStore.transition(db, Self.taskKey(db, pk: 6), from: .active, .waitForPreparation(nodePK: 1, nodeID: nil),
            now: "2026-11-30T00:00:00.000Z", log: &log)
        #expect(to == .preparing)
        #expect(try db.values("SELECT state, previous_state, node_pk, state_transition_time, e_tag <> '0x25' FROM task WHERE pk = 6")
            == [[.text("preparing"), .text("active"), .integer(1), .text("2026-11-30T00:00:00.000Z"), .integer(1)]])
        #expect(try db.count("event") == before.events + 1)
        #expect(try db.values("SELECT kind, job_id, task_id, from_state, to_state FROM event ORDER BY seq DESC LIMIT 1")
            == [[.text("task.preparing"), .text("nightly"), .text("n1"), .text("active"), .text("preparing")]])
        #expect(log.map(\.kind) == ["task.preparing"])
    }

    @Test func anIllegalTaskEventThrowsTheConflictAndWritesNothing() throws {
        let data = try Self.sample()
        let db = data.connection
        let before = try Self.snapshot(db, "task", pk: 1)
        var log: [EngineEvent] = []
        let error = #expect(throws: BookendError.self) {
            try TaskStore.transition(db, Self.taskKey(db, pk: 1), from: .completed, .start(nodePK: 1, nodeID: "node-1", attempt: 2),
                now: "2026-11-30T00:00:00.000Z", log: &log)
        }
        #expect(error?.code == "TaskCompleted")
        #expect(try Self.snapshot(db, "task", pk: 1) == before)
        #expect(log.isEmpty)
    }

    @Test func aTransitionFromAStateTheRowHasLeftThrowsAndWritesNothing() throws {
        let data = try Self.sample()
        let db = data.connection
        // Task 6 is active; running → completed is a legal edge, but not from where the row is.
        let before = try Self.snapshot(db, "task", pk: 6)
        var log: [EngineEvent] = []
        let completion = TaskCompletion(exitCode: 0, result: .success, failureInfo: nil, satisfiesDependents: true)
        #expect(throws: BookendError.self) {
            try TaskStore.transition(db, Self.taskKey(db, pk: 6), from: .running, .complete(completion), now: "2026-11-30T00:00:00.000Z",
                log: &log)
        }
        #expect(try Self.snapshot(db, "task", pk: 6) == before)
        #expect(log.isEmpty)
    }

    @Test func anIdempotentJobCallWritesNothing() throws {
        let data = try Self.sample()
        let db = data.connection
        let before = try Self.snapshot(db, "job", pk: 2)
        let job = try #require(db.query("SELECT * FROM job WHERE pk = 2").first)
        var log: [EngineEvent] = []
        #expect(try JobStore.transition(db, JobKey(job), from: .terminating, .terminate(reason: "UserTerminate"), now: "2026-11-30T00:00:00.000Z",
            log: &log) == .terminating)
        #expect(try Self.snapshot(db, "job", pk: 2) == before)
        #expect(log.isEmpty)
    }

    @Test func aNodeRebootWritesTheOptionAndTheRebootedNodeClearsIt() throws {
        let data = try Self.sample()
        let db = data.connection
        var log: [EngineEvent] = []
        try NodeStore.transition(db, pk: 1, on: .reboot, rebootOption: .terminate, now: "2026-11-30T00:00:00.000Z", log: &log)
        #expect(try db.values("SELECT state, reboot_option FROM node WHERE pk = 1") == [[.text("rebooting"), .text("terminate")]])
        let eTag = try db.scalar("SELECT e_tag FROM node WHERE pk = 1")
        try NodeStore.transition(db, pk: 1, on: .rebooted, now: "2026-11-30T00:00:01.000Z", log: &log)
        #expect(try db.values("SELECT state, reboot_option, state_transition_time FROM node WHERE pk = 1")
            == [[.text("creating"), .null, .text("2026-11-30T00:00:01.000Z")]])
        #expect(try db.scalar("SELECT e_tag FROM node WHERE pk = 1") != eTag)
        #expect(log.map(\.kind) == ["node.rebooting", "node.creating"])
        // A second reboot request on a node that is being created is the API's conflict.
        let error = #expect(throws: BookendError.self) {
            try NodeStore.transition(db, pk: 1, on: .reboot, now: "2026-11-30T00:00:02.000Z", log: &log)
        }
        #expect(error?.code == "NodeBeingCreated")
    }

    @Test func aReleaseMovesThroughItsPhasesAndRecordsItsResult() throws {
        let data = try Self.sample()
        let db = data.connection
        var log: [EngineEvent] = []
        // (job 2, node 1) is owed a release (pending).
        let key = JobNodeKey(jobPK: 2, nodePK: 1, jobID: "etl", poolID: "pool-a", nodeID: "node-1")
        try JobNodeStore.startRelease(db, key, now: "2026-11-30T00:00:00.000Z", log: &log)
        #expect(try JobNodeStore.read(db, jobPK: 2, nodePK: 1)?.phase == .releaseRunning)
        // Starting it again is not a legal edge from releaseRunning: nothing is written.
        #expect(throws: BookendError.self) { try JobNodeStore.startRelease(db, key, now: "2026-11-30T00:00:01.000Z", log: &log) }
        try JobNodeStore.completeRelease(db, key, result: .failure, exitCode: 3, failureInfo: nil, now: "2026-11-30T00:00:02.000Z", log: &log)
        #expect(try JobNodeStore.read(db, jobPK: 2, nodePK: 1)?.phase == .releaseCompleted)
        #expect(try db.values("SELECT release_result, release_exit_code, release_start_time FROM job_node WHERE job_pk = 2 AND node_pk = 1")
            == [[.text("failure"), .integer(3), .text("2026-11-30T00:00:00.000Z")]])
        #expect(log.map(\.kind) == ["release.running", "release.completed"])
        #expect(log.last?.state == "failure")
    }

    @Test func aStoredJSONColumnThatDoesNotDecodeNamesTableRowAndColumn() throws {
        let data = try Self.sample()
        let db = data.connection
        try db.run(#"UPDATE job SET job_preparation_task = '{"commandLine":5}' WHERE pk = 3"#)
        let job = try #require(db.query("SELECT * FROM job WHERE pk = 3").first)
        let error = #expect(throws: BookendError.self) { try job.json(JobPreparationTask.self, "job_preparation_task", table: "job") }
        #expect(error?.message.contains("job row pk 3, column job_preparation_task") == true)
        #expect(try job.json(JobReleaseTask.self, "job_release_task", table: "job") == nil)
    }

    /// `[]` and `{}` are answered without JSONDecoder for arrays and string-keyed dictionaries; what
    /// comes back must be what the decoder gives, and a type the decoder refuses them for still fails.
    @Test(arguments: ["[]", "{}", " []", "[ ]", "{ }", #"[{"name":"A","value":"1"}]"#, #"{"k":"v"}"#])
    func emptyJSONColumnsReadAsTheDecoderReadsThem(_ text: String) throws {
        let row = Row(columns: ["pk", "value"], values: [.integer(1), .text(text)])
        func decoded<T: Decodable & Equatable & Sendable>(_ type: T.Type) -> Result<T, BookendError> {
            Result { try row.json(type, "value", table: "t") ?? { throw BookendError.internalError("nil") }() }
                .mapError { $0 as? BookendError ?? BookendError.internalError("\($0)") }
        }
        func foundation<T: Decodable & Equatable>(_ type: T.Type) -> T? { try? JSONDecoder().decode(type, from: Data(text.utf8)) }
        #expect((try? decoded([EnvironmentSetting].self).get()) == foundation([EnvironmentSetting].self))
        #expect((try? decoded([MetadataItem].self).get()) == foundation([MetadataItem].self))
        #expect((try? decoded([String: JSONValue].self).get()) == foundation([String: JSONValue].self))
        #expect((try? decoded([String: String].self).get()) == foundation([String: String].self))
        // Not an array or a dictionary: `[]` and `{}` are corrupt for it, as the decoder says.
        #expect((try? decoded(String.self).get()) == nil)
        #expect((try? decoded(JobReleaseTask.self).get()) == foundation(JobReleaseTask.self))
    }

    /// Decoded JSON columns are kept by their text (DecodedColumns): a column changed underneath is
    /// read as it now is, and text that does not decode throws on every read, never a kept value.
    @Test func aKeptDecodedColumnNeverOutlivesItsText() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.engine.createJob(JobSpec(id: "job", poolID: "nowhere", jobPreparationTask: JobPreparationTask(commandLine: "/bin/echo one")))
            #expect(try await h.engine.job(id: "job").jobPreparationTask?.commandLine == "/bin/echo one")
            #expect(try await h.engine.job(id: "job").jobPreparationTask?.commandLine == "/bin/echo one")
            let db = try Connection(path: DataDirectory.databasePath(h.directory))
            try db.run(#"UPDATE job SET job_preparation_task = '{"commandLine":"/bin/echo two"}' WHERE id = 'job'"#)
            #expect(try await h.engine.job(id: "job").jobPreparationTask?.commandLine == "/bin/echo two")
            try db.run(#"UPDATE job SET job_preparation_task = '{"commandLine":"/bin/echo one","waitForSuccess":7}' WHERE id = 'job'"#)
            for _ in 0..<2 {
                let error = await #expect(throws: BookendError.self) { try await h.engine.job(id: "job") }
                #expect(error?.message.contains("job_preparation_task") == true)
            }
            // Back to the first text: the same value as before it changed.
            try db.run(#"UPDATE job SET job_preparation_task = '{"commandLine":"/bin/echo one"}' WHERE id = 'job'"#)
            #expect(try await h.engine.job(id: "job").jobPreparationTask?.commandLine == "/bin/echo one")
        }
    }

    @Test func aPreparationTaskThatNoLongerDecodesIsAnErrorNotNoPreparation() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            // No such pool: nothing is dispatched while the row is changed underneath.
            try await h.engine.createJob(JobSpec(id: "job", poolID: "nowhere", jobPreparationTask: JobPreparationTask(commandLine: "/bin/true")))
            let db = try Connection(path: DataDirectory.databasePath(h.directory))
            try db.run(#"UPDATE job SET job_preparation_task = '{"commandLine":5}' WHERE id = 'job'"#)
            let error = await #expect(throws: BookendError.self) { try await h.engine.prepReleaseStatus(jobID: "job") }
            #expect(error?.code == "InternalError")
            #expect(error?.message.contains("job_preparation_task") == true)
        }
    }
}
