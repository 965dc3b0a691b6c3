import BatchModels
import Bookend

// Tasks: the engine's `JobTask` → `BatchTask` with its URLs, and the items of an add-collection answer.

extension BatchTaskExecutionInfo {
    init(_ info: TaskExecutionInfo) {
        self.init(
            startTime: info.startTime, endTime: info.endTime, exitCode: info.exitCode, failureInfo: info.failureInfo.map(BatchTaskFailureInfo.init),
            retryCount: info.retryCount, lastRetryTime: info.lastRetryTime, requeueCount: info.requeueCount, lastRequeueTime: info.lastRequeueTime,
            result: BatchTaskExecutionResult(info.result))
    }
}

/// The URLs in a run of tasks of one job: the job's task prefix is built once, each node's URL once
/// per node, rather than escaped and joined again for every task of a page (which was a tenth of a
/// 1,000-task page's CPU).
struct TaskURLs {
    let base: String
    /// `<base>/jobs/<job>/tasks/`
    private let taskPrefix: String
    private var nodeURLs: [NodeKey: String] = [:]

    private struct NodeKey: Hashable {
        let pool: String
        let node: String
    }

    init(base: String, jobID: String) {
        self.base = base
        taskPrefix = Wire.jobURL(base, jobID) + "/tasks/"
    }

    func task(_ taskID: String) -> String { taskPrefix + Wire.escape(taskID) }

    mutating func node(pool: String, node: String) -> String {
        let key = NodeKey(pool: pool, node: node)
        if let known = nodeURLs[key] { return known }
        let url = Wire.nodeURL(base, pool, node)
        nodeURLs[key] = url
        return url
    }
}

extension BatchTask {
    /// With `reason` (single GETs only: lists would pay a query per item), the task carries the
    /// Bookend extension `bookendWaitReason`.
    init(_ task: JobTask, jobID: String, base: String, reason: WaitReason? = nil) {
        var urls = TaskURLs(base: base, jobID: jobID)
        self.init(task, urls: &urls, reason: reason)
    }

    /// One of a run of tasks of the job `urls` was made for.
    init(_ task: JobTask, urls: inout TaskURLs, reason: WaitReason? = nil) {
        self.init(id: task.id)
        setStates(from: task)
        displayName = task.displayName
        url = urls.task(task.id)
        exitConditions = task.exitConditions
        commandLine = task.commandLine
        containerSettings = task.containerSettings
        resourceFiles = task.resourceFiles
        outputFiles = task.outputFiles
        environmentSettings = task.environmentSettings
        affinityInfo = task.affinityInfo
        constraints = task.constraints
        requiredSlots = task.requiredSlots
        userIdentity = task.userIdentity
        executionInfo = BatchTaskExecutionInfo(task.executionInfo)
        if let info = task.nodeInfo {
            let nodeURL = urls.node(pool: info.poolId, node: info.nodeId)
            nodeInfo = BatchNodeInfo(
                affinityId: info.affinityId, nodeUrl: nodeURL, poolId: info.poolId, nodeId: info.nodeId,
                taskRootDirectory: info.taskRootDirectory, taskRootDirectoryUrl: nodeURL + "/files/" + info.taskRootDirectory)
        }
        dependsOn = task.dependsOn
        applicationPackageReferences = task.applicationPackageReferences
        bookendWaitReason = reason.map(BookendWaitReason.init)
    }
}

extension BatchTaskAddResult {
    /// One item of an add-collection answer: a stored task carries its `location`.
    init(_ result: TaskAddResult, jobID: String, base: String) {
        let status = BatchTaskAddStatus(rawValue: result.status)
        self.init(status: status, taskId: result.taskId, error: result.error.map(BatchError.init))
        if status == .success {
            eTag = result.eTag
            lastModified = result.lastModified
            location = Wire.taskURL(base, jobID, result.taskId)
        }
    }

    /// An item refused before it reached the engine (§2.8).
    init(refused taskID: String, _ error: BookendError) {
        self.init(status: .clientError, taskId: taskID, error: BatchError(error))
    }
}
