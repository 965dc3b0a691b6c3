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

    /// Waits until every task of the job has completed. Throws `JobBlockedError` as soon as the job's
    /// remaining tasks can never complete as things stand (`whyWaiting` says `blocked`: preparation
    /// failed on every node, the pool is gone, the job is disabled, ...), unless `failWhenBlocked` is
    /// false, for a caller that will unblock the job itself while this waits.
    public func waitForTasks(jobID: String, timeout: Duration = .seconds(3600), failWhenBlocked: Bool = true) async throws {
        let deadline = ContinuousClock.now + timeout
        // A blockage only ends by someone's action, so checking twice a second is prompt enough and
        // keeps the (heavier) check off the 20 ms poll.
        var nextCheck = ContinuousClock.now
        while true {
            let counts = try taskCounts(jobID: jobID).taskCounts
            if counts.active == 0 && counts.running == 0 { return }
            if failWhenBlocked && ContinuousClock.now >= nextCheck {
                let reason = try whyWaiting(jobID: jobID)
                if reason.state == .blocked { throw JobBlockedError(jobID: jobID, reason: reason) }
                nextCheck = ContinuousClock.now + .milliseconds(500)
            }
            guard ContinuousClock.now < deadline else {
                let reason = (try? whyWaiting(jobID: jobID)).map { " (\($0.code): \($0.message))" } ?? ""
                throw BookendError(.internalError, "OperationTimedOut", "The job's tasks did not complete within \(timeout)\(reason)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until the job reaches `state`.
    public func waitForJob(id: String, state: JobState, timeout: Duration = .seconds(3600)) async throws {
        try await wait(timeout: timeout) { engine in try engine.job(id: id).state == state }
    }

    /// Waits until the job no longer exists (its deletion, with its release tasks, has finished).
    public func waitForJobDeletion(id: String, timeout: Duration = .seconds(3600)) async throws {
        try await wait(timeout: timeout) { engine in
            do {
                _ = try engine.job(id: id)
                return false
            } catch let error as BookendError where error.code == "JobNotFound" {
                return true
            }
        }
    }
}
