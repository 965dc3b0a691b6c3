import Foundation

/// Why a job's or a task's work has not started (`Engine.whyWaiting`). On the wire it is the
/// Bookend extension property `bookendWaitReason` of a job or task GET; a blocked job's reason is also
/// its Azure `executionInfo.schedulingError`.
public struct WaitReason: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable, Hashable {
        /// Nothing will change until someone acts: enable the job, create or grow the pool, fix the
        /// preparation task, reactivate a failed dependency.
        case blocked
        /// The work will start on its own: slots are busy, `maxParallelTasks` is reached, nodes are
        /// booting, dependencies are still running.
        case waiting
        /// Nothing is waiting: the task runs or has completed, or the job has no active task.
        case notWaiting = "notwaiting"
    }

    public var state: State
    /// A stable code, e.g. `JobPreparationTaskFailed`, `PoolNotFound`, `MaxParallelTasksReached`
    /// (docs/daemon.md lists them all; the SQL views use the same codes).
    public var code: String
    /// One line for people.
    public var message: String
    /// For `JobPreparationTaskFailed`: each node where preparation failed for good.
    public var failedPreparations: [FailedPreparation]?
    /// For the dependency codes: the dependency that holds the task back.
    public var dependencyId: String?

    public init(state: State, code: String, message: String, failedPreparations: [FailedPreparation]? = nil, dependencyId: String? = nil) {
        self.state = state
        self.code = code
        self.message = message
        self.failedPreparations = failedPreparations
        self.dependencyId = dependencyId
    }

    /// The reason as an Azure job scheduling error, with the failing nodes as name/value details.
    public var schedulingError: SchedulingError {
        var details: [NameValuePair] = []
        for failure in failedPreparations ?? [] {
            details.append(NameValuePair(name: "NodeId", value: failure.nodeId))
            if let code = failure.exitCode { details.append(NameValuePair(name: "ExitCode", value: String(code))) }
            if let info = failure.failureInfo { details.append(NameValuePair(name: "FailureCode", value: info.code)) }
            if let tail = failure.stderrTail, !tail.isEmpty { details.append(NameValuePair(name: "StderrTail", value: tail)) }
        }
        if let dependencyId { details.append(NameValuePair(name: "DependencyId", value: dependencyId)) }
        return SchedulingError(category: "usererror", code: code, message: message, details: details.isEmpty ? nil : details)
    }
}

/// A node where the job preparation task failed for good with `waitForSuccess`, so the job's tasks
/// no longer run there (P5).
public struct FailedPreparation: Codable, Sendable, Hashable {
    public var nodeId: String
    public var exitCode: Int?
    public var failureInfo: FailureInfo?
    /// The last lines of the preparation's `stderr.txt` (at most 10 lines, 2 KiB); nil once its
    /// retention time has removed the file.
    public var stderrTail: String?
}

/// Thrown by `Engine.waitForTasks` when the job's tasks can never complete as things stand, instead
/// of waiting until the timeout.
public struct JobBlockedError: Error, Sendable, Hashable, CustomStringConvertible {
    public let jobID: String
    public let reason: WaitReason

    public init(jobID: String, reason: WaitReason) {
        self.jobID = jobID
        self.reason = reason
    }

    /// The message, then one line per failed node with its stderr's last line.
    public var description: String {
        var lines = ["job \(jobID) is blocked (\(reason.code)): \(reason.message)"]
        for failure in reason.failedPreparations ?? [] {
            var line = "  \(failure.nodeId): exit code \(failure.exitCode.map(String.init) ?? "none")"
            if let info = failure.failureInfo { line += " (\(info.code))" }
            lines.append(line)
            for stderr in (failure.stderrTail ?? "").split(separator: "\n", omittingEmptySubsequences: false) where !stderr.isEmpty {
                lines.append("    stderr: \(stderr)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
