import Bookend
import Foundation
import TestSupport
import Testing

/// Rules R1–R9 of the spec (§4.5): release runs once on every node that ran preparation, when the
/// job ends however it ends, and never twice.
@Suite struct ReleaseTests {
    /// A job on two nodes with one task per node, whose release appends the node id to a file.
    private func jobOnTwoNodes(_ h: EngineHarness, _ effects: String, configure: (inout JobSpec) -> Void = { _ in }) async throws {
        try await h.pool(nodes: 2, slots: 1)
        var spec = JobSpec(id: "job", poolID: "pool",
            jobPreparationTask: JobPreparationTask(commandLine: sh("echo $AZ_BATCH_NODE_ID >> \(effects)/prep")),
            jobReleaseTask: JobReleaseTask(commandLine: sh("echo $AZ_BATCH_NODE_ID >> \(effects)/release")))
        configure(&spec)
        try await h.engine.createJob(spec)
        // Long enough that both nodes get one.
        _ = try await h.engine.addTasks(jobID: "job", [TaskSpec(id: "a", commandLine: "/bin/sleep 0.3"), TaskSpec(id: "b", commandLine: "/bin/sleep 0.3")])
    }

    private func expectReleasedOnceWherePrepared(_ effects: String) {
        let prepared = EngineHarness.lines("\(effects)/prep")
        let released = EngineHarness.lines("\(effects)/release")
        #expect(prepared.count == 2)
        #expect(released.sorted() == prepared.sorted())
    }

