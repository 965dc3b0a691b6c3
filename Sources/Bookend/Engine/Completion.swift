import Foundation
import Logging
import SQLite

extension Engine {
    /// Completes an execution exactly once and applies what follows from it (retries, task state,
    /// preparation and release bookkeeping, job actions). Returns executions to launch after commit.
    func finishExecution(_ db: Connection, _ execution: ExecutionRecord, _ outcome: Outcome, now date: Date) throws -> [Int64] {
        let pk = execution.pk
        let now = Timestamp.string(date)
        let interrupted: Bool = { if case .interrupted = outcome { return true }; return false }()
        let result: ExecutionResult? = interrupted ? nil : (outcome.succeeded ? .success : .failure)
        let completed = try ExecutionStore.complete(db, pk: pk, now: now, exitCode: outcome.exitCode, result: result,
            failureInfo: outcome.failureInfo, interrupted: interrupted)
        guard completed else { return [] }  // already completed: never twice
        CrashPoint.hit("execution.completed")
        pendingObservations.append(.executionCompleted(kind: execution.kind, result: result?.rawValue ?? "interrupted"))
        // The exit is recorded once this transaction commits; only then may its file go.
        retiredStatusDirectories.append(execution.statusDirectory)
        if case .fault(let info) = outcome { try recordFault(db, execution, info, now: now) }
        let nodePK = execution.nodePK
        switch execution.kind {
        case .task:
            guard let task = try db.query("SELECT * FROM task WHERE pk = ?", [execution.taskPK]).first,
                let job = try db.query("SELECT * FROM job WHERE pk = ?", [task["job_pk"]]).first
            else { return [] }
            return try taskExecutionEnded(db, task, job: job, execution: execution, outcome, now: now)
        case .preparation:
            return try preparationEnded(db, execution, outcome, now: date)
        case .release:
            guard let jobPK = execution.jobPK else { return [] }
            let key = try jobNodeKey(db, jobPK: jobPK, nodePK: nodePK)
            if let result {
                try JobNodeStore.completeRelease(db, key, result: result, exitCode: outcome.exitCode, failureInfo: outcome.failureInfo,
                    now: now, log: &pendingEvents)
                try setRetention(db, pk, kind: .release, jobPK: jobPK, date: date)
            } else {
                try JobNodeStore.interruptRelease(db, key)
            }
            return []
        case .start:
            return try startTaskEnded(db, execution, outcome, now: date)
        }
    }

    /// Logs a fault and appends it to the event log (`execution.fault`), so it is seen beside the
    /// failed task's `failureInfo`.
    private func recordFault(_ db: Connection, _ execution: ExecutionRecord, _ info: FailureInfo, now: String) throws {
        let names = try db.query(
            """
            SELECT n.id AS node_id, p.id AS pool_id, j.id AS job_id, t.id AS task_id FROM node n JOIN pool p ON p.pk = n.pool_pk
            LEFT JOIN job j ON j.pk = ? LEFT JOIN task t ON t.pk = ? WHERE n.pk = ?
            """, [execution.jobPK, execution.taskPK, execution.nodePK]).first
        logger.error("execution \(execution.pk) (\(execution.kind.rawValue)) failed: \(info.code): \(info.message ?? "")",
            metadata: ["job": "\(names?["job_id"].string ?? "-")", "task": "\(names?["task_id"].string ?? "-")", "node": "\(names?["node_id"].string ?? "-")"])
        try record(db, "execution.fault", pool: names?["pool_id"].string, node: names?["node_id"].string, job: names?["job_id"].string,
            task: names?["task_id"].string, to: "completed", detail: encodeJSON(info), now: now)
    }

    private func setRetention(_ db: Connection, _ executionPK: Int64, kind: ExecutionKind, jobPK: Int64?, taskRetention: Int64? = nil, date: Date) throws {
        var retention: Int64? = taskRetention
        if kind != .task, let jobPK, let job = try db.query("SELECT pk, job_preparation_task, job_release_task FROM job WHERE pk = ?", [jobPK]).first {
            let text = kind == .preparation
                ? try job.json(JobPreparationTask.self, "job_preparation_task", table: "job")?.constraints?.retentionTime
                : try job.json(JobReleaseTask.self, "job_release_task", table: "job")?.retentionTime
            retention = text.flatMap { try? ISODuration.parse($0) } ?? (text == nil ? Engine.defaultRetention : nil)
        }
        // A retention too long to reach (past year 9999) is kept forever: no deadline.
        guard let retention, let deadline = Timestamp.deadline(after: date, milliseconds: retention) else { return }
        try ExecutionStore.setRetentionDeadline(db, pk: executionPK, deadline: deadline)
    }

