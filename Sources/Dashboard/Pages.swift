import Bookend
import Foundation

/// Builds each page's values from the engine's reads. Reads that block on SQLite go through
/// `Engine.lookup` (a reader thread), never on the caller's thread.
struct Pages: Sendable {
    let engine: Engine
    /// Tasks per page of the job page's task list.
    static let pageSize = 50
    /// How much of the end of stdout and stderr the task page shows.
    static let tailBytes = 16 * 1024
    /// The timeline draws at most this many task runs (the latest), besides every preparation and release.
    static let timelineTasks = 2000

    func overview(_ chrome: Chrome) async throws -> OverviewPage {
        let pools = try await engine.pools()
        var poolRows: [OverviewPage.PoolRow] = []
        for pool in pools {
            let nodes = try await engine.nodes(poolID: pool.id)
            poolRows.append(OverviewPage.PoolRow(
                href: Links.pool(pool.id), id: pool.id, displayName: Format.nonEmpty(pool.displayName), state: pool.state.rawValue,
                allocationState: pool.allocationState.rawValue, nodeStates: Pages.nodeStates(nodes), nodes: nodes.count,
                slots: pool.taskSlotsPerNode))
        }
        // Read on a reader, a page at a time, not on the engine's queue: with thousands of jobs the
        // whole list held the scheduler for as long as it took to read.
        let (jobs, counts) = try await engine.lookup { engine -> ([Job], [TaskCountsByState?]) in
            var jobs: [Job] = []
            while true {
                let page = try engine.jobPage(afterID: jobs.last?.id, limit: 1000)
                jobs += page
                if page.count < 1000 { break }
            }
            // A job deleted between the two reads shows no counts rather than failing the page.
            return (jobs, jobs.map { job in try? engine.taskCounts(jobID: job.id).taskCounts })
        }
        let jobRows = zip(jobs, counts).map { job, counts in
            OverviewPage.JobRow(
                href: Links.job(job.id), id: job.id, displayName: Format.nonEmpty(job.displayName), poolId: job.executionInfo.poolId,
                state: job.state.rawValue, created: TimeView(job.creationTime), bar: CountBar(Counts(counts)), counts: Counts(counts))
        }
        return OverviewPage(chrome: chrome, pools: poolRows, jobs: jobRows)
    }

    /// Node counts by state, busiest states first, for the overview's chips.
    static func nodeStates(_ nodes: [Node]) -> [StateCount] {
        var counts: [String: Int] = [:]
        for node in nodes { counts[node.state.rawValue, default: 0] += 1 }
        return counts.map { StateCount(state: $0.key, count: $0.value) }.sorted { ($0.count, $1.state) > ($1.count, $0.state) }
    }

    func pool(_ chrome: Chrome, poolID: String) async throws -> PoolPage {
        let pool = try await engine.pool(id: poolID)
        let nodes = try await engine.nodes(poolID: pool.id)
        return PoolPage(
            chrome: chrome, id: pool.id, displayName: Format.nonEmpty(pool.displayName), state: pool.state.rawValue,
            allocationState: pool.allocationState.rawValue, current: pool.currentDedicatedNodes + pool.currentLowPriorityNodes,
            target: pool.targetDedicatedNodes + pool.targetLowPriorityNodes, slots: pool.taskSlotsPerNode, created: TimeView(pool.creationTime),
            nodes: nodes.map { node in
                PoolPage.NodeRow(
                    id: node.id, state: node.state.rawValue, scheduling: node.schedulingState, running: node.runningTasksCount,
                    slotsUsed: node.runningTaskSlotsCount, slots: pool.taskSlotsPerNode, tasksRun: node.totalTasksRun,
                    tasksSucceeded: node.totalTasksSucceeded, since: TimeView(node.stateTransitionTime))
            })
    }

    /// The task list's query: a state filter and the id to continue after.
    struct TaskQuery: Sendable, Hashable {
        var state: TaskState?
        var after: String?

        init(state: TaskState? = nil, after: String? = nil) {
            self.state = state
            self.after = after
        }

