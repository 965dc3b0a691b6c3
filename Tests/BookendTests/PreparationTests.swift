import Bookend
import Foundation
import TestSupport
import Testing

/// Rules P1–P9 of the spec (§4.5), with real processes and side effects counted on disk.
@Suite struct PreparationTests {
    @Test func aNodeThatGetsNoTaskRunsNoPreparation() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 2, slots: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("echo $AZ_BATCH_NODE_ID >> \(effects)/prep"))))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "only", commandLine: "/bin/true"))
            try await h.waitForTasks("job")
            let prepRuns = EngineHarness.lines("\(effects)/prep")
            #expect(prepRuns.count == 1)
            let statuses = try await h.engine.prepReleaseStatus(jobID: "job")
            #expect(statuses.count == 1)
            #expect(statuses.first?.nodeId == prepRuns.first)
            #expect(try await h.sql("SELECT count(*) FROM prep_release_status WHERE job_id = 'job'") == [["1"]])
        }
    }

    @Test func preparationRunsOncePerNodeBeforeItsFirstTask() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1, slots: 2)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("sleep 0.3; echo prep >> \(effects)/log"))))
            let tasks = (1...5).map { TaskSpec(id: "t\($0)", commandLine: sh("echo task >> \(effects)/log")) }
            _ = try await h.engine.addTasks(jobID: "job", tasks)
            try await h.waitForTasks("job")
            let log = EngineHarness.lines("\(effects)/log")
            #expect(log.first == "prep")
            #expect(log.filter { $0 == "prep" }.count == 1)
            #expect(log.filter { $0 == "task" }.count == 5)
            let counts = try await h.engine.taskCounts(jobID: "job").taskCounts
            #expect(counts.succeeded == 5)
        }
    }

    @Test func tasksWaitInPreparingUntilPreparationSucceeds() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                // Preparation runs until the test says `go`, so the task is surely seen waiting for it.
                jobPreparationTask: JobPreparationTask(commandLine: sh("until [ -e \(effects)/go ]; do sleep 0.05; done; touch \(effects)/ready"))))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("test -f \(effects)/ready")))
            try await h.engine.wait(timeout: .seconds(60)) { try $0.task(jobID: "job", taskID: "t").state == .preparing }
            FileManager.default.createFile(atPath: "\(effects)/go", contents: nil)
            try await h.waitForTasks("job")
            let task = try await h.engine.task(jobID: "job", taskID: "t")
            #expect(task.executionInfo.result == "success")
            #expect(task.previousState == .running)
        }
    }

    @Test func aFailedPreparationMakesTheNodeIneligibleAndTasksFinishElsewhere() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let nodes = try await h.pool(nodes: 2, slots: 1)
            let bad = nodes[0].id
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("test \"$AZ_BATCH_NODE_ID\" != \(bad) || exit 7"))))
            _ = try await h.engine.addTasks(jobID: "job", (1...4).map { TaskSpec(id: "t\($0)", commandLine: "/bin/true") })
            try await h.waitForTasks("job")
            for task in try await h.engine.tasks(jobID: "job") {
                #expect(task.executionInfo.result == "success")
                #expect(task.nodeInfo?.nodeId == nodes[1].id)
            }
            let job = try await h.engine.job(id: "job")
            #expect(job.executionInfo.schedulingError?.code == "JobPreparationTaskFailed")
            #expect(job.executionInfo.schedulingError?.message?.contains(bad) == true)
            let failed = try await h.engine.prepReleaseStatus(jobID: "job").first { $0.nodeId == bad }
            #expect(failed?.jobPreparationTaskExecutionInfo.result == "failure")
            #expect(failed?.jobPreparationTaskExecutionInfo.exitCode == 7)
            #expect(failed?.jobPreparationTaskExecutionInfo.failureInfo?.code == "FailureExitCode")
            #expect(try await h.sql("SELECT prep_result, prep_exit_code, eligible, prep_failure_code FROM prep_release_status WHERE node_id = '\(bad)'")
                == [["failure", "7", "0", "FailureExitCode"]])
            #expect(try await h.sql("SELECT scheduling_error_code FROM job_history WHERE job_id = 'job'") == [["JobPreparationTaskFailed"]])
        }
    }

    @Test func preparationRetriesUpToItsRetryCount() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("echo run >> \(effects)/prep; exit 1"),
                    constraints: TaskConstraints(maxTaskRetryCount: 2))))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/bin/true"))
            try await h.engine.wait(timeout: .seconds(60)) { engine in
                try engine.prepReleaseStatus(jobID: "job").first?.jobPreparationTaskExecutionInfo.state == .completed
            }
            let status = try #require(try await h.engine.prepReleaseStatus(jobID: "job").first)
            #expect(status.jobPreparationTaskExecutionInfo.retryCount == 2)
            #expect(status.jobPreparationTaskExecutionInfo.lastRetryTime != nil)
            #expect(status.jobPreparationTaskExecutionInfo.result == "failure")
            #expect(EngineHarness.lines("\(effects)/prep").count == 3)
            // The only node is ineligible: the task stays active and never runs.
            #expect(try await h.engine.task(jobID: "job", taskID: "t").state == .active)
        }
    }

    @Test func withoutWaitForSuccessTasksRunEvenWhenPreparationFails() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("sleep 0.2; exit 3"), waitForSuccess: false)))
            _ = try await h.engine.addTasks(jobID: "job", (1...3).map { TaskSpec(id: "t\($0)", commandLine: "/bin/true") })
            try await h.waitForTasks("job")
            #expect(try await h.engine.taskCounts(jobID: "job").taskCounts.succeeded == 3)
            try await h.engine.wait(timeout: .seconds(60)) { try $0.prepReleaseStatus(jobID: "job").first?.jobPreparationTaskExecutionInfo.state == .completed }
            #expect(try await h.engine.prepReleaseStatus(jobID: "job").first?.jobPreparationTaskExecutionInfo.exitCode == 3)
        }
    }

    @Test(arguments: [true, false])
    func aRebootRerunsPreparationUnlessToldNotTo(rerun: Bool) async throws {
        let h = try await EngineHarness.make("reboot\(rerun)")
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            let nodes = try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("echo prep >> \(effects)/prep"), rerunOnNodeRebootAfterSuccess: rerun)))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "before", commandLine: "/bin/true"))
            try await h.waitForTasks("job")
            try await h.reboot(nodes[0])
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "after", commandLine: "/bin/true"))
            try await h.waitForTasks("job")
            #expect(EngineHarness.lines("\(effects)/prep").count == (rerun ? 2 : 1))
            #expect(try await h.engine.task(jobID: "job", taskID: "after").executionInfo.result == "success")
        }
    }

    /// A task waiting for its node's preparation counts as running (§2.12): disabling the job with
    /// `requeue` puts it back with `requeueCount`+1, with `terminate` completes it as `TaskEnded` (it
    /// never runs, even after enable), with `wait` lets it go back to `active` as it was.
    @Test(arguments: ["requeue", "terminate", "wait"])
    func disablingAJobEndsItsPreparingTasksAsItsOptionSays(option: String) async throws {
        let h = try await EngineHarness.make("disablePreparing\(option)")
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("i=0; while [ ! -e \(effects)/go ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done"))))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo ran >> \(effects)/t")))
            try await h.engine.wait(timeout: .seconds(60)) { try $0.task(jobID: "job", taskID: "t").state == .preparing }
            try await h.engine.disableJob(id: "job", disableTasks: option)
            try await h.waitForJob("job", .disabled)
            FileManager.default.createFile(atPath: "\(effects)/go", contents: nil)
            let task = try await h.engine.task(jobID: "job", taskID: "t")
            switch option {
            case "requeue":
                #expect(task.state == .active)
                #expect(task.executionInfo.requeueCount == 1)
            case "terminate":
                #expect(task.state == .completed)
                #expect(task.executionInfo.result == "failure")
                #expect(task.executionInfo.failureInfo?.code == "TaskEnded")
            default:
                #expect(task.state == .active)
                #expect(task.executionInfo.requeueCount == 0)
            }
            try await h.engine.enableJob(id: "job")
            try await h.waitForTasks("job")
            #expect(EngineHarness.lines("\(effects)/t").count == (option == "terminate" ? 0 : 1))
        }
    }

    /// The event log names the node of every preparation and release step, and of a task that waits
    /// for its node's preparation: a history read with SQL tells where each ran.
    @Test func preparationAndReleaseEventsNameTheirNode() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let nodes = try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("sleep 0.2")), jobReleaseTask: JobReleaseTask(commandLine: "/bin/true")))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/bin/true"))
            try await h.waitForTasks("job")
            try await h.engine.terminateJob(id: "job")
            try await h.waitForJob("job", .completed)
            let rows = try await h.sql("""
                SELECT kind, coalesce(node_id, '-') FROM event
                WHERE kind IN ('preparation.running', 'preparation.completed', 'release.running', 'release.completed', 'task.preparing', 'task.running')
                ORDER BY seq
                """)
            #expect(Set(rows.map { $0[0] }) == ["preparation.running", "preparation.completed", "release.running", "release.completed", "task.preparing", "task.running"], "\(rows)")
            #expect(rows.allSatisfy { $0[1] == nodes[0].id }, "\(rows)")
        }
    }

    @Test func preparationAndReleaseAreNotCountedAsNodeTasks() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let nodes = try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"), jobReleaseTask: JobReleaseTask(commandLine: "/bin/true")))
            _ = try await h.engine.addTasks(jobID: "job", (1...3).map { TaskSpec(id: "t\($0)", commandLine: "/bin/true") })
            try await h.waitForTasks("job")
            try await h.engine.terminateJob(id: "job")
            try await h.waitForJob("job", .completed)
            let node = try await h.engine.node(poolID: "pool", nodeID: nodes[0].id)
            #expect(node.totalTasksRun == 3)
            #expect(node.totalTasksSucceeded == 3)
            #expect(node.runningTasksCount == 0)
        }
    }
}