    /// The names the event log gives a (job, node) record.
    func jobNodeKey(_ db: Connection, jobPK: Int64, nodePK: Int64) throws -> JobNodeKey {
        guard let names = try db.query("SELECT j.id AS job_id, j.pool_id, n.id AS node_id FROM job j, node n WHERE j.pk = ? AND n.pk = ?",
            [jobPK, nodePK]).first
        else { throw BookendError.internalError("job_node (job_pk \(jobPK), node_pk \(nodePK)): no such job or node") }
        return JobNodeKey(jobPK: jobPK, nodePK: nodePK, jobID: try names.text("job_id", table: "job"),
            poolID: try names.text("pool_id", table: "job"), nodeID: try names.text("node_id", table: "node"))
    }

    private func taskExecutionEnded(_ db: Connection, _ task: Row, job: Row, execution: ExecutionRecord, _ outcome: Outcome, now: String) throws -> [Int64] {
        let key = try TaskKey(task: task, job: job)
        let from = try task.state(TaskState.self, table: "task")
        switch TaskExitDecision.decide(outcome, retryCount: Int(try task.int64("retry_count", table: "task")),
            maxRetryCount: Int(try task.int64("max_task_retry_count", table: "task")), job: try job.state(JobState.self, table: "job")) {
        case .requeue:
            try TaskStore.transition(db, key, from: from, .requeue, now: now, log: &pendingEvents)
            return []
        case .retry(let code):
            try TaskStore.transition(db, key, from: from, .retry(exitCode: code), now: now, log: &pendingEvents)
            return []
        case .complete:
            break
        }
        let date = Timestamp.date(now) ?? Date()
        try setRetention(db, execution.pk, kind: .task, jobPK: nil, taskRetention: try task.optionalInt64("retention_time_ms", table: "task"),
            date: date)
        try NodeStore.countTaskRun(db, pk: execution.nodePK, succeeded: outcome.succeeded)
        try completeTask(db, task, job: job, result: outcome, now: now)
        return []
    }

    /// Moves a task to `completed` with its result, and applies exit options and job-manager rules.
    func completeTask(_ db: Connection, _ task: Row, job: Row, result outcome: Outcome, now: String) throws {
        let spec = try StoredTaskSpec.decode(task, "spec", table: "task")
        let options = exitOptions(spec?.exitConditions, outcome)
        let succeeded = outcome.succeeded
        let satisfies = (options?.dependencyAction ?? (succeeded ? .satisfy : .block)) == .satisfy
        let completion = TaskCompletion(exitCode: outcome.exitCode, result: succeeded ? .success : .failure,
            failureInfo: outcome.failureInfo, satisfiesDependents: satisfies)
        try TaskStore.transition(db, TaskKey(task: task, job: job), from: task.state(TaskState.self, table: "task"), .complete(completion),
            now: now, log: &pendingEvents)
        let jobState = try job.state(JobState.self, table: "job")
        guard jobState == .active else { return }
        if task["is_job_manager"].int == 1, task["kill_job_on_completion"].int == 1 {
            try JobStore.transition(db, JobKey(job), from: jobState, .terminate(reason: "JMComplete"), now: now, log: &pendingEvents)
            return
        }
        if job["on_task_failure"].string == "performexitoptionsjobaction", !succeeded {
            // Validation refused unknown actions when the task was added.
            switch options?.jobAction ?? .terminate {
            case .terminate:
                try JobStore.transition(db, JobKey(job), from: jobState, .terminate(reason: "TaskFailed"), now: now, log: &pendingEvents)
            case .disable:
                try JobStore.transition(db, JobKey(job), from: jobState, .disable(.requeue), now: now, log: &pendingEvents)
            case .none, .unrecognized: break
            }
        }
    }