    @Test func releaseRunsOncePerPreparedNodeOnTerminateAndNotAgainOnDelete() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await jobOnTwoNodes(h, effects)
            try await h.waitForTasks("job")
            try await h.engine.terminateJob(id: "job", terminateReason: "done here")
            try await h.waitForJob("job", .completed)
            expectReleasedOnceWherePrepared(effects)
            let job = try await h.engine.job(id: "job")
            #expect(job.executionInfo.terminateReason == "done here")
            #expect(job.executionInfo.endTime != nil)
            for status in try await h.engine.prepReleaseStatus(jobID: "job") {
                #expect(status.jobReleaseTaskExecutionInfo?.state == .completed)
                #expect(status.jobReleaseTaskExecutionInfo?.exitCode == 0)
            }
            try await h.engine.deleteJob(id: "job")
            try await h.waitForJobDeletion("job")
            #expect(EngineHarness.lines("\(effects)/release").count == 2)
        }
    }

    @Test func deletingAnActiveJobRunsReleaseThenRemovesIt() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await jobOnTwoNodes(h, effects)
            try await h.waitForTasks("job")
            try await h.engine.deleteJob(id: "job")
            try await h.waitForJobDeletion("job")
            // It went through `deleting` (read from the event log: the engine, on its own queue, may
            // have removed the job before this test could look at its state).
            #expect(try await h.sql("SELECT count(*) FROM event WHERE job_id = 'job' AND kind = 'job.deleting'") == [["1"]])
            expectReleasedOnceWherePrepared(effects)
            await #expect(throws: BookendError.self) { try await h.engine.job(id: "job") }
            // The job's folders are gone from every node; the event log keeps its history.
            for node in try await h.engine.nodes(poolID: "pool") {
                #expect(!FileManager.default.fileExists(atPath: node.rootDirectory + "/workitems/job"))
            }
            #expect(try await h.sql("SELECT count(*) FROM event WHERE job_id = 'job' AND kind = 'release.completed'") == [["2"]])
        }
    }

    @Test func releaseRunsWhenTheJobWallClockExpires() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await jobOnTwoNodes(h, effects)
            // Once both nodes have prepared, the limit is set to zero: the job has outlived it at once.
            try await h.waitForTasks("job")
            try await h.engine.updateJob(id: "job", JobUpdate(constraints: JobConstraints(maxWallClockTime: "PT0S")))
            try await h.waitForJob("job", .completed)
            expectReleasedOnceWherePrepared(effects)
            #expect(try await h.engine.job(id: "job").executionInfo.terminateReason == "MaxWallClockTimeExpiry")
        }
    }

    /// A task ended because its job ended says why the job ended (`MaxWallClockTimeExpiry` here),
    /// not `UserTerminate`: nobody terminated anything.
    @Test func aTaskEndedByItsJobsWallClockSaysSo() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"), jobReleaseTask: JobReleaseTask(commandLine: "/bin/true")))
            try await h.addRunningSleep(job: "job", task: "long")
            try await h.engine.updateJob(id: "job", JobUpdate(constraints: JobConstraints(maxWallClockTime: "PT0S")))
            try await h.waitForJob("job", .completed)
            let task = try await h.engine.task(jobID: "job", taskID: "long")
            #expect(task.executionInfo.failureInfo?.code == "TaskEnded")
            #expect(task.executionInfo.failureInfo?.details == [NameValuePair(name: "Reason", value: "MaxWallClockTimeExpiry")])
            // A task terminated by itself, in a live job, still says UserTerminate.
            try await h.engine.createJob(JobSpec(id: "live", poolID: "pool"))
            try await h.addRunningSleep(job: "live", task: "t")
            try await h.engine.terminateTask(jobID: "live", taskID: "t")
            try await h.waitForTasks("live")
            let terminated = try await h.engine.task(jobID: "live", taskID: "t")
            #expect(terminated.executionInfo.failureInfo?.details == [NameValuePair(name: "Reason", value: "UserTerminate")])
        }
    }

    /// R3: a node that leaves the pool while its release runs is skipped. Its removal put the release
    /// back to pending on a node that can never run it, and the job stayed terminating (or deleting)
    /// for ever.
    @Test(arguments: [false, true])
    func aJobEndsWhenANodeLeavesWhileItsReleaseRuns(deleting: Bool) async throws {
        let h = try await EngineHarness.make("releaseOnLeavingNode\(deleting)")
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 2, slots: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"),
                jobReleaseTask: JobReleaseTask(commandLine: sh("echo $AZ_BATCH_NODE_ID >> \(effects)/release; sleep 3"))))
            _ = try await h.engine.addTasks(jobID: "job", [TaskSpec(id: "a", commandLine: "/bin/sleep 0.5"), TaskSpec(id: "b", commandLine: "/bin/sleep 0.5")])
            try await h.waitForTasks("job")
            if deleting { try await h.engine.deleteJob(id: "job") } else { try await h.engine.terminateJob(id: "job") }
            try await h.engine.wait(timeout: .seconds(60)) { _ in EngineHarness.lines("\(effects)/release").count == 2 }
            try await h.engine.resizePool(id: "pool", targetDedicatedNodes: 1)
            if deleting { try await h.waitForJobDeletion("job") } else { try await h.waitForJob("job", .completed) }
        }
    }

    /// R3: a node leaving the pool once its work is done (`taskcompletion`) still runs the release of
    /// a job that ends while it drains. The job's end killed the node's last task and the node left at
    /// once, so the node that prepared never released.
    @Test(arguments: [false, true])
    func aNodeThatDrainsRunsTheReleaseOfAJobEndingMeanwhile(deleting: Bool) async throws {
        let h = try await EngineHarness.make("releaseOnDrainingNode\(deleting)")
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 2, slots: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("echo $AZ_BATCH_NODE_ID >> \(effects)/prep")),
                jobReleaseTask: JobReleaseTask(commandLine: sh("echo $AZ_BATCH_NODE_ID >> \(effects)/release"))))
            // Long enough never to end on their own: in CI runs where this test took a minute to get
            // from the start of these tasks to the job's end, `sleep 60` had ended first and the
            // drained node had left with no release owed (as it should), which failed the test.
            let long = sh("echo $AZ_BATCH_TASK_ID >> \(effects)/runs; sleep 600")
            _ = try await h.engine.addTasks(jobID: "job", [TaskSpec(id: "a", commandLine: long), TaskSpec(id: "b", commandLine: long)])
            try await h.engine.wait(timeout: .seconds(60)) { _ in EngineHarness.lines("\(effects)/runs").count == 2 }
            try await h.engine.resizePool(id: "pool", targetDedicatedNodes: 1, nodeDeallocationOption: "taskcompletion")
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await h.engine.nodes(poolID: "pool").count == 2, "the leaving node waits for its task")
            if deleting { try await h.engine.deleteJob(id: "job") } else { try await h.engine.terminateJob(id: "job") }
            if deleting { try await h.waitForJobDeletion("job") } else { try await h.waitForJob("job", .completed) }
            let prepared = EngineHarness.lines("\(effects)/prep").sorted()
            #expect(prepared.count == 2)
            let released = EngineHarness.lines("\(effects)/release").sorted()
            // If a release is missing, the history of the nodes, the job and its releases says why.
            let history = released == prepared ? [] : try await h.sql(
                "SELECT seq, time, kind, node_id, task_id, from_state, to_state, detail FROM event WHERE job_id = 'job' OR kind LIKE 'node.%' ORDER BY seq")
            #expect(released == prepared, "once on every node that prepared; the events: \(history.map { $0.joined(separator: " ") }.joined(separator: "\n"))")
            // Then the node leaves.
            try await h.engine.wait(timeout: .seconds(60)) { engine in try engine.nodes(poolID: "pool").count == 1 }
        }
    }

    @Test func releaseRunsWhenAllTasksComplete() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 2, slots: 1)
            // As with Azure Batch, a job with no tasks counts as complete, so the tasks go in first and
            // the job is switched to terminatejob afterwards.
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: sh("echo $AZ_BATCH_NODE_ID >> \(effects)/prep")),
                jobReleaseTask: JobReleaseTask(commandLine: sh("echo $AZ_BATCH_NODE_ID >> \(effects)/release"))))
            _ = try await h.engine.addTasks(jobID: "job", [TaskSpec(id: "a", commandLine: "/bin/sleep 0.3"), TaskSpec(id: "b", commandLine: "/bin/sleep 0.3")])
            try await h.engine.updateJob(id: "job", JobUpdate(onAllTasksComplete: "terminatejob"))
            try await h.waitForJob("job", .completed)
            #expect(try await h.engine.job(id: "job").executionInfo.terminateReason == "AllTasksComplete")
            let released = EngineHarness.lines("\(effects)/release")
            #expect(released.sorted() == EngineHarness.lines("\(effects)/prep").sorted())
        }
    }

    @Test func jobManagerCompletionEndsTheJobAndRunsRelease() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1, slots: 2)
            var spec = JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"),
                jobReleaseTask: JobReleaseTask(commandLine: sh("echo released >> \(effects)/release")))
            // The manager ends only once `long` runs, so the job ends with `long` running (not queued).
            var manager = JobManagerTask(id: "manager", commandLine: sh("until [ -e \(effects)/long ]; do sleep 0.05; done"))
            manager.runExclusive = false
            spec.jobManagerTask = manager
            try await h.engine.createJob(spec)
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "long", commandLine: sh("touch \(effects)/long; sleep 300")))
            try await h.waitForJob("job", .completed)
            #expect(try await h.engine.job(id: "job").executionInfo.terminateReason == "JMComplete")
            #expect(EngineHarness.lines("\(effects)/release") == ["released"])
            let long = try await h.engine.task(jobID: "job", taskID: "long")
            #expect(long.state == .completed)
            #expect(long.executionInfo.result == "failure")
            #expect(long.executionInfo.failureInfo?.code == "TaskEnded")
        }
    }

    @Test func theJobStaysTerminatingUntilEveryReleaseEnds() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"),
                jobReleaseTask: JobReleaseTask(commandLine: sh("touch \(effects)/started; until [ -e \(effects)/go ]; do sleep 0.05; done; exit 4"))))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/bin/true"))
            try await h.waitForTasks("job")
            try await h.engine.terminateJob(id: "job")
            try await h.engine.wait(timeout: .seconds(60)) { _ in FileManager.default.fileExists(atPath: "\(effects)/started") }
            // The release runs until told to end: the job is terminating all that time.
            #expect(try await h.engine.job(id: "job").state == .terminating)
            FileManager.default.createFile(atPath: "\(effects)/go", contents: nil)
            try await h.waitForJob("job", .completed)
            // A failed release never blocks completion.
            let release = try #require(try await h.engine.prepReleaseStatus(jobID: "job").first?.jobReleaseTaskExecutionInfo)
            #expect(release.result == "failure")
            #expect(release.exitCode == 4)
        }
    }

    @Test func terminateKillsRunningTasksAndLeavesActiveOnesActive() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 1, slots: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"), jobReleaseTask: JobReleaseTask(commandLine: "/bin/true")))
            _ = try await h.engine.addTasks(jobID: "job", [TaskSpec(id: "running", commandLine: "/bin/sleep 600"), TaskSpec(id: "queued", commandLine: "/bin/true")])
            try await h.engine.wait(timeout: .seconds(60)) { try $0.task(jobID: "job", taskID: "running").state == .running }
            try await h.engine.terminateJob(id: "job")
            try await h.waitForJob("job", .completed)
            let running = try await h.engine.task(jobID: "job", taskID: "running")
            #expect(running.state == .completed)
            #expect(running.executionInfo.result == "failure")
            #expect(running.executionInfo.failureInfo?.code == "TaskEnded")
            #expect(try await h.engine.task(jobID: "job", taskID: "queued").state == .active)
            await #expect(throws: BookendError.self) { try await h.engine.addTask(jobID: "job", TaskSpec(id: "late", commandLine: "/bin/true")) }
        }
    }

    @Test func releaseNeedsPreparationAndIsCappedAtFifteenMinutes() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            do {
                try await h.engine.createJob(JobSpec(id: "a", poolID: "pool", jobReleaseTask: JobReleaseTask(commandLine: "/bin/true")))
                Issue.record("a release without preparation was accepted")
            } catch let error as BookendError {
                #expect(error.code == "InvalidPropertyValue")
                #expect(error.details.contains(BookendError.Detail(key: "PropertyName", value: "jobReleaseTask")))
            }
            do {
                try await h.engine.createJob(JobSpec(id: "b", poolID: "pool", jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"),
                    jobReleaseTask: JobReleaseTask(commandLine: "/bin/true", maxWallClockTime: "PT16M")))
                Issue.record("a release longer than PT15M was accepted")
            } catch let error as BookendError {
                #expect(error.code == "InvalidPropertyValue")
            }
            let job = try await h.engine.createJob(JobSpec(id: "c", poolID: "pool", jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"),
                jobReleaseTask: JobReleaseTask(commandLine: "/bin/true")))
            #expect(job.jobReleaseTask?.maxWallClockTime == "PT15M")
            #expect(job.jobReleaseTask?.retentionTime == "P7D")
            #expect(job.jobReleaseTask?.id == "jobrelease")
            #expect(job.jobPreparationTask?.id == "jobpreparation")
            #expect(job.jobPreparationTask?.waitForSuccess == true)
            #expect(job.jobPreparationTask?.rerunOnNodeRebootAfterSuccess == true)
            #expect(job.jobPreparationTask?.constraints?.maxWallClockTime == "P10675199DT2H48M5.4775807S")
            #expect(try await h.sql("SELECT count(*) FROM job") == [["1"]])
        }
    }

    /// The release's wall clock (at most PT15M, PT5S here: long enough for its first line to run on a
    /// loaded machine) is enforced: a release still running at its
    /// deadline is ended, recorded as a failure, and the job completes.
    @Test func aReleaseRunningPastItsMaxWallClockTimeIsEnded() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"),
                jobReleaseTask: JobReleaseTask(
                    commandLine: sh("echo started >> \(effects)/release; sleep 300; echo finished >> \(effects)/release"),
                    maxWallClockTime: "PT5S")))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/bin/true"))
            try await h.waitForTasks("job")
            try await h.engine.terminateJob(id: "job")
            try await h.waitForJob("job", .completed)
            let release = try #require(try await h.engine.prepReleaseStatus(jobID: "job").first?.jobReleaseTaskExecutionInfo)
            #expect(release.state == .completed)
            #expect(release.result == "failure")
            #expect(release.exitCode == 143)
            // Ended by Bookend for its wall clock (§12): TaskEnded, with the reason as a detail.
            #expect(release.failureInfo?.code == "TaskEnded")
            #expect(release.failureInfo?.details == [NameValuePair(name: "Reason", value: "MaxWallClockTimeExpiry")])
            #expect(EngineHarness.lines("\(effects)/release") == ["started"])
            // Ended by its own deadline (start + 5 s), not by the job's end or anything else.
            #expect(try await h.sql(
                "SELECT CAST(round((julianday(deadline) - julianday(start_time)) * 86400000) AS INTEGER), kill_reason FROM execution WHERE kind = 'release'")
                == [["5000", "timeout"]])
        }
    }

    /// The 15-minute cap itself, shortened to 5 s through `releaseWallClockCap`: a release that gives no
    /// `maxWallClockTime` gets the cap as its limit, a longer one is refused, and one still running at
    /// the cap is ended for its wall clock.
    @Test func aReleaseWithoutItsOwnLimitIsEndedAtTheCap() async throws {
        var configuration = EngineConfiguration(tickInterval: .milliseconds(100))
        configuration.releaseWallClockCap = .seconds(5)
        let h = try await EngineHarness.make(configuration: configuration)
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1)
            do {
                try await h.engine.createJob(JobSpec(id: "long", poolID: "pool", jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"),
                    jobReleaseTask: JobReleaseTask(commandLine: "/bin/true", maxWallClockTime: "PT6S")))
                Issue.record("a release longer than the cap was accepted")
            } catch let error as BookendError {
                #expect(error.code == "InvalidPropertyValue")
                #expect(error.message.contains("at most PT5S"), "\(error.message)")
            }
            let job = try await h.engine.createJob(JobSpec(id: "job", poolID: "pool",
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"),
                jobReleaseTask: JobReleaseTask(commandLine: sh("echo started >> \(effects)/release; sleep 300; echo finished >> \(effects)/release"))))
            #expect(job.jobReleaseTask?.maxWallClockTime == "PT5S")
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/bin/true"))
            try await h.waitForTasks("job")
            try await h.engine.terminateJob(id: "job")
            try await h.waitForJob("job", .completed)
            let release = try #require(try await h.engine.prepReleaseStatus(jobID: "job").first?.jobReleaseTaskExecutionInfo)
            #expect(release.state == .completed)
            #expect(release.result == "failure")
            #expect(release.failureInfo?.code == "TaskEnded")
            #expect(release.failureInfo?.details == [NameValuePair(name: "Reason", value: "MaxWallClockTimeExpiry")])
            #expect(EngineHarness.lines("\(effects)/release") == ["started"])
            #expect(try await h.sql(
                "SELECT CAST(round((julianday(deadline) - julianday(start_time)) * 86400000) AS INTEGER), kill_reason FROM execution WHERE kind = 'release'")
                == [["5000", "timeout"]])
        }
    }

    @Test func statusListNeedsPreparationAndIsEmptyBeforeAnyNode() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.engine.createJob(JobSpec(id: "plain", poolID: "nowhere"))
            do {
                _ = try await h.engine.prepReleaseStatus(jobID: "plain")
                Issue.record("status of a job without preparation was answered")
            } catch let error as BookendError {
                #expect(error.code == "JobPreparationTaskNotSpecified")
                #expect(error.kind == .conflict)
            }
            try await h.engine.createJob(JobSpec(id: "prepared", poolID: "nowhere", jobPreparationTask: JobPreparationTask(commandLine: "/bin/true")))
            #expect(try await h.engine.prepReleaseStatus(jobID: "prepared").isEmpty)
        }
    }
}