        init(_ query: [String: String]) {
            state = query["state"].flatMap(TaskState.init(rawValue:))
            after = Format.nonEmpty(query["after"])
        }
    }

    /// Everything the job page and its live endpoint draw, read in one go.
    struct JobData: Sendable {
        var job: Job
        var counts: TaskCountsByState
        var preparation: [PrepReleaseStatus]
        var executions: [ExecutionSummary]
        /// Earlier task runs were left out of `executions` (see `Pages.timelineTasks`).
        var truncated: Bool
        var tasks: [JobTask]
        var more: Bool
    }

    func jobData(jobID: String, query: TaskQuery) async throws -> JobData {
        try await engine.lookup { engine in
            let job = try engine.job(id: jobID)
            let preparation = job.jobPreparationTask == nil ? [] : try engine.prepReleaseStatus(jobID: jobID)
            let (tasks, more) = try Pages.taskPage(engine, jobID: jobID, query: query)
            let (executions, truncated) = try engine.executions(jobID: jobID, latestTasks: Pages.timelineTasks)
            return JobData(
                job: job, counts: try engine.taskCounts(jobID: jobID).taskCounts, preparation: preparation,
                executions: executions, truncated: truncated, tasks: tasks, more: more)
        }
    }

    /// One page of the job's tasks in id order, in `query.state` only when given: pages of the
    /// whole list are read until enough match, so a filter never loads the whole job at once.
    static func taskPage(_ engine: Engine, jobID: String, query: TaskQuery) throws -> ([JobTask], Bool) {
        var found: [JobTask] = []
        var after = query.after
        while true {
            let batch = try engine.tasks(jobID: jobID, afterID: after, limit: 500)
            for task in batch where query.state == nil || task.state == query.state {
                if found.count == pageSize { return (found, true) }
                found.append(task)
            }
            guard batch.count == 500, let last = batch.last else { return (found, false) }
            after = last.id
        }
    }

    /// Whether the page should keep refreshing: the job has not ended, or something still runs on a
    /// node for it (a release runs after the job completes).
    static func isLive(_ data: JobData) -> Bool {
        data.job.state != .completed || data.executions.contains { $0.state != .completed }
    }

    func live(_ data: JobData, query: TaskQuery, now: Date = Date()) -> JobLive {
        let job = data.job
        let counts = Counts(data.counts)
        let nodes = data.preparation.map { status in
            let prep = status.jobPreparationTaskExecutionInfo
            let release = status.jobReleaseTaskExecutionInfo
            let releaseFolder = release?.taskRootDirectory ?? "workitems/\(job.id)/job-1/\(job.jobReleaseTask?.id ?? "jobrelease")"
            return JobLive.PrepRow(
                nodeId: status.nodeId, poolHref: Links.pool(status.poolId), prepState: prep.state.rawValue, prepResult: Format.nonEmpty(prep.result),
                prepExit: Format.optional(prep.exitCode),
                prepStart: TimeView(prep.startTime), prepEnd: TimeView(prep.endTime), prepRetries: prep.retryCount,
                prepStdout: Links.nodeFile(status.poolId, status.nodeId, prep.taskRootDirectory + "/stdout.txt"),
                prepStderr: Links.nodeFile(status.poolId, status.nodeId, prep.taskRootDirectory + "/stderr.txt"),
                hasRelease: release != nil, releaseState: release?.state.rawValue ?? "", releaseResult: Format.nonEmpty(release?.result),
                releaseExit: Format.optional(release?.exitCode),
                releaseStart: TimeView(release?.startTime), releaseEnd: TimeView(release?.endTime),
                releaseStdout: Links.nodeFile(status.poolId, status.nodeId, releaseFolder + "/stdout.txt"),
                releaseStderr: Links.nodeFile(status.poolId, status.nodeId, releaseFolder + "/stderr.txt"))
        }
        let timeline = Timeline(executions: data.executions, now: now)
        let lanes = timeline.lanes.map { lane in
            Pages.laneView(lane, jobID: job.id, preparationID: job.jobPreparationTask?.id ?? "jobpreparation",
                releaseID: job.jobReleaseTask?.id ?? "jobrelease")
        }
        let tasks = data.tasks.map { task in
            JobLive.TaskRow(
                href: Links.task(job.id, task.id), id: task.id, state: task.state.rawValue, result: task.executionInfo.result,
                node: task.nodeInfo?.nodeId ?? "", exit: Format.optional(task.executionInfo.exitCode),
                taskStarted: TimeView(task.executionInfo.startTime), taskEnded: TimeView(task.executionInfo.endTime),
                retries: task.executionInfo.retryCount, commandLine: task.commandLine)
        }
        let stateQuery = query.state.map { "state=\($0.rawValue)" }
        let nextHref = data.more ? data.tasks.last.map { last in
            Links.job(job.id) + "?" + ([stateQuery, "after=\(Web.queryValue(last.id))"].compactMap { $0 }.joined(separator: "&"))
        } : nil
        let firstHref = query.after == nil ? nil : Links.job(job.id) + (stateQuery.map { "?\($0)" } ?? "")
        return JobLive(
            counts: counts, bar: CountBar(counts), nodes: nodes, startMs: Format.milliseconds(timeline.start), endMs: Format.milliseconds(timeline.end),
            hasLanes: !lanes.isEmpty, startTime: TimeView(Timestamp.string(timeline.start)), endTime: TimeView(Timestamp.string(timeline.end)),
            lanes: lanes, truncated: data.truncated, timelineTasks: Pages.timelineTasks, tasks: tasks, filtered: query.state != nil,
            firstHref: firstHref, nextHref: nextHref)
    }

