import Foundation

extension Engine {
    /// Waits until `condition` holds, re-checking it every 20 ms without holding the engine. Throws `BookendError` with code `OperationTimedOut` when `timeout` passes first.
    public func wait(
        timeout: Duration = .seconds(3600), until condition: @Sendable (isolated Engine) throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if try condition(self) { return }
            guard ContinuousClock.now < deadline else {
                throw BookendError(.internalError, "OperationTimedOut", "The condition was not met within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until every task of the job has completed.
    public func waitForTasks(jobID: String, timeout: Duration = .seconds(3600)) async throws {
        try await wait(timeout: timeout) { engine in
            let counts = try engine.taskCounts(jobID: jobID).taskCounts
            return counts.active == 0 && counts.running == 0
        }
    }

    /// Waits until the job reaches `state` (for `deleted`, until it no longer exists).
    public func waitForJob(id: String, state: String, timeout: Duration = .seconds(3600)) async throws {
        try await wait(timeout: timeout) { engine in
            do {
                return try engine.job(id: id).state == state
            } catch let error as BookendError where error.code == "JobNotFound" {
                return state == "deleted"
            }
        }
    }
}
