import Bookend
import Foundation
import TestSupport
import Testing

/// Job and task controls: disable/enable, terminate/reactivate, parallelism, the job manager,
/// exit conditions, node reboots and pool resizing, and the event stream.
@Suite struct JobControlTests {
    @Test func disablingWithRequeueStopsRunningTasksAndEnablingRunsThemAgain() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            // The first run sleeps far longer than a requeue takes: with the whole suite loading both cores
            // the scheduling loop can be starved for seconds, and a short sleep could end by itself first.
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh("echo run >> \(effects)/runs; [ $(wc -l < \(effects)/runs) -ge 2 ] || sleep 300")))
            try await h.engine.wait(timeout: .seconds(60)) { try $0.task(jobID: "job", taskID: "t").state == .running }
            try await h.engine.disableJob(id: "job", disableTasks: "requeue")
            try await h.waitForJob("job", .disabled)
            let requeued = try await h.engine.task(jobID: "job", taskID: "t")
            #expect(requeued.state == .active)
            #expect(requeued.executionInfo.requeueCount == 1)
            #expect(requeued.executionInfo.lastRequeueTime != nil)
            // The node is free, and a later task runs on it: the disabled job's task was passed over.
            try await h.dispatchSentinel()
            #expect(try await h.engine.task(jobID: "job", taskID: "t").state == .active)
            #expect(try await h.sql("SELECT count(*) FROM event WHERE job_id = 'job' AND task_id = 't' AND kind = 'task.running'") == [["1"]])
            try await h.engine.enableJob(id: "job")
            try await h.waitForTasks("job")
            #expect(try await h.engine.task(jobID: "job", taskID: "t").executionInfo.result == "success")
            #expect(EngineHarness.lines("\(effects)/runs").count == 2)
            await #expect(throws: BookendError.self) { try await h.engine.disableJob(id: "job", disableTasks: "sometimes") }
        }
    }

    /// A task Bookend ends (a terminate, its wall clock) leaves nothing of its session behind: here the
    /// command starts a process in a group of its own (as a shell with job control would), which the
    /// SIGTERM to the command's group does not reach; once the command has exited, it is killed too.
    /// The task is ended only once that process has left the group (it says so in `away`): a wall
    /// clock given at the start could run out first on a loaded machine. It is set on the running
    /// task instead, and holds from the attempt's start, so it has run out by then.
    @Test(arguments: ["terminate", "wall clock"])
    func anEndedTaskLeavesNothingOfItsSessionBehind(_ how: String) async throws {
        let h = try await EngineHarness.make("endedSession\(how.filter(\.isLetter))")
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            let go = "\(effects)/go"
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            let command = sh("""
                perl -e 'setpgrp(0, 0); exec @ARGV' sh -c \
                  'echo away >> \(effects)/away; i=0; while [ ! -e \(go) ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done; echo leftover >> \(effects)/runs' &
                echo start >> \(effects)/runs; wait
                """)
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: command))
            try await h.engine.wait(timeout: .seconds(60)) { _ in
                EngineHarness.lines("\(effects)/runs") == ["start"] && EngineHarness.lines("\(effects)/away") == ["away"]
            }
            if how == "terminate" {
                try await h.engine.terminateTask(jobID: "job", taskID: "t")
            } else {
                try await h.engine.updateTask(jobID: "job", taskID: "t", constraints: TaskConstraints(maxWallClockTime: "PT1S"))
            }
            try await h.waitForTasks("job")
            let ended = try await h.engine.task(jobID: "job", taskID: "t")
            #expect(ended.executionInfo.failureInfo?.code == "TaskEnded")
            #expect(ended.executionInfo.failureInfo?.details == [NameValuePair(name: "Reason", value: how == "terminate" ? "UserTerminate" : "MaxWallClockTimeExpiry")])
            // Were the process in its own group still alive, it would write its line within 0.1 s of `go`.
            FileManager.default.createFile(atPath: go, contents: nil)
            try await Task.sleep(for: .milliseconds(1000))
            #expect(EngineHarness.lines("\(effects)/runs") == ["start"])
        }
    }

    /// A wall clock set on a running task holds for the attempt under way, from its start (§4.2): it
    /// was stored and shown, and the task ran on.
    @Test func aWallClockSetOnARunningTaskEndsIt() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.addRunningSleep(job: "job", task: "long")
            try await h.engine.updateTask(jobID: "job", taskID: "long", constraints: TaskConstraints(maxWallClockTime: "PT1S"))
            try await h.waitForTasks("job")
            let ended = try await h.engine.task(jobID: "job", taskID: "long")
            #expect(ended.executionInfo.failureInfo?.code == "TaskEnded")
            #expect(ended.executionInfo.failureInfo?.details == [NameValuePair(name: "Reason", value: "MaxWallClockTimeExpiry")])
        }
    }

    @Test func terminatedTasksFailAndReactivatedTasksRunAgain() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.addRunningSleep(job: "job", task: "long")
            try await h.engine.terminateTask(jobID: "job", taskID: "long")
            try await h.waitForTasks("job")
            let ended = try await h.engine.task(jobID: "job", taskID: "long")
            #expect(ended.executionInfo.failureInfo?.code == "TaskEnded")
            do {
                try await h.engine.terminateTask(jobID: "job", taskID: "long")
                Issue.record("terminating a completed task was accepted")
            } catch let error as BookendError {
                #expect(error.code == "TaskCompleted")
            }
            do {
                try await h.engine.updateTask(jobID: "job", taskID: "long", constraints: nil)
                Issue.record("updating a completed task was accepted")
            } catch let error as BookendError {
                #expect(error.code == "TaskCompleted")
            }
        }
    }

    @Test func reactivationClearsTheResultAndRunsTheTaskAgain() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            // Once fixed, it runs until the test says `go`, so its result is surely not in yet when checked.
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh(
                "echo run >> \(effects)/runs; test -f \(effects)/fixed || exit 1; until [ -e \(effects)/go ]; do sleep 0.05; done")))
            try await h.waitForTasks("job")
            #expect(try await h.engine.task(jobID: "job", taskID: "t").executionInfo.result == "failure")
            FileManager.default.createFile(atPath: "\(effects)/fixed", contents: nil)
            try await h.engine.reactivateTask(jobID: "job", taskID: "t")
            #expect(try await h.engine.task(jobID: "job", taskID: "t").executionInfo.exitCode == nil)
            FileManager.default.createFile(atPath: "\(effects)/go", contents: nil)
            try await h.waitForTasks("job")
            #expect(try await h.engine.task(jobID: "job", taskID: "t").executionInfo.result == "success")
            #expect(EngineHarness.lines("\(effects)/runs").count == 2)
            do {
                try await h.engine.reactivateTask(jobID: "job", taskID: "t")
                Issue.record("reactivating a succeeded task was accepted")
            } catch let error as BookendError {
                #expect(error.code == "TaskSucceeded")
            }
        }
    }

    @Test func maxParallelTasksCapsConcurrentTasks() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 2, slots: 4)
            var job = JobSpec(id: "job", poolID: "pool")
            job.maxParallelTasks = 2
            try await h.engine.createJob(job)
            let script = "echo start >> \(effects)/log; sleep 0.3; echo end >> \(effects)/log"
            _ = try await h.engine.addTasks(jobID: "job", (1...6).map { TaskSpec(id: "t\($0)", commandLine: sh(script)) })
            try await h.waitForTasks("job")
            #expect(EngineHarness.peakConcurrency("\(effects)/log") == 2)
        }
    }

    @Test func higherPriorityJobsRunFirstThenSubmissionOrder() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            // Everything is queued before the pool exists, so the first dispatch sees all of it.
            for (id, priority) in [("low", -5), ("first", 0), ("high", 100), ("second", 0)] {
                try await h.engine.createJob(JobSpec(id: id, poolID: "pool", priority: priority))
                _ = try await h.engine.addTasks(jobID: id, (1...2).map { TaskSpec(id: "t\($0)", commandLine: sh("echo \(id) >> \(effects)/order")) })
            }
            try await h.pool(nodes: 1, slots: 1)
            for id in ["low", "first", "high", "second"] { try await h.waitForTasks(id) }
            #expect(EngineHarness.lines("\(effects)/order") == ["high", "high", "first", "first", "second", "second", "low", "low"])
        }
    }

    @Test func theJobManagerRunsBeforeOtherTasks() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 1, slots: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "nowhere-yet"))
            _ = try await h.engine.addTasks(jobID: "job", (1...3).map { TaskSpec(id: "t\($0)", commandLine: sh("echo task >> \(effects)/order")) })
            var spec = JobSpec(id: "managed", poolID: "pool")
            spec.jobManagerTask = JobManagerTask(id: "manager", commandLine: sh("echo manager >> \(effects)/managed"), killJobOnCompletion: false)
            try await h.engine.createJob(spec)
            _ = try await h.engine.addTasks(jobID: "managed", (1...3).map { TaskSpec(id: "t\($0)", commandLine: sh("echo task >> \(effects)/managed")) })
            try await h.waitForTasks("managed")
            #expect(EngineHarness.lines("\(effects)/managed").first == "manager")
            #expect(EngineHarness.lines("\(effects)/managed").count == 4)
            // A job whose pool does not exist waits without error.
            #expect(try await h.engine.taskCounts(jobID: "job").taskCounts.active == 3)
        }
    }

    @Test func exitConditionsCanTerminateTheJob() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool()
            var job = JobSpec(id: "job", poolID: "pool")
            job.onTaskFailure = "performexitoptionsjobaction"
            try await h.engine.createJob(job)
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "tolerated", commandLine: "/bin/sh -c 'exit 2'",
                exitConditions: ExitConditions(exitCodes: [ExitCodeMapping(code: 2, exitOptions: ExitOptions(jobAction: "none"))])))
            try await h.waitForTasks("job")
            #expect(try await h.engine.job(id: "job").state == .active)
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "fatal", commandLine: "/bin/sh -c 'exit 9'"))
            try await h.waitForJob("job", .completed)
            #expect(try await h.engine.job(id: "job").executionInfo.terminateReason == "TaskFailed")
            do {
                try await h.engine.createJob(JobSpec(id: "plain", poolID: "pool"))
                try await h.engine.addTask(jobID: "plain", TaskSpec(id: "x", commandLine: "/bin/true",
                    exitConditions: ExitConditions(default: ExitOptions(jobAction: "terminate"))))
                Issue.record("a jobAction on a noaction job was accepted")
            } catch let error as BookendError {
                #expect(error.code == "InvalidPropertyValue")
            }
        }
    }

    @Test func rebootingANodeRequeuesItsRunningTasks() async throws {
        // A grace period longer than the test, so only the task itself decides when the reboot can end.
        let h = try await EngineHarness.make(configuration: EngineConfiguration(tickInterval: .milliseconds(100), killGracePeriod: .seconds(300)))
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            let nodes = try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            // Long only on its first run, so it is surely still running when the reboot lands; and it
            // outlives the reboot's SIGTERM until the test says `go`, so the node is surely still
            // rebooting when the second reboot is asked for (the engine, on its own queue, could
            // otherwise finish the whole reboot before this test's next line runs).
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: sh(
                "test -f \(effects)/ran && exit 0; touch \(effects)/ran; trap 'until [ -e \(effects)/go ]; do sleep 0.05; done; exit 143' TERM; sleep 300 & wait")))
            try await h.engine.wait(timeout: .seconds(60)) { try $0.task(jobID: "job", taskID: "t").state == .running }
            try await h.engine.rebootNode(poolID: "pool", nodeID: nodes[0].id)
            do {
                try await h.engine.rebootNode(poolID: "pool", nodeID: nodes[0].id)
                Issue.record("a second reboot was accepted")
            } catch let error as BookendError {
                #expect(error.code == "NodeBeingRebooted")
            }
            FileManager.default.createFile(atPath: "\(effects)/go", contents: nil)
            try await h.waitForTasks("job")
            let task = try await h.engine.task(jobID: "job", taskID: "t")
            #expect(task.executionInfo.requeueCount == 1)
            #expect(task.executionInfo.result == "success")
        }
    }

    @Test func resizingAndDeletingAPool() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 1)
            try await h.engine.resizePool(id: "pool", targetDedicatedNodes: 3)
            try await h.engine.wait(timeout: .seconds(60)) { try $0.pool(id: "pool").allocationState == .steady }
            #expect(try await h.engine.nodes(poolID: "pool").count == 3)
            try await h.engine.resizePool(id: "pool", targetDedicatedNodes: 1)
            try await h.engine.wait(timeout: .seconds(60)) { engine in
                try engine.pool(id: "pool").allocationState == .steady && engine.nodes(poolID: "pool").count == 1
            }
            #expect(try await h.engine.pool(id: "pool").currentDedicatedNodes == 1)
            try await h.engine.deletePool(id: "pool")
            try await h.engine.wait(timeout: .seconds(60)) { engine in (try? engine.pool(id: "pool")) == nil }
            // The id is free again, and history still names the old nodes.
            try await h.pool(nodes: 1)
            #expect(try await h.sql("SELECT count(*) FROM node") == [["4"]])
        }
    }

    /// Spec §4.4: shrinking a pool applies `nodeDeallocationOption` to the busy nodes it removes:
    /// `requeue` runs their tasks again elsewhere, `terminate` ends them (`TaskEnded`, not run again),
    /// `taskcompletion` lets them finish before the node goes. (Every option acted as `requeue`.)
    @Test(arguments: ["requeue", "terminate", "taskcompletion"])
    func shrinkingAPoolAppliesItsDeallocationOption(_ option: String) async throws {
        let h = try await EngineHarness.make("deallocation\(option)")
        try await withCleanup({ await h.finish() }) {
            let effects = try h.sideEffects()
            try await h.pool(nodes: 2, slots: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            let go = "\(effects)/go"
            // Each runs until the test says go (at most 5 min, so that a machine slowed by the whole suite does not end it first); a requeued one runs again and ends at once.
            let command = sh("echo $AZ_BATCH_TASK_ID >> \(effects)/runs; i=0; while [ ! -e \(go) ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done")
            _ = try await h.engine.addTasks(jobID: "job", [TaskSpec(id: "a", commandLine: command), TaskSpec(id: "b", commandLine: command)])
            try await h.engine.wait(timeout: .seconds(60)) { _ in EngineHarness.lines("\(effects)/runs").count == 2 }
            try await h.engine.resizePool(id: "pool", targetDedicatedNodes: 1, nodeDeallocationOption: option)
            switch option {
            case "taskcompletion":
                // The leaving node waits for its task; nothing is ended or run again.
                try await Task.sleep(for: .seconds(1))
                #expect(try await h.engine.nodes(poolID: "pool").count == 2)
                FileManager.default.createFile(atPath: go, contents: nil)
                try await h.waitForTasks("job")
                for id in ["a", "b"] {
                    let task = try await h.engine.task(jobID: "job", taskID: id)
                    #expect(task.executionInfo.result == "success" && task.executionInfo.requeueCount == 0)
                }
                #expect(EngineHarness.lines("\(effects)/runs").count == 2)
            case "terminate":
                try await h.engine.wait(timeout: .seconds(60)) { engine in
                    try ["a", "b"].contains { try engine.task(jobID: "job", taskID: $0).executionInfo.failureInfo?.code == "TaskEnded" }
                }
                FileManager.default.createFile(atPath: go, contents: nil)
                try await h.waitForTasks("job")
                var codes: [String] = []
                for id in ["a", "b"] {
                    let task = try await h.engine.task(jobID: "job", taskID: id)
                    codes.append(task.executionInfo.failureInfo?.code ?? "none")
                    #expect(task.executionInfo.requeueCount == 0)
                }
                #expect(codes.sorted() == ["TaskEnded", "none"])
                #expect(EngineHarness.lines("\(effects)/runs").count == 2, "the ended task did not run again")
            default:
                // The removed node's task goes back to the queue, and runs again on the node that stays.
                try await h.engine.wait(timeout: .seconds(60)) { engine in
                    try ["a", "b"].contains { try engine.task(jobID: "job", taskID: $0).executionInfo.requeueCount == 1 }
                }
                FileManager.default.createFile(atPath: go, contents: nil)
                try await h.waitForTasks("job")
                #expect(EngineHarness.lines("\(effects)/runs").count == 3)
                var requeues: [Int] = []
                for id in ["a", "b"] {
                    let task = try await h.engine.task(jobID: "job", taskID: id)
                    requeues.append(task.executionInfo.requeueCount)
                    #expect(task.executionInfo.result == "success")
                }
                #expect(requeues.sorted() == [0, 1])
            }
            try await h.engine.wait(timeout: .seconds(60)) { engine in
                try engine.pool(id: "pool").allocationState == .steady && engine.nodes(poolID: "pool").count == 1
            }
        }
    }

    /// A pool deleted while a node drains (taskcompletion) does not wait for that node's work: its
    /// deletion requeues it, as it does on every other node (§4.4).
    @Test func deletingAPoolDoesNotWaitForADrainingNode() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 1)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.addRunningSleep(job: "job", task: "long")
            try await h.engine.resizePool(id: "pool", targetDedicatedNodes: 0, nodeDeallocationOption: "taskcompletion")
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await h.engine.task(jobID: "job", taskID: "long").state == .running, "the drain lets it run")
            try await h.engine.deletePool(id: "pool")
            try await h.engine.wait(timeout: .seconds(30)) { engine in (try? engine.pool(id: "pool")) == nil }
            let task = try await h.engine.task(jobID: "job", taskID: "long")
            #expect(task.state == .active && task.executionInfo.requeueCount == 1)
        }
    }

    /// A node that leaves its pool takes its folder with it, as a removed machine takes its disk: a
    /// pool resized up and down, or deleted, leaves no node folders behind. A folder an earlier
    /// engine left (it crashed before removing it, or predates this) goes at the next start.
    @Test func nodesThatLeaveTheirPoolTakeTheirFoldersWithThem() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool(nodes: 3)
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            _ = try await h.engine.addTasks(jobID: "job", (1...6).map { TaskSpec(id: "t\($0)", commandLine: sh("echo out > kept.txt")) })
            try await h.waitForTasks("job")
            func roots(_ removed: Bool) async throws -> [String] {
                try await h.sql("SELECT root_dir FROM node WHERE removed_time IS \(removed ? "NOT " : "")NULL").map { $0[0] }
            }
            let before = try await roots(false)
            #expect(before.count == 3 && before.allSatisfy { FileManager.default.fileExists(atPath: $0) })
            try await h.engine.resizePool(id: "pool", targetDedicatedNodes: 1)
            try await h.engine.wait(timeout: .seconds(60)) { engine in
                try engine.pool(id: "pool").allocationState == .steady && engine.nodes(poolID: "pool").count == 1
            }
            let removed = try await roots(true)
            #expect(removed.count == 2)
            try await h.engine.wait(timeout: .seconds(30)) { _ in removed.allSatisfy { !FileManager.default.fileExists(atPath: $0) } }
            let kept = try await roots(false)
            #expect(kept.count == 1 && FileManager.default.fileExists(atPath: kept[0]))
            // The task files of the node that stayed are still there to read.
            let onKept = try await h.sql("SELECT t.id FROM task t JOIN node n ON n.pk = t.node_pk WHERE n.removed_time IS NULL LIMIT 1")
            if let id = onKept.first?[0] {
                #expect(String(decoding: try await h.engine.readTaskFile(jobID: "job", taskID: id, path: "wd/kept.txt"), as: UTF8.self) == "out\n")
            }
            // A removed node's folder found at start (as a crash between the commit and the removal
            // leaves it) is removed then.
            await h.engine.shutdown()
            try FileManager.default.createDirectory(atPath: removed[0] + "/workitems/left", withIntermediateDirectories: true)
            let restarted = try await h.reopened()
            try await restarted.engine.wait(timeout: .seconds(30)) { _ in !FileManager.default.fileExists(atPath: removed[0]) }
            try await restarted.engine.deletePool(id: "pool")
            try await restarted.engine.wait(timeout: .seconds(60)) { engine in (try? engine.pool(id: "pool")) == nil }
            try await restarted.engine.wait(timeout: .seconds(30)) { _ in !FileManager.default.fileExists(atPath: kept[0]) }
            await restarted.engine.shutdown()
        }
    }

    @Test func eventsArriveAsStatesChange() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let events = await h.engine.events()
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "/bin/true"))
            var seen: [String] = []
            for await event in events {
                if event.jobId == "job" { seen.append(event.kind + (event.taskId.map { ":\($0)" } ?? "")) }
                if event.kind == "task.completed" { break }
            }
            #expect(seen == ["job.created", "task.added:t", "task.running:t", "task.completed:t"])
        }
    }

    @Test func badInputIsRefusedAndChangesNothing() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let cases: [(String, () async throws -> Void)] = [
                ("InvalidPropertyValue", { try await h.engine.createPool(PoolSpec(id: "bad id!", targetDedicatedNodes: 1)) }),
                ("InvalidPropertyValue", { try await h.engine.createPool(PoolSpec(id: "p", targetDedicatedNodes: 1, taskSlotsPerNode: 0)) }),
                ("InvalidPropertyValue", { try await h.engine.createJob(JobSpec(id: String(repeating: "x", count: 65), poolID: "p")) }),
                ("InvalidPropertyValue", { try await h.engine.createJob(JobSpec(id: "j", poolID: "p", priority: 1001)) }),
                ("MissingRequiredProperty", { try await h.engine.createJob(JobSpec(id: "j", poolID: "p", jobPreparationTask: JobPreparationTask(commandLine: " "))) }),
                ("InvalidPropertyValue", { try await h.engine.createJob(JobSpec(id: "j", poolID: "p", jobPreparationTask: JobPreparationTask(commandLine: "/bin/true", constraints: TaskConstraints(maxWallClockTime: "soon")))) }),
                ("JobNotFound", { try await h.engine.addTask(jobID: "missing", TaskSpec(id: "t", commandLine: "/bin/true")) }),
            ]
            for (code, attempt) in cases {
                do {
                    try await attempt()
                    Issue.record("expected \(code)")
                } catch let error as BookendError {
                    #expect(error.code == code)
                }
            }
            #expect(try await h.sql("SELECT (SELECT count(*) FROM pool) + (SELECT count(*) FROM job) + (SELECT count(*) FROM task)") == [["0"]])
            try await h.engine.createJob(JobSpec(id: "Job", poolID: "p", jobPreparationTask: JobPreparationTask(commandLine: "/bin/true")))
            for (code, attempt) in [
                ("JobExists", { try await h.engine.createJob(JobSpec(id: "JOB", poolID: "p")) }),
                ("TaskIdSameAsJobPreparationTask", { try await h.engine.addTask(jobID: "job", TaskSpec(id: "JobPreparation", commandLine: "/bin/true")) }),
            ] as [(String, () async throws -> Void)] {
                do {
                    try await attempt()
                    Issue.record("expected \(code)")
                } catch let error as BookendError {
                    #expect(error.code == code)
                }
            }
            let results = try await h.engine.addTasks(jobID: "job", [TaskSpec(id: "a", commandLine: "/bin/true"), TaskSpec(id: "A", commandLine: "/bin/true"), TaskSpec(id: "b/", commandLine: "/bin/true")])
            #expect(results.map(\.status) == ["success", "clienterror", "clienterror"])
            #expect(results[1].error?.code == "TaskExists")
            #expect(try await h.engine.tasks(jobID: "job").map(\.id) == ["a"])
        }
    }
}
