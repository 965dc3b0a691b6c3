import Bookend
import Foundation
import Testing
import TestSupport

/// The engine's reads behind the dashboard's timeline and attempt lists, over a real engine that
/// runs real processes.
@Suite struct DashboardReadTests {
    @Test func aJobsRunsComeOldestFirstWithPreparationBeforeTasksAndOnlyTheLatestTasksWhenCapped() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 1, slots: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"), jobReleaseTask: JobReleaseTask(commandLine: "/bin/true")))
            _ = try await h.engine.addTasks(jobID: "job", (1...3).map { TaskSpec(id: "t\($0)", commandLine: "/bin/true") }
                + [TaskSpec(id: "bad", commandLine: sh("exit 7"))])
            try await h.waitForTasks("job")
            let (all, truncated) = try h.engine.executions(jobID: "job", latestTasks: 100)
            #expect(!truncated)
            #expect(all.map(\.kind) == [.preparation, .task, .task, .task, .task])
            #expect(all.allSatisfy { $0.state == .completed && $0.endTime != nil })
            let bad = try #require(all.first { $0.taskId == "bad" })
            #expect(bad.exitCode == 7 && bad.result == .failure)
            // The latest two task runs, and still the preparation.
            let (latest, cut) = try h.engine.executions(jobID: "job", latestTasks: 2)
            #expect(cut)
            #expect(latest.map(\.kind) == [.preparation, .task, .task])
            #expect(Set(latest.compactMap(\.taskId)) == Set(all.compactMap(\.taskId).suffix(2)))
            // One task's attempts.
            let attempts = try h.engine.executions(jobID: "job", taskID: "bad")
            #expect(attempts.map(\.attempt) == [1])
            #expect(attempts.first?.failureInfo?.code == "FailureExitCode")
        }
    }
}
