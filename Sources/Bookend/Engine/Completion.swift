import Foundation
import Logging
import SQLite

extension Engine {
    /// Completes an execution exactly once and applies what follows from it (retries, task state,
    /// preparation and release bookkeeping, job actions). Returns executions to launch after commit.
    func finishExecution(_ db: Connection, _ row: Row, _ outcome: Outcome, now date: Date) throws -> [Int64] {
        let pk = row["pk"].int64 ?? 0
        let now = Timestamp.string(date)
        let interrupted: Bool = { if case .interrupted = outcome { return true }; return false }()
        let result: String? = interrupted ? nil : (outcome.succeeded ? "success" : "failure")
        let changed = try db.run(
            """
            UPDATE execution SET state = 'completed', end_time = ?, exit_code = ?, result = ?, failure_info = ?, interrupted = ?
            WHERE pk = ? AND state <> 'completed'
            """, [now, outcome.exitCode, result, outcome.failureInfo.map(encodeJSON), interrupted, pk])
        guard changed == 1 else { return [] }  // already completed: never twice
        CrashPoint.hit("execution.completed")
        // The exit is recorded once this transaction commits; only then may its file go.
        retiredStatusDirectories.append(row["status_dir"].string ?? "")
        if case .fault(let info) = outcome { try recordFault(db, row, info, now: now) }
        let nodePK = row["node_pk"].int64 ?? 0
        switch row["kind"].string {
        case "task":
            guard let task = try db.query("SELECT * FROM task WHERE pk = ?", [row["task_pk"]]).first,
                let job = try db.query("SELECT * FROM job WHERE pk = ?", [task["job_pk"]]).first
            else { return [] }
            return try taskExecutionEnded(db, task, job: job, execution: row, outcome, now: now)
        case "preparation":
            return try preparationEnded(db, row, outcome, now: date)
        case "release":
            guard let jobPK = row["job_pk"].int64 else { return [] }
            if interrupted {
                try db.run("UPDATE job_node SET release_state = 'pending', release_start_time = NULL WHERE job_pk = ? AND node_pk = ?", [jobPK, nodePK])
            } else {
                try db.run(
                    """
                    UPDATE job_node SET release_state = 'completed', release_end_time = ?, release_result = ?, release_exit_code = ?,
                        release_failure_info = ? WHERE job_pk = ? AND node_pk = ?
                    """, [now, result, outcome.exitCode, outcome.failureInfo.map(encodeJSON), jobPK, nodePK])
                try setRetention(db, pk, kind: "release", jobPK: jobPK, date: date)
                try recordForJob(db, jobPK, nodePK: nodePK, "release.completed", to: result, now: now)
            }
            return []
        default:
            return try startTaskEnded(db, row, outcome, now: date)
        }
    }

    /// Logs a fault and appends it to the event log (`execution.fault`), so it is seen beside the
    /// failed task's `failureInfo`.
    private func recordFault(_ db: Connection, _ row: Row, _ info: FailureInfo, now: String) throws {
        let names = try db.query(
            """
            SELECT n.id AS node_id, p.id AS pool_id, j.id AS job_id, t.id AS task_id FROM node n JOIN pool p ON p.pk = n.pool_pk
            LEFT JOIN job j ON j.pk = ? LEFT JOIN task t ON t.pk = ? WHERE n.pk = ?
            """, [row["job_pk"], row["task_pk"], row["node_pk"]]).first
        logger.error("execution \(row["pk"].int64 ?? 0) (\(row["kind"].string ?? "")) failed: \(info.code): \(info.message ?? "")",
            metadata: ["job": "\(names?["job_id"].string ?? "")", "task": "\(names?["task_id"].string ?? "")", "node": "\(names?["node_id"].string ?? "")"])
        try record(db, "execution.fault", pool: names?["pool_id"].string, node: names?["node_id"].string, job: names?["job_id"].string,
            task: names?["task_id"].string, to: "completed", detail: encodeJSON(info), now: now)
    }

    private func setRetention(_ db: Connection, _ executionPK: Int64, kind: String, jobPK: Int64?, taskRetention: Int64? = nil, date: Date) throws {
        var retention: Int64? = taskRetention
        if kind != "task", let jobPK, let job = try db.query("SELECT job_preparation_task, job_release_task FROM job WHERE pk = ?", [jobPK]).first {
            let text = kind == "preparation"
                ? decodeJSON(JobPreparationTask.self, job["job_preparation_task"].string)?.constraints?.retentionTime
                : decodeJSON(JobReleaseTask.self, job["job_release_task"].string)?.retentionTime
            retention = text.flatMap { try? ISODuration.parse($0) } ?? (text == nil ? Engine.defaultRetention : nil)
        }
        // A retention too long to reach (past year 9999) is kept forever: no deadline.
        guard let retention, let deadline = Timestamp.deadline(after: date, milliseconds: retention) else { return }
        try db.run("UPDATE execution SET retention_deadline = ? WHERE pk = ?", [deadline, executionPK])
    }

