import Bookend
import Foundation
import TestSupport
import Testing

/// Never wait silently: `whyWaiting`, `waitForTasks` and the `job_blockage`/`task_blockage` views
/// say why work cannot start, with real processes failing for real, and never call ordinary
/// waiting (busy slots, maxParallelTasks) blocked.
@Suite struct DiagnosisTests {
    /// Waits until `whyWaiting` reaches `state` for the job (or task), by recorded state, not by time.
    private func waitForReason(_ h: EngineHarness, job: String, task: String? = nil, _ state: WaitReason.State) async throws -> WaitReason {
        try await h.engine.wait(timeout: .seconds(60)) { engine in
            try engine.whyWaiting(jobID: job, taskID: task).state == state
        }
        return try h.engine.whyWaiting(jobID: job, taskID: task)
    }

    @Test func preparationFailingOnEveryNodeBlocksTheJobAndSaysWhere() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let nodes = try await h.pool(nodes: 2, slots: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("echo starting; echo first line >&2; echo boom >&2; exit 3"))))
            _ = try await h.engine.addTasks(jobID: "job", (1...4).map { TaskSpec(id: "t\($0)", commandLine: "/bin/true") })

            let error = try await #require(throws: JobBlockedError.self) { try await h.waitForTasks("job") }
            #expect(error.jobID == "job")
            #expect(error.reason.state == .blocked)
            #expect(error.reason.code == "JobPreparationTaskFailed")
            let failures = try #require(error.reason.failedPreparations)
            #expect(failures.map(\.nodeId) == nodes.map(\.id).sorted())
            for failure in failures {
                #expect(failure.exitCode == 3)
                #expect(failure.failureInfo?.code == "FailureExitCode")
                #expect(failure.stderrTail == "first line\nboom")
            }
            #expect(error.description.contains("stderr: boom"))
            for node in nodes { #expect(error.reason.message.contains(node.id)) }

            // Every task explains itself the same way, and the tasks really stayed active (Azure's behaviour).
            let task = try h.engine.whyWaiting(jobID: "job", taskID: "t1")
            #expect(task.code == "JobPreparationTaskFailed")
            #expect(task.failedPreparations?.count == 2)
            #expect(try h.engine.taskCounts(jobID: "job").taskCounts.active == 4)

            #expect(try await h.sql("SELECT code, active_tasks FROM job_blockage WHERE job_id = 'job'") == [["JobPreparationTaskFailed", "4"]])
            let message = try await h.sql("SELECT message FROM job_blockage WHERE job_id = 'job'").first?.first ?? ""
            for node in nodes { #expect(message.contains("\(node.id) (exit code 3)")) }
            #expect(try await h.sql("SELECT task_id, code FROM task_blockage WHERE job_id = 'job' ORDER BY task_id")
                == (1...4).map { ["t\($0)", "JobPreparationTaskFailed"] })
        }
    }

    @Test func aFailedDependencyBlocksItsDependantsTransitively() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1, slots: 2)
            var spec = JobSpec(id: "job", poolID: "pool")
            spec.usesTaskDependencies = true
            try await h.engine.createJob(spec)
            _ = try await h.engine.addTasks(jobID: "job", [
                // Fails at once the first time; run again, it fails only when the test says `go`.
                TaskSpec(id: "a", commandLine: sh("if [ -e \(effects)/ran ]; then until [ -e \(effects)/go ]; do sleep 0.05; done; fi; touch \(effects)/ran; exit 1")),
                TaskSpec(id: "b", commandLine: "/bin/true", dependsOn: TaskDependencies(taskIds: ["a"])),
                TaskSpec(id: "c", commandLine: "/bin/true", dependsOn: TaskDependencies(taskIds: ["b"])),
                TaskSpec(id: "d", commandLine: "/bin/true", dependsOn: TaskDependencies(taskIds: ["ghost"])),
                TaskSpec(id: "e", commandLine: "/bin/true"),
            ])
            let error = try await #require(throws: JobBlockedError.self) { try await h.waitForTasks("job") }
            #expect(error.reason.code == "AllTasksBlocked")
            // The independent task and the failing one really ran.
            #expect(try h.engine.task(jobID: "job", taskID: "e").executionInfo.result == "success")
            #expect(try h.engine.task(jobID: "job", taskID: "a").executionInfo.result == "failure")

            let b = try h.engine.whyWaiting(jobID: "job", taskID: "b")
            #expect(b.state == .blocked)
            #expect(b.code == "TaskDependencyFailed")
            #expect(b.dependencyId == "a")
            let c = try h.engine.whyWaiting(jobID: "job", taskID: "c")
            #expect(c.code == "TaskDependencyBlocked")
            #expect(c.dependencyId == "b")
            let d = try h.engine.whyWaiting(jobID: "job", taskID: "d")
            #expect(d.code == "TaskDependencyNotFound")
            #expect(d.dependencyId == "ghost")
            #expect(try h.engine.whyWaiting(jobID: "job", taskID: "e").state == .notWaiting)
            #expect(try await h.sql("SELECT task_id, code, dependency_id FROM task_blockage WHERE job_id = 'job' ORDER BY task_id") == [
                ["b", "TaskDependencyFailed", "a"], ["c", "TaskDependencyBlocked", "b"], ["d", "TaskDependencyNotFound", "ghost"]])

            // Reactivating the failed dependency is the action that unblocks: nothing is blocked while it runs.
            try await h.engine.reactivateTask(jobID: "job", taskID: "a")
            #expect(try h.engine.whyWaiting(jobID: "job", taskID: "b").state == .waiting)
            FileManager.default.createFile(atPath: "\(effects)/go", contents: nil)
        }
    }

    @Test func aPoolThatIsGoneBlocksTheJob() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.deletePool(id: "pool")
            try await h.engine.wait(timeout: .seconds(60)) { engine in (try? engine.pool(id: "pool")) == nil }
            _ = try await h.engine.addTasks(jobID: "job", [TaskSpec(id: "t", commandLine: "/bin/true")])
            let error = try await #require(throws: JobBlockedError.self) { try await h.waitForTasks("job") }
            #expect(error.reason.code == "PoolNotFound")
            #expect(error.reason.message.contains("pool"))
            #expect(try h.engine.whyWaiting(jobID: "job", taskID: "t").code == "PoolNotFound")
            #expect(try await h.sql("SELECT code FROM job_blockage WHERE job_id = 'job'") == [["PoolNotFound"]])
            #expect(try await h.sql("SELECT task_id, code FROM task_blockage WHERE job_id = 'job'") == [["t", "PoolNotFound"]])

            // Recreating the pool is the action that unblocks it.
            try await h.pool(nodes: 1)
            try await h.waitForTasks("job")
            #expect(try h.engine.task(jobID: "job", taskID: "t").executionInfo.result == "success")
            #expect(try await h.sql("SELECT count(*) FROM job_blockage") == [["0"]])
        }
    }

    @Test func aDisabledJobAndATaskTooBigForAnyNodeAreBlocked() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 1, slots: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            _ = try await h.engine.addTasks(jobID: "job", [
                TaskSpec(id: "big", commandLine: "/bin/true", requiredSlots: 2), TaskSpec(id: "small", commandLine: "/bin/true")])
            let big = try await waitForReason(h, job: "job", task: "big", .blocked)
            #expect(big.code == "RequiredSlotsExceedTaskSlotsPerNode")
            let error = try await #require(throws: JobBlockedError.self) { try await h.waitForTasks("job") }
            #expect(error.reason.code == "AllTasksBlocked")
            #expect(try h.engine.task(jobID: "job", taskID: "small").executionInfo.result == "success")
            #expect(try await h.sql("SELECT task_id, code FROM task_blockage") == [["big", "RequiredSlotsExceedTaskSlotsPerNode"]])

            try await h.engine.createJob(JobSpec(id: "off", poolID: "pool"))
            try await h.engine.disableJob(id: "off", disableTasks: "requeue")
            _ = try await h.engine.addTasks(jobID: "off", [TaskSpec(id: "t", commandLine: "/bin/true")])
            let off = try await waitForReason(h, job: "off", .blocked)
            #expect(off.code == "JobDisabled")
            #expect(try await h.sql("SELECT code FROM job_blockage WHERE job_id = 'off'") == [["JobDisabled"]])
        }
    }

    @Test func aPoolWhoseNodesCannotRunTasksBlocksTheJobUntilOneCan() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let nodes = try await h.pool(nodes: 1)
            try await h.engine.disableNodeScheduling(poolID: "pool", nodeID: nodes[0].id)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            _ = try await h.engine.addTasks(jobID: "job", [TaskSpec(id: "t", commandLine: "/bin/true")])
            let error = try await #require(throws: JobBlockedError.self) { try await h.waitForTasks("job") }
            #expect(error.reason.code == "NoUsableNodes")
            #expect(error.reason.message.contains("\(nodes[0].id) (scheduling disabled)"))
            try await h.engine.enableNodeScheduling(poolID: "pool", nodeID: nodes[0].id)
            try await h.waitForTasks("job")
            #expect(try h.engine.task(jobID: "job", taskID: "t").executionInfo.result == "success")
        }
    }

    @Test func aBusyJobIsWaitingNotBlocked() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 2, slots: 1)
            // Tasks hold their slot until the test lets them go: no timing involved.
            let hold = sh("while [ ! -f \(effects)/go ]; do sleep 0.05; done")
            var capped = JobSpec(id: "capped", poolID: "pool")
            capped.maxParallelTasks = 1
            try await h.engine.createJob(capped)
            _ = try await h.engine.addTasks(jobID: "capped", (1...3).map { TaskSpec(id: "c\($0)", commandLine: hold) })
            let reason = try await waitForReason(h, job: "capped", .waiting)
            try await h.engine.wait(timeout: .seconds(60)) { try $0.taskCounts(jobID: "capped").taskCounts.running == 1 }
            #expect(try h.engine.whyWaiting(jobID: "capped").code == "MaxParallelTasksReached", "\(reason)")

            // A second job fills the other node; its next task waits for a slot.
            try await h.engine.createJob(JobSpec(id: "full", poolID: "pool"))
            _ = try await h.engine.addTasks(jobID: "full", (1...2).map { TaskSpec(id: "f\($0)", commandLine: hold) })
            try await h.engine.wait(timeout: .seconds(60)) { try $0.taskCounts(jobID: "full").taskCounts.running == 1 }
            let full = try h.engine.whyWaiting(jobID: "full")
            #expect(full.state == .waiting)
            #expect(full.code == "NoFreeSlots")
            let tasks = try await h.engine.tasks(jobID: "full")
            let waitingTask = try #require(tasks.first { $0.state == .active })
            #expect(try h.engine.whyWaiting(jobID: "full", taskID: waitingTask.id).state == .waiting)
            let runningTask = try #require(tasks.first { $0.state == .running })
            #expect(try h.engine.whyWaiting(jobID: "full", taskID: runningTask.id).state == .notWaiting)
            #expect(try await h.sql("SELECT count(*) FROM job_blockage") == [["0"]])
            #expect(try await h.sql("SELECT count(*) FROM task_blockage") == [["0"]])

            FileManager.default.createFile(atPath: "\(effects)/go", contents: nil)
            try await h.waitForTasks("capped")
            try await h.waitForTasks("full")
            #expect(try h.engine.whyWaiting(jobID: "capped").state == .notWaiting)
        }
    }

    @Test func theSampleFailsFastWhenPreparationFailsOnBothNodes() async throws {
        let binary = Repository.path(".build/debug/bookend")
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build bookend first (swift build)")
        // The sample's pool, made beforehand, with the file its preparation writes turned into a
        // folder on both nodes: the real preparation command then fails there ("Is a directory").
        let h = try await EngineHarness.make()
        let nodes = try await h.pool("JobPrepReleaseSamplePool", nodes: 2, slots: 1)
        for node in nodes {
            try FileManager.default.createDirectory(atPath: (node.rootDirectory as NSString).appendingPathComponent("shared/job_prep_and_release.txt"),
                withIntermediateDirectories: true)
        }
        await h.engine.shutdown()
        defer { try? FileManager.default.removeItem(atPath: h.directory) }

        let result = try await run(binary, ["sample", "job-prep-release", "--data-dir", h.directory])
        #expect(result.status != 0)
        #expect(result.stdout.contains("All tasks completed.") == false)
        #expect(result.stderr.contains("job JobPrepReleaseSampleJob is blocked (JobPreparationTaskFailed)"), "\(result.stderr)")
        for node in nodes { #expect(result.stderr.contains("\(node.id): exit code")) }
        #expect(result.stderr.contains("Is a directory"))
    }
}
