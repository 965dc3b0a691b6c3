import BatchModels
import Bookend

// Jobs: the engine's `Job` → `BatchJob` with its URL, its preparation and release tasks, their
// per-node records, and task counts.

extension BatchJob {
    /// With `reason` (single GETs only: lists would pay a query per item), the job carries the Bookend
    /// extension `bookendWaitReason`, and a blocked job's reason is its Azure `schedulingError`.
    init(_ job: Job, base: String, reason: WaitReason? = nil) {
        self.init(id: job.id)
        setStates(from: job)
        displayName = job.displayName
        usesTaskDependencies = job.usesTaskDependencies
        url = Wire.jobURL(base, job.id)
        priority = job.priority
        allowTaskPreemption = job.allowTaskPreemption
        maxParallelTasks = job.maxParallelTasks
        constraints = job.constraints
        jobManagerTask = job.jobManagerTask
        jobPreparationTask = job.jobPreparationTask
        jobReleaseTask = job.jobReleaseTask
        commonEnvironmentSettings = job.commonEnvironmentSettings
        poolInfo = job.poolInfo
        onAllTasksComplete = OnAllBatchTasksComplete(rawValue: job.onAllTasksComplete)
        onTaskFailure = OnBatchTaskFailure(rawValue: job.onTaskFailure)
        networkConfiguration = job.networkConfiguration
        metadata = job.metadata
        let info = job.executionInfo
        var schedulingError = info.schedulingError.map(BatchJobSchedulingError.init)
        if let reason {
            bookendWaitReason = BookendWaitReason(reason)
            if reason.state == .blocked { schedulingError = BatchJobSchedulingError(reason.schedulingError) }
        }
        executionInfo = BatchJobExecutionInfo(
            startTime: info.startTime, endTime: info.endTime, poolId: info.poolId, schedulingError: schedulingError, terminateReason: info.terminateReason)
    }
}

extension BatchJobPreparationAndReleaseTaskStatus {
    /// One node's record, with the node's URL and each execution's `taskRootDirectoryUrl`.
    init(_ status: PrepReleaseStatus, base: String) {
        let nodeURL = Wire.nodeURL(base, status.poolId, status.nodeId)
        func directoryURL(_ directory: String) -> String { "\(nodeURL)/files/\(directory)" }
        let preparation = status.jobPreparationTaskExecutionInfo
        let release = status.jobReleaseTaskExecutionInfo
        self.init(
            poolId: status.poolId, nodeId: status.nodeId, nodeUrl: nodeURL,
            jobPreparationTaskExecutionInfo: BatchJobPreparationTaskExecutionInfo(
                startTime: preparation.startTime, endTime: preparation.endTime, state: BatchJobPreparationTaskState(rawValue: preparation.state.rawValue),
                taskRootDirectory: preparation.taskRootDirectory, taskRootDirectoryUrl: directoryURL(preparation.taskRootDirectory),
                exitCode: preparation.exitCode, failureInfo: preparation.failureInfo.map(BatchTaskFailureInfo.init),
                retryCount: preparation.retryCount, lastRetryTime: preparation.lastRetryTime, result: BatchTaskExecutionResult(preparation.result)),
            jobReleaseTaskExecutionInfo: release.map { release in
                BatchJobReleaseTaskExecutionInfo(
                    startTime: release.startTime, endTime: release.endTime, state: BatchJobReleaseTaskState(rawValue: release.state.rawValue),
                    taskRootDirectory: release.taskRootDirectory, taskRootDirectoryUrl: directoryURL(release.taskRootDirectory),
                    exitCode: release.exitCode, failureInfo: release.failureInfo.map(BatchTaskFailureInfo.init), result: BatchTaskExecutionResult(release.result))
            })
    }
}

extension BatchTaskCounts {
    init(_ counts: TaskCountsByState) {
        self.init(active: counts.active, running: counts.running, completed: counts.completed, succeeded: counts.succeeded, failed: counts.failed)
    }
}

extension BatchTaskCountsResult {
    init(_ counts: TaskCounts) {
        self.init(taskCounts: BatchTaskCounts(counts.taskCounts), taskSlotCounts: BatchTaskCounts(counts.taskSlotCounts))
    }
}