    private func exitOptions(_ conditions: ExitConditions?, _ outcome: Outcome) -> ExitOptions? {
        guard let conditions else { return nil }
        switch outcome {
        case .preProcessing: return conditions.preProcessingError ?? conditions.default
        case .exited(let code), .ended(_, let code?):
            if let match = conditions.exitCodes?.first(where: { $0.code == Int(code) }) { return match.exitOptions }
            if let match = conditions.exitCodeRanges?.first(where: { $0.start <= Int(code) && Int(code) <= $0.end }) { return match.exitOptions }
            return outcome.succeeded ? nil : conditions.default
        case .ended(_, nil), .interrupted, .fault: return conditions.default
        }
    }

    private func preparationEnded(_ db: Connection, _ execution: ExecutionRecord, _ outcome: Outcome, now date: Date) throws -> [Int64] {
        let now = Timestamp.string(date)
        guard let jobPK = execution.jobPK else {
            throw BookendError.internalError("execution row pk \(execution.pk), column job_pk: NULL for a preparation")
        }
        let nodePK = execution.nodePK
        guard let job = try db.query("SELECT * FROM job WHERE pk = ?", [jobPK]).first,
            let record = try JobNodeStore.read(db, jobPK: jobPK, nodePK: nodePK)
        else { return [] }
        // A preparation execution exists only for a job that has a preparation task: a column that no
        // longer decodes is a corrupt row, not "no preparation".
        guard let preparation = try job.json(JobPreparationTask.self, "job_preparation_task", table: "job") else {
            throw job.corrupt("job", "job_preparation_task", "NULL, yet a preparation ran")
        }
        let jobKey = try JobKey(job)
        if case .interrupted = outcome {
            // The node rebooted (or left) mid-preparation, or its process tree vanished while the
            // engine was down: it reruns before the next task there (P7). Tasks waiting for it go
            // back to the queue now, as on a node failure; otherwise nothing would ever dispatch
            // them again (dispatch only places active tasks) and their slots would stay taken.
            for task in try db.query("SELECT pk, id, state FROM task WHERE job_pk = ? AND node_pk = ? AND state = ?",
                [jobPK, nodePK, TaskState.preparing.rawValue]) {
                try TaskStore.transition(db, TaskKey(task: task, job: job), from: .preparing, .requeue, now: now, log: &pendingEvents)
            }
            return []
        }
        let key = try jobNodeKey(db, jobPK: jobPK, nodePK: nodePK)
        let jobIsLive = try job.state(JobState.self, table: "job").isLive
        if case .exited(let code) = outcome, code != 0, jobIsLive,
            RetryRule.allowsAnother(retryCount: record.retryCount, maxRetryCount: preparation.constraints?.maxTaskRetryCount ?? 0) {
            try JobNodeStore.retryPreparation(db, key, from: record.phase, now: now)
            let wall = preparation.constraints?.maxWallClockTime.flatMap { try? ISODuration.parse($0) }
            let pk = try beginExecution(db, kind: ExecutionKind.preparation.rawValue, nodePK: nodePK, jobPK: jobPK, taskPK: nil,
                attempt: execution.attempt + 1, taskDirectory: execution.taskDirectory,
                wallClockMilliseconds: wall, retryCount: record.retryCount + 1, requeueCount: 0, now: date)
            return [pk]
        }
        let succeeded = outcome.succeeded
        try JobNodeStore.completePreparation(db, key, from: record.phase, result: succeeded ? .success : .failure,
            exitCode: outcome.exitCode, failureInfo: outcome.failureInfo, eligible: succeeded || preparation.waitForSuccess == false,
            now: now, log: &pendingEvents)
        try setRetention(db, execution.pk, kind: .preparation, jobPK: jobPK, date: date)
        let waiting = try db.query("SELECT * FROM task WHERE job_pk = ? AND node_pk = ? AND state = ? ORDER BY pk",
            [jobPK, nodePK, TaskState.preparing.rawValue])
        if succeeded {
            guard jobIsLive else { return [] }
            var launches: [Int64] = []
            for task in waiting { launches.append(try startTask(db, task, job: job, nodePK: nodePK, now: date)) }
            return launches
        }
        if preparation.waitForSuccess != false {
            // P5: the node is ineligible for this job; waiting tasks go back to the queue for other nodes.
            guard let node = key.nodeID else {
                throw BookendError.internalError("job_node (job_pk \(key.jobPK), node_pk \(key.nodePK)): its node has no id")
            }
            for task in waiting {
                try TaskStore.transition(db, TaskKey(task: task, job: job), from: .preparing, .unassign(reason: "JobPreparationTaskFailed"),
                    now: now, log: &pendingEvents)
            }
            let error = SchedulingError(category: "usererror", code: "JobPreparationTaskFailed",
                message: "The job preparation task failed on node \(node); the job's tasks will not run there",
                details: [NameValuePair(name: "NodeId", value: node)] + (outcome.failureInfo.map { [NameValuePair(name: "FailureCode", value: $0.code)] } ?? [])
                    + (outcome.exitCode.map { [NameValuePair(name: "ExitCode", value: "\($0)")] } ?? []))
            try JobStore.setSchedulingError(db, jobKey, error, now: now)
        }
        return []
    }