    private func recordForJob(_ db: Connection, _ jobPK: Int64, nodePK: Int64, _ kind: String, to: String?, now: String) throws {
        let names = try db.query("SELECT j.id AS job_id, j.pool_id, n.id AS node_id FROM job j, node n WHERE j.pk = ? AND n.pk = ?", [jobPK, nodePK]).first
        try record(db, kind, pool: names?["pool_id"].string, node: names?["node_id"].string, job: names?["job_id"].string, to: to, now: now)
    }

    private func taskExecutionEnded(_ db: Connection, _ task: Row, job: Row, execution: Row, _ outcome: Outcome, now: String) throws -> [Int64] {
        let taskPK = task["pk"].int64 ?? 0
        switch outcome {
        case .interrupted:
            try db.run(
                """
                UPDATE task SET state = 'active', previous_state = state, previous_state_transition_time = state_transition_time,
                    state_transition_time = ?, requeue_count = requeue_count + 1, last_requeue_time = ?, e_tag = ?, last_modified = ?
                WHERE pk = ?
                """, [now, now, Engine.newETag(), now, taskPK])
            try record(db, "task.active", pool: job["pool_id"].string, job: job["id"].string, task: task["id"].string,
                from: task["state"].string, to: "active", detail: #"{"reason":"requeued"}"#, now: now)
            return []
        case .exited(let code) where code != 0:
            let max = task["max_task_retry_count"].int ?? 0
            let retries = task["retry_count"].int ?? 0
            if max == -1 || retries < max, job["state"].string == "active" || job["state"].string == "disabling" || job["state"].string == "disabled" || job["state"].string == "enabling" {
                try db.run(
                    """
                    UPDATE task SET state = 'active', previous_state = state, previous_state_transition_time = state_transition_time,
                        state_transition_time = ?, retry_count = retry_count + 1, last_retry_time = ?, exit_code = NULL,
                        e_tag = ?, last_modified = ? WHERE pk = ?
                    """, [now, now, Engine.newETag(), now, taskPK])
                try record(db, "task.active", pool: job["pool_id"].string, job: job["id"].string, task: task["id"].string,
                    from: task["state"].string, to: "active", detail: #"{"reason":"retry","exitCode":\#(code)}"#, now: now)
                return []
            }
        default: break
        }
        let date = Timestamp.date(now) ?? Date()
        try setRetention(db, execution["pk"].int64 ?? 0, kind: "task", jobPK: nil, taskRetention: task["retention_time_ms"].int64, date: date)
        try db.run("UPDATE node SET total_tasks_run = total_tasks_run + 1, total_tasks_succeeded = total_tasks_succeeded + ? WHERE pk = ?",
            [outcome.succeeded ? 1 : 0, execution["node_pk"]])
        try completeTask(db, task, job: job, result: outcome, now: now)
        return []
    }

    /// Moves a task to `completed` with its result, and applies exit options and job-manager rules.
    func completeTask(_ db: Connection, _ task: Row, job: Row, result outcome: Outcome, now: String) throws {
        let spec = decodeJSON(TaskSpec.self, task["spec"].string)
        let options = exitOptions(spec?.exitConditions, outcome)
        let succeeded = outcome.succeeded
        let satisfies = (options?.dependencyAction?.lowercased() ?? (succeeded ? "satisfy" : "block")) == "satisfy"
        try db.run(
            """
            UPDATE task SET state = 'completed', previous_state = state, previous_state_transition_time = state_transition_time,
                state_transition_time = ?, end_time = ?, exit_code = ?, result = ?, failure_info = ?, satisfies_dependents = ?,
                e_tag = ?, last_modified = ? WHERE pk = ?
            """,
            [now, now, outcome.exitCode, succeeded ? "success" : "failure", outcome.failureInfo.map(encodeJSON), satisfies,
             Engine.newETag(), now, task["pk"]])
        try record(db, "task.completed", pool: job["pool_id"].string, job: job["id"].string, task: task["id"].string,
            from: task["state"].string, to: "completed", detail: #"{"result":"\#(succeeded ? "success" : "failure")"}"#, now: now)
        guard job["state"].string == "active" else { return }
        if task["is_job_manager"].int == 1, task["kill_job_on_completion"].int == 1 {
            try setJobState(db, job, "terminating", now: now, extra: ", terminate_reason = ?", arguments: ["JMComplete"])
            return
        }
        if job["on_task_failure"].string == "performexitoptionsjobaction", !succeeded {
            switch options?.jobAction?.lowercased() ?? "terminate" {
            case "terminate": try setJobState(db, job, "terminating", now: now, extra: ", terminate_reason = ?", arguments: ["TaskFailed"])
            case "disable": try setJobState(db, job, "disabling", now: now, extra: ", disable_tasks = 'requeue'")
            default: break
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
        default: return conditions.default
        }
    }

    private func preparationEnded(_ db: Connection, _ execution: Row, _ outcome: Outcome, now date: Date) throws -> [Int64] {
        let now = Timestamp.string(date)
        let jobPK = execution["job_pk"].int64 ?? 0
        let nodePK = execution["node_pk"].int64 ?? 0
        guard let job = try db.query("SELECT * FROM job WHERE pk = ?", [jobPK]).first,
            let record = try db.query("SELECT * FROM job_node WHERE job_pk = ? AND node_pk = ?", [jobPK, nodePK]).first,
            let prep = decodeJSON(JobPreparationTask.self, job["job_preparation_task"].string)
        else { return [] }
        if case .interrupted = outcome {
            // The node rebooted (or left) mid-preparation, or its process tree vanished while the
            // engine was down: it reruns before the next task there (P7). Tasks waiting for it go
            // back to the queue now, as on a node failure; otherwise nothing would ever dispatch
            // them again (dispatch only places active tasks) and their slots would stay taken.
            for task in try db.query("SELECT pk, id FROM task WHERE job_pk = ? AND node_pk = ? AND state = 'preparing'", [jobPK, nodePK]) {
                try db.run(
                    """
                    UPDATE task SET state = 'active', previous_state = state, previous_state_transition_time = state_transition_time,
                        state_transition_time = ?, requeue_count = requeue_count + 1, last_requeue_time = ?, node_pk = NULL,
                        e_tag = ?, last_modified = ? WHERE pk = ?
                    """, [now, now, Engine.newETag(), now, task["pk"]])
                try self.record(db, "task.active", pool: job["pool_id"].string, job: job["id"].string, task: task["id"].string,
                    from: "preparing", to: "active", detail: #"{"reason":"requeued"}"#, now: now)
            }
            return []
        }
        let jobIsLive = ["active", "disabling", "disabled", "enabling"].contains(job["state"].string ?? "")
        if case .exited(let code) = outcome, code != 0, jobIsLive {
            let max = prep.constraints?.maxTaskRetryCount ?? 0
            let retries = record["prep_retry_count"].int ?? 0
            if max == -1 || retries < max {
                try db.run("UPDATE job_node SET prep_retry_count = prep_retry_count + 1, prep_last_retry_time = ?, prep_start_time = ? WHERE job_pk = ? AND node_pk = ?",
                    [now, now, jobPK, nodePK])
                let wall = prep.constraints?.maxWallClockTime.flatMap { try? ISODuration.parse($0) }
                let pk = try beginExecution(db, kind: "preparation", nodePK: nodePK, jobPK: jobPK, taskPK: nil,
                    attempt: (execution["attempt"].int ?? 1) + 1, taskDirectory: execution["task_dir"].string ?? "",
                    wallClockMilliseconds: wall, retryCount: retries + 1, requeueCount: 0, now: date)
                return [pk]
            }
        }
        let succeeded = outcome.succeeded
        try db.run(
            """
            UPDATE job_node SET prep_state = 'completed', prep_end_time = ?, prep_result = ?, prep_exit_code = ?, prep_failure_info = ?,
                eligible = ? WHERE job_pk = ? AND node_pk = ?
            """,
            [now, succeeded ? "success" : "failure", outcome.exitCode, outcome.failureInfo.map(encodeJSON),
             succeeded || prep.waitForSuccess == false ? 1 : 0, jobPK, nodePK])
        try setRetention(db, execution["pk"].int64 ?? 0, kind: "preparation", jobPK: jobPK, date: date)
        try recordForJob(db, jobPK, nodePK: nodePK, "preparation.completed", to: succeeded ? "success" : "failure", now: now)
        let waiting = try db.query("SELECT * FROM task WHERE job_pk = ? AND node_pk = ? AND state = 'preparing' ORDER BY pk", [jobPK, nodePK])
        if succeeded {
            guard jobIsLive else { return [] }
            var launches: [Int64] = []
            for task in waiting { launches.append(try startTask(db, task, job: job, nodePK: nodePK, now: date)) }
            return launches
        }
        if prep.waitForSuccess != false {
            // P5: the node is ineligible for this job; waiting tasks go back to the queue for other nodes.
            let node = try db.query("SELECT id FROM node WHERE pk = ?", [nodePK]).first?["id"].string ?? ""
            for task in waiting {
                try db.run(
                    """
                    UPDATE task SET state = 'active', previous_state = state, previous_state_transition_time = state_transition_time,
                        state_transition_time = ?, node_pk = NULL, e_tag = ?, last_modified = ? WHERE pk = ?
                    """, [now, Engine.newETag(), now, task["pk"]])
                try self.record(db, "task.active", pool: job["pool_id"].string, job: job["id"].string, task: task["id"].string,
                    from: "preparing", to: "active", detail: #"{"reason":"JobPreparationTaskFailed"}"#, now: now)
            }
            let error = SchedulingError(category: "usererror", code: "JobPreparationTaskFailed",
                message: "The job preparation task failed on node \(node); the job's tasks will not run there",
                details: [NameValuePair(name: "NodeId", value: node)] + (outcome.failureInfo.map { [NameValuePair(name: "FailureCode", value: $0.code)] } ?? [])
                    + (outcome.exitCode.map { [NameValuePair(name: "ExitCode", value: "\($0)")] } ?? []))
            try db.run("UPDATE job SET scheduling_error = ?, e_tag = ?, last_modified = ? WHERE pk = ?", [encodeJSON(error), Engine.newETag(), now, jobPK])
        }
        return []
    }

    private func startTaskEnded(_ db: Connection, _ execution: Row, _ outcome: Outcome, now date: Date) throws -> [Int64] {
        let nodePK = execution["node_pk"].int64 ?? 0
        let now = Timestamp.string(date)
        guard case .interrupted = outcome else {
            let start = try db.query("SELECT p.start_task, n.state FROM node n JOIN pool p ON p.pk = n.pool_pk WHERE n.pk = ?", [nodePK]).first
            let spec = decodeJSON(StartTask.self, start?["start_task"].string)
            if case .exited(let code) = outcome, code != 0 {
                let max = spec?.maxTaskRetryCount ?? 0
                let retries = execution["retry_count"].int ?? 0
                if max == -1 || retries < max {
                    let pk = try beginExecution(db, kind: "start", nodePK: nodePK, jobPK: nil, taskPK: nil,
                        attempt: (execution["attempt"].int ?? 1) + 1, taskDirectory: execution["task_dir"].string ?? "",
                        wallClockMilliseconds: nil, retryCount: retries + 1, requeueCount: 0, now: date)
                    return [pk]
                }
            }
            if start?["state"].string == "waitingforstarttask" {
                try setNodeState(db, nodePK, outcome.succeeded ? "idle" : "starttaskfailed", now: now)
            }
            return []
        }
        return []
    }

    /// Puts an assigned task into `running` on a node and begins its execution (inside a transaction).
    func startTask(_ db: Connection, _ task: Row, job: Row, nodePK: Int64, now date: Date) throws -> Int64 {
        let now = Timestamp.string(date)
        let attempt = (task["attempt"].int ?? 0) + 1
        try db.run(
            """
            UPDATE task SET state = 'running', previous_state = state, previous_state_transition_time = state_transition_time,
                state_transition_time = ?, node_pk = ?, attempt = ?, start_time = ?, e_tag = ?, last_modified = ? WHERE pk = ?
            """, [now, nodePK, attempt, now, Engine.newETag(), now, task["pk"]])
        let node = try db.query("SELECT id, root_dir FROM node WHERE pk = ?", [nodePK]).first
        try record(db, "task.running", pool: job["pool_id"].string, node: node?["id"].string, job: job["id"].string,
            task: task["id"].string, from: task["state"].string, to: "running", now: now)
        let directory = ((node?["root_dir"].string ?? "") as NSString).appendingPathComponent(
            "workitems/\(job["id"].string ?? "")/job-1/\(task["id"].string ?? "")")
        return try beginExecution(db, kind: "task", nodePK: nodePK, jobPK: job["pk"].int64, taskPK: task["pk"].int64,
            attempt: attempt, taskDirectory: directory, wallClockMilliseconds: task["max_wall_clock_time_ms"].int64,
            retryCount: task["retry_count"].int ?? 0, requeueCount: task["requeue_count"].int ?? 0, now: date)
    }
}
