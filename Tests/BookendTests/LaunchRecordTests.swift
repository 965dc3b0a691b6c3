@testable import Bookend
import Foundation
import Testing
import TestSupport

/// A spawned process's identity is stored by the next scheduler pass, in that pass's apply
/// transaction (group commit), not by a transaction of its own. These tests run an engine whose
/// timer practically never fires, so every pass is one an event started (a submission, an exit, a
/// terminate): what a pass records, and when, is then exact.
@Suite struct LaunchRecordTests {
    /// Runs `body` with a pool, a job `job` on it, a side-effects folder, and an engine on that data
    /// directory whose passes run only when something wakes them; the engine is shut down and the
    /// directory removed afterwards.
    static func withEventDrivenEngine(
        _ body: (_ h: EngineHarness, _ engine: Engine, _ effects: String) async throws -> Void
    ) async throws {
        let h = try await EngineHarness.make()
        try await h.pool()
        try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
        let effects = try h.sideEffects()
        await h.engine.shutdown()
        let engine = try await Engine.open(dataDirectory: h.directory, configuration: EngineConfiguration(tickInterval: .seconds(3600)))
        try await withCleanup({ await engine.shutdown(); try? FileManager.default.removeItem(atPath: h.directory) }) {
            try await body(h, engine, effects)
        }
    }

    /// Tasks that run one after another on one slot: the pass that collects a task's exit also stores
    /// its launch and dispatches the next task, so each task costs one write transaction.
    @Test func sequentialTasksCostOneWriteTransactionEach() async throws {
        try await Self.withEventDrivenEngine { h, engine, _ in
            let tasks = 20
            let before = await engine.writeTransactions
            _ = try await engine.addTasks(jobID: "job", (0..<tasks).map { TaskSpec(id: "t\($0)", commandLine: "/bin/true") })
            try await engine.waitForTasks(jobID: "job", timeout: .seconds(60))
            try await engine.wait(timeout: .seconds(60)) { engine in try engine.nodes(poolID: "pool").allSatisfy { $0.state == .idle } }
            let writes = await engine.writeTransactions - before
            // The ingest, one per task, and at most one more (the node going idle commits with the last exit).
            #expect(writes <= 1 + tasks + 1, "\(writes) write transactions for \(tasks) sequential tasks")
            #expect(try await h.sql("SELECT count(*) FROM task WHERE result = 'success'") == [["\(tasks)"]])
            // Every launch was stored, by the pass after it.
            #expect(try await h.sql("SELECT count(*) FROM execution WHERE kind = 'task' AND (pid IS NULL OR pid_start_time IS NULL)") == [["0"]])
        }
    }

    /// A task submitted while a slot is free is dispatched in the transaction that stores it: from
    /// `addTask` to its process running, one write transaction, where there were two (the submission,
    /// then a pass's dispatch). Its launch is stored by the pass its exit wakes, with that exit.
    @Test func aTaskSubmittedToAFreeSlotIsDispatchedWithItsSubmission() async throws {
        try await Self.withEventDrivenEngine { h, engine, effects in
            let before = await engine.writeTransactions
            let task = try await engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/runs; exec sleep 300")))
            #expect(task.state == .running)
            try await EngineHarness.waitUntil("the task runs") { EngineHarness.lines("\(effects)/runs") == ["run"] }
            #expect(await engine.writeTransactions - before == 1)
            #expect(try await h.sql("SELECT state, pid IS NULL FROM execution WHERE kind = 'task'") == [["starting", "1"]])
            // The pass its end wakes stores its launch and its exit.
            try await engine.terminateTask(jobID: "job", taskID: "t")
            try await engine.waitForTasks(jobID: "job", timeout: .seconds(60))
            #expect(try await h.sql("SELECT state, pid IS NOT NULL FROM execution WHERE kind = 'task'") == [["completed", "1"]])
        }
    }

    /// A task deleted while its process runs but before any pass stored that process: the next pass
    /// finds no row to store it in and kills it, so nothing runs on that no row names.
    @Test func aTaskDeletedBeforeItsLaunchIsStoredHasItsProcessKilled() async throws {
        try await Self.withEventDrivenEngine { h, engine, effects in
            try await engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/runs; exec sleep 300")))
            try await EngineHarness.waitUntil("the task runs") { EngineHarness.lines("\(effects)/runs") == ["run"] }
            // Nothing has woken a pass since the one that spawned it: no pid is stored yet.
            #expect(try await h.sql("SELECT state, pid IS NULL FROM execution WHERE kind = 'task'") == [["starting", "1"]])
            try await engine.deleteTask(jobID: "job", taskID: "t")
            try await engine.wait(timeout: .seconds(60)) { _ in processesMentioning("\(effects)/runs").isEmpty }
            #expect(try await h.sql("SELECT count(*) FROM execution WHERE kind = 'task'") == [["0"]])
        }
    }

    /// A task terminated before its launch is stored: the pass the terminate wakes stores the process
    /// first, then signals it like any running task, and the task completes as terminated.
    @Test func aTaskTerminatedBeforeItsLaunchIsStoredIsSignalled() async throws {
        try await Self.withEventDrivenEngine { h, engine, effects in
            try await engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/runs; exec sleep 300")))
            try await EngineHarness.waitUntil("the task runs") { EngineHarness.lines("\(effects)/runs") == ["run"] }
            #expect(try await h.sql("SELECT state, pid IS NULL FROM execution WHERE kind = 'task'") == [["starting", "1"]])
            try await engine.terminateTask(jobID: "job", taskID: "t")
            try await engine.waitForTasks(jobID: "job", timeout: .seconds(60))
            #expect(try await h.sql("SELECT state, pid IS NOT NULL, kill_reason FROM execution WHERE kind = 'task'") == [["completed", "1", "terminate"]])
            #expect(processesMentioning("\(effects)/runs").isEmpty)
        }
    }
}