    /// A lane's bars, each in the first row free at its start, so runs that overlap on a node (more
    /// than one slot) sit one above the other instead of hiding each other.
    static func laneView(_ lane: Timeline.Lane, jobID: String, preparationID: String, releaseID: String) -> JobLive.LaneView {
        let rowHeight = 24
        var rowEnds: [Double] = []
        var bars: [JobLive.LaneView.BarView] = []
        for bar in lane.bars {
            let row = rowEnds.firstIndex { $0 <= bar.x } ?? rowEnds.count
            if row == rowEnds.count { rowEnds.append(0) }
            rowEnds[row] = bar.x + bar.barWidth
            let isTask = bar.kind == .task
            let href: String
            let name: String
            switch bar.kind {
            case .task:
                href = Links.task(jobID, bar.taskId ?? "")
                name = "Task \(bar.taskId ?? "") (attempt \(bar.attempt))"
            case .preparation:
                href = Links.nodeFile(lane.poolId, lane.nodeId, "workitems/\(jobID)/job-1/\(preparationID)/stdout.txt")
                name = "Preparation (attempt \(bar.attempt))"
            case .release:
                href = Links.nodeFile(lane.poolId, lane.nodeId, "workitems/\(jobID)/job-1/\(releaseID)/stdout.txt")
                name = "Release"
            case .start:
                href = Links.pool(lane.poolId)
                name = "Start task"
            }
            let startText = Timestamp.string(bar.start)
            let endText = bar.end.map(Timestamp.string) ?? "still running"
            let exit = bar.exitCode.map { ", exit code \($0)" } ?? ""
            bars.append(JobLive.LaneView.BarView(
                href: href, kind: bar.kind.rawValue, taskId: bar.taskId ?? "", outcome: bar.outcome,
                startMs: Format.milliseconds(bar.start), endMs: Format.milliseconds(bar.end), x: Format.number(bar.x),
                y: row * rowHeight + (isTask ? 2 : 5), width: Format.number(bar.barWidth), barHeight: isTask ? 20 : 14,
                title: "\(name) on \(lane.nodeId): \(bar.outcome), \(startText) – \(endText)\(exit)"))
        }
        let rows = max(rowEnds.count, 1)
        return JobLive.LaneView(nodeId: lane.nodeId, poolHref: Links.pool(lane.poolId), height: rows * rowHeight, pixelHeight: rows * 26, bars: bars)
    }

