/// How one execution ended, as the engine decides it from the exit file and why it killed the process.
enum Outcome: Sendable {
    /// The process ran and exited (128 + n when a signal ended it).
    case exited(Int32)
    /// Bookend ended it: terminate, job end or wall-clock expiry. `TaskEnded`, never retried.
    case ended(reason: String, exitCode: Int32?)
    /// It never ran: resource files, command not found, launch refused.
    case preProcessing(FailureInfo)
    /// It stopped without a result of its own (requeue, node reboot); it will run again.
    case interrupted
    /// Bookend cannot know how it ended, and running it again could repeat what it did: its exit
    /// status could not be written (`ExitStatusNotRecorded`), its process could not be recorded
    /// (`LaunchNotRecorded`), or it was lost too often (`ExecutionLostTooOften`). Failed, never retried.
    case fault(FailureInfo)

    var exitCode: Int32? {
        switch self {
        case .exited(let code): code
        case .ended(_, let code): code
        case .preProcessing, .interrupted, .fault: nil
        }
    }

    var succeeded: Bool {
        if case .exited(0) = self { return true }
        return false
    }

    var failureInfo: FailureInfo? {
        switch self {
        case .exited(0), .interrupted: return nil
        case .exited(let code):
            return FailureInfo(code: "FailureExitCode", message: "The task process exited with an unexpected exit code",
                details: [NameValuePair(name: "Message", value: "The task process exited with exit code \(code)")])
        case .ended(let reason, _):
            return FailureInfo(code: "TaskEnded", message: "The task was ended", details: [NameValuePair(name: "Reason", value: reason)])
        case .preProcessing(let info), .fault(let info): return info
        }
    }
}