    private func startTaskEnded(_ db: Connection, _ execution: ExecutionRecord, _ outcome: Outcome, now date: Date) throws -> [Int64] {
        let nodePK = execution.nodePK
        let now = Timestamp.string(date)
        guard case .interrupted = outcome else {
            guard let start = try db.query("SELECT n.pk, n.state, p.start_task FROM node n JOIN pool p ON p.pk = n.pool_pk WHERE n.pk = ?", [nodePK]).first
            else { return [] }
            let spec = try start.json(StartTask.self, "start_task", table: "pool")
            if case .exited(let code) = outcome, code != 0 {
                let retries = execution.retryCount
                if RetryRule.allowsAnother(retryCount: retries, maxRetryCount: spec?.maxTaskRetryCount ?? 0) {
                    let pk = try beginExecution(db, kind: ExecutionKind.start.rawValue, nodePK: nodePK, jobPK: nil, taskPK: nil,
                        attempt: execution.attempt + 1, taskDirectory: execution.taskDirectory,
                        wallClockMilliseconds: nil, retryCount: retries + 1, requeueCount: 0, now: date)
                    return [pk]
                }
            }
            // Only a node that waits for its start task moves: with waitForSuccess false it is idle already.
            if try start.state(NodeState.self, table: "node") == .waitingforstarttask {
                try NodeStore.transition(db, pk: nodePK, on: outcome.succeeded ? .ready : .startTaskFailed, now: now, log: &pendingEvents)
            }
            return []
        }
        return []
    }

    /// Puts an assigned task into `running` on a node and begins its execution (inside a transaction).
    func startTask(_ db: Connection, _ task: Row, job: Row, nodePK: Int64, now date: Date) throws -> Int64 {
        let now = Timestamp.string(date)
        let attempt = Int(try task.int64("attempt", table: "task")) + 1
        guard let node = try db.query("SELECT pk, id, root_dir FROM node WHERE pk = ?", [nodePK]).first else {
            throw BookendError.internalError("node row pk \(nodePK): gone while starting a task there")
        }
        if let submitted = Timestamp.date(try task.text("creation_time", table: "task")) {
            pendingObservations.append(.taskStarted(submitted: submitted, started: date))
        }
        try TaskStore.transition(db, TaskKey(task: task, job: job), from: task.state(TaskState.self, table: "task"),
            .start(nodePK: nodePK, nodeID: try node.text("id", table: "node"), attempt: attempt), now: now, log: &pendingEvents)
        let directory = (try node.text("root_dir", table: "node") as NSString).appendingPathComponent(
            "workitems/\(try job.text("id", table: "job"))/job-1/\(try task.text("id", table: "task"))")
        return try beginExecution(db, kind: ExecutionKind.task.rawValue, nodePK: nodePK, jobPK: try job.int64("pk", table: "job"),
            taskPK: try task.int64("pk", table: "task"), attempt: attempt, taskDirectory: directory,
            wallClockMilliseconds: try task.optionalInt64("max_wall_clock_time_ms", table: "task"),
            retryCount: Int(try task.int64("retry_count", table: "task")), requeueCount: Int(try task.int64("requeue_count", table: "task")),
            now: date)
    }
}