    static func jobActions(_ job: Job) -> [ActionLink] {
        var actions: [ActionLink] = []
        func add(_ action: JobAction) {
            actions.append(ActionLink(name: action.rawValue, label: action.label, href: Links.job(job.id) + "/confirm/\(action.rawValue)", style: action.style))
        }
        switch job.state {
        case .active:
            add(.disable)
            add(.terminate)
        case .disabled, .disabling:
            add(.enable)
            add(.terminate)
        case .enabling, .terminating, .completed, .deleting:
            break
        }
        if job.state != .deleting { add(.delete) }
        return actions
    }

    static func stateOptions(_ selected: TaskState?) -> [Option] {
        [Option(value: "", label: "All", selected: selected == nil)]
            + TaskState.allCases.map { Option(value: $0.rawValue, label: $0.rawValue, selected: $0 == selected) }
    }

    func job(_ chrome: Chrome, jobID: String, query: TaskQuery) async throws -> JobPage {
        let data = try await jobData(jobID: jobID, query: query)
        let job = data.job
        let isLive = Pages.isLive(data)
        return JobPage(
            chrome: chrome, id: job.id, href: Links.job(job.id), displayName: Format.nonEmpty(job.displayName),
            liveURL: isLive ? Links.job(job.id) + "/live" : nil, liveState: isLive ? "active" : "done", actions: Pages.jobActions(job),
            whyHref: Links.job(job.id) + "/why", state: job.state.rawValue, poolId: job.executionInfo.poolId,
            poolHref: Links.pool(job.executionInfo.poolId), created: TimeView(job.creationTime), started: TimeView(job.executionInfo.startTime),
            ended: TimeView(job.executionInfo.endTime), terminateReason: Format.nonEmpty(job.executionInfo.terminateReason),
            priority: job.priority, hasPreparation: job.jobPreparationTask != nil, stateOptions: Pages.stateOptions(query.state),
            live: live(data, query: query))
    }

    func task(_ chrome: Chrome, jobID: String, taskID: String) async throws -> TaskPage {
        let (task, attempts) = try await engine.lookup { engine in
            (try engine.task(jobID: jobID, taskID: taskID), try engine.executions(jobID: jobID, taskID: taskID))
        }
        var outputs: [TaskPage.OutputView] = []
        for name in ["stdout.txt", "stderr.txt"] {
            outputs.append(await output(jobID: jobID, taskID: task.id, name: name))
        }
        var actions: [ActionLink] = []
        for action in TaskAction.allCases where action.applies(to: task.state, failed: task.executionInfo.result == ExecutionResult.failure.rawValue) {
            actions.append(ActionLink(
                name: action.rawValue, label: action.label, href: Links.task(jobID, task.id) + "/confirm/\(action.rawValue)", style: action.style))
        }
        let environment = (task.environmentSettings ?? []).map { NameValuePair(name: $0.name, value: $0.value ?? "") }
        return TaskPage(
            chrome: chrome, id: task.id, jobId: jobID, jobHref: Links.job(jobID), displayName: Format.nonEmpty(task.displayName),
            actions: actions, whyHref: Links.task(jobID, task.id) + "/why", state: task.state.rawValue, result: task.executionInfo.result,
            node: task.nodeInfo?.nodeId ?? "—", exit: Format.optional(task.executionInfo.exitCode), created: TimeView(task.creationTime),
            started: TimeView(task.executionInfo.startTime), ended: TimeView(task.executionInfo.endTime), retries: task.executionInfo.retryCount,
            failure: Format.nonEmpty(Format.failure(task.executionInfo.failureInfo)), commandLine: task.commandLine,
            hasEnvironment: !environment.isEmpty, environment: environment,
            attempts: attempts.map { record in
                TaskPage.AttemptRow(
                    attempt: record.attempt, nodeId: record.nodeId, outcome: Timeline.outcome(record), exit: Format.optional(record.exitCode),
                    failure: Format.failure(record.failureInfo), attemptStarted: TimeView(record.startTime), attemptEnded: TimeView(record.endTime))
            },
            outputs: outputs)
    }

