import Bookend
import Foundation
import TestSupport
import Testing

/// How an engine's life ends: `run()` (the engine as a service), `withEngine`'s scope, `shutdown()`.
/// An engine that has really shut down has released its data directory: the next open succeeds.
@Suite struct EngineLifetimeTests {
    struct Stop: Error {}

    @Test func runSchedulesUntilItsTaskIsCancelledThenShutsTheEngineDown() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ try? FileManager.default.removeItem(atPath: h.directory) }) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await h.engine.run() }
                // Scheduling runs while `run()` waits: a pool boots and a task completes.
                try await h.pool()
                try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
                try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/bin/true"))
                try await h.waitForTasks("job")
                // A lookup awaited from async code (run on a reader thread) sees the same state.
                #expect(try await h.engine.lookup { try $0.task(jobID: "job", taskID: "t").state } == .completed)
                group.cancelAll()
                try await group.waitForAll()
            }
            // `run()` returned after shutting down: the directory is free, the history is there.
            let next = try await h.reopened()
            await next.engine.shutdown()
            #expect(try await h.sql("SELECT state, result FROM task") == [["completed", "success"]])
        }
    }

    @Test func runReturnsWhenTheEngineIsShutDownAndShutdownIsIdempotent() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ try? FileManager.default.removeItem(atPath: h.directory) }) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await h.engine.run() }
                await h.engine.shutdown()
                // `run()` ends by itself (no cancellation): the group's wait returns.
                try await group.waitForAll()
            }
            await h.engine.shutdown()
            let next = try await h.reopened()
            await next.engine.shutdown()
        }
    }

    @Test func withEngineShutsTheEngineDownWhenItsBodyThrows() async throws {
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let data = directory.file("data")
        let configuration = EngineConfiguration(tickInterval: .milliseconds(100))
        await #expect(throws: Stop.self) {
            try await Engine.withEngine(dataDirectory: data, configuration: configuration) { engine in
                try await engine.createPool(PoolSpec(id: "pool", targetDedicatedNodes: 1, taskSlotsPerNode: 1))
                throw Stop()
            }
        }
        // Shut down on the way out: the next scoped engine opens the directory and sees the pool.
        let pools = try await Engine.withEngine(dataDirectory: data, configuration: configuration) { engine in
            try await engine.pools().map(\.id)
        }
        #expect(pools == ["pool"])
    }
}