    /// The end of one of the task's output files, read through the engine's safe file access
    /// (beneath the task's folder, no links followed), off the cooperative threads.
    func output(jobID: String, taskID: String, name: String) async -> TaskPage.OutputView {
        let label = name.replacingOccurrences(of: ".txt", with: "")
        do {
            let file = try await engine.openTaskFile(jobID: jobID, taskID: taskID, path: name)
            let size = file.info.contentLength
            let start = max(0, size - Int64(Pages.tailBytes))
            let data = try await engine.lookup { _ in try FileAccess.readChunk(file.descriptor, at: start, upTo: Int(size - start)) }
            var text = String(decoding: data, as: UTF8.self)
            if start > 0, let newline = text.firstIndex(of: "\n") { text = String(text[text.index(after: newline)...]) }
            return TaskPage.OutputView(
                name: label, shown: Format.bytes(Int64(Pages.tailBytes)), available: true, text: text,
                href: Links.taskFile(jobID, taskID, name), size: Format.bytes(size), missing: "")
        } catch {
            return TaskPage.OutputView(
                name: label, shown: Format.bytes(Int64(Pages.tailBytes)), available: false, text: "", href: "", size: "",
                missing: "No \(name) (the task has not run, or its files were cleaned up).")
        }
    }

    func why(_ chrome: Chrome, jobID: String, taskID: String?) async throws -> WhyPage {
        let reason = try await engine.lookup { engine in try engine.whyWaiting(jobID: jobID, taskID: taskID) }
        let meaning: String
        switch reason.state {
        case .blocked: meaning = "Nothing will change until someone acts: see the explanation above."
        case .waiting: meaning = "The work will start on its own once what it waits for is done."
        case .notWaiting: meaning = "Nothing is waiting."
        }
        let failures = (reason.failedPreparations ?? []).map { failure in
            WhyPage.FailureRow(
                nodeId: failure.nodeId, exit: Format.optional(failure.exitCode), failure: Format.failure(failure.failureInfo),
                stderr: failure.stderrTail ?? "")
        }
        return WhyPage(
            chrome: chrome, subject: taskID.map { "task \($0)" } ?? "job \(jobID)", jobId: jobID, jobHref: Links.job(jobID), taskId: taskID,
            taskHref: taskID.map { Links.task(jobID, $0) } ?? "", state: reason.state.rawValue, code: reason.code, message: reason.message,
            meaning: meaning, dependencyId: reason.dependencyId, dependencyHref: reason.dependencyId.map { Links.task(jobID, $0) } ?? "",
            hasFailures: !failures.isEmpty, failures: failures)
    }
}

/// What the job page's buttons do; each is confirmed on a page of its own and posted with the CSRF token.
enum JobAction: String, CaseIterable, Sendable {
    case terminate, disable, enable, delete

    var label: String {
        switch self {
        case .terminate: "Terminate job"
        case .disable: "Disable job"
        case .enable: "Enable job"
        case .delete: "Delete job"
        }
    }

    var style: String {
        switch self {
        case .terminate, .delete: "danger"
        case .disable, .enable: ""
        }
    }

    var explanation: String {
        switch self {
        case .terminate: "Running tasks are stopped, active tasks never start, and the release task runs on every node that ran the preparation."
        case .disable: "No new task starts until the job is enabled again. Choose what happens to the tasks running now."
        case .enable: "Active tasks may start again."
        case .delete: "The job, its tasks and their files are deleted once the release task has run on every node. This cannot be undone."
        }
    }
}

enum TaskAction: String, CaseIterable, Sendable {
    case terminate, reactivate

    var label: String {
        switch self {
        case .terminate: "Terminate task"
        case .reactivate: "Reactivate task"
        }
    }

    var style: String {
        switch self {
        case .terminate: "danger"
        case .reactivate: ""
        }
    }

    var explanation: String {
        switch self {
        case .terminate: "The task is stopped if it runs and completes as failed; it is not retried."
        case .reactivate: "The failed task becomes active again with its retry count reset, and runs again."
        }
    }

    /// Only a task that ended in failure can be reactivated (as in Batch); only an unfinished one terminated.
    func applies(to state: TaskState, failed: Bool) -> Bool {
        switch self {
        case .terminate: state != .completed
        case .reactivate: state == .completed && failed
        }
    }
}
