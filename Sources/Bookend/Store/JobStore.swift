import SQLite

/// A job as the event log names it.
struct JobKey {
    var pk: Int64
    var id: String
    var poolID: String

    init(_ job: Row) throws {
        pk = try job.int64("pk", table: "job")
        id = try job.text("id", table: "job")
        poolID = try job.text("pool_id", table: "job")
    }
}

/// A job transition with the columns it writes besides the state.
enum JobWrite {
    case disable(DisableJobOption)
    case tasksStopped
    case enable
    case resume
    case terminate(reason: String)
    case complete
    /// `reason` is the terminate reason kept (or given) for the deleted job.
    case delete(reason: String?)

    var event: JobEvent {
        switch self {
        case .disable: .disable
        case .tasksStopped: .tasksStopped
        case .enable: .enable
        case .resume: .resume
        case .terminate: .terminate
        case .complete: .complete
        case .delete: .delete
        }
    }
}

/// Owns the SQL that moves a job between states.
enum JobStore {
    /// Asks `JobMachine` where `write` leads (throwing the Batch conflict if it is illegal), then
    /// writes the new state, previous state, times and ETag in one statement guarded by
    /// `state = from`, and appends the event row. An event that leaves the job where it is (disabling
    /// a disabled job, terminating a terminating one) is an idempotent call: nothing is written.
    @discardableResult
    static func transition(
        _ db: Connection, _ job: JobKey, from: JobState, _ write: JobWrite, now: String, log: inout [EngineEvent]
    ) throws -> JobState {
        let to = try JobMachine.next(from: from, on: write.event)
        guard to != from else { return to }
        var change = StateChange(to: to.rawValue, now: now)
        switch write {
        case .disable(let option):
            change.sets.append("disable_tasks = ?")
            change.arguments.append(option.rawValue)
        case .enable:
            change.sets.append("disable_tasks = NULL")
        case .terminate(let reason):
            change.sets.append("terminate_reason = ?")
            change.arguments.append(reason)
        case .delete(let reason):
            change.sets.append("terminate_reason = ?")
            change.arguments.append(reason)
        case .complete:
            change.sets.append("end_time = ?")
            change.arguments.append(now)
        case .tasksStopped, .resume:
            break
        }
        try change.run(db, "job", pk: job.pk, from: from.rawValue)
        log.append(try EventLog.append(db, "job.\(to.rawValue)", pool: job.poolID, job: job.id, from: from.rawValue, to: to.rawValue, now: now))
        return to
    }
}

extension JobStore {
    /// Why the job cannot make progress (e.g. JobPreparationTaskFailed); a change users see, so a new ETag.
    static func setSchedulingError(_ db: Connection, _ job: JobKey, _ error: SchedulingError, now: String) throws {
        try db.run("UPDATE job SET scheduling_error = ?, e_tag = ?, last_modified = ? WHERE pk = ?",
            [encodeJSON(error), Engine.newETag(), now, job.pk])
    }
}

/// A validated job as `createJob` inserts it (JSON columns already encoded).
struct NewJob {
    var id: String
    var displayName: String?
    var poolID: String
    var priority: Int
    var maxParallelTasks: Int
    var allowTaskPreemption: Bool
    var maxWallClockTimeMS: Int64?
    var maxTaskRetryCount: Int
    var onAllTasksComplete: String
    var onTaskFailure: String
    var usesTaskDependencies: Bool
    var jobManagerTask: String?
    var jobPreparationTask: String?
    var jobReleaseTask: String?
    var commonEnvironmentSettings: String
    var metadata: String
    var spec: String
}

extension JobStore {
    /// A new job starts `active`; returns its pk.
    static func insert(_ db: Connection, _ job: NewJob, now: String, log: inout [EngineEvent]) throws -> Int64 {
        let state = JobState.active
        try db.run(
            """
            INSERT INTO job (id, display_name, pool_id, priority, max_parallel_tasks, allow_task_preemption,
                max_wall_clock_time_ms, max_task_retry_count, on_all_tasks_complete, on_task_failure,
                uses_task_dependencies, job_manager_task, job_preparation_task, job_release_task,
                common_environment_settings, metadata, spec, state, creation_time, last_modified,
                state_transition_time, e_tag)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [job.id, job.displayName, job.poolID, job.priority, job.maxParallelTasks, job.allowTaskPreemption, job.maxWallClockTimeMS,
             job.maxTaskRetryCount, job.onAllTasksComplete, job.onTaskFailure, job.usesTaskDependencies, job.jobManagerTask,
             job.jobPreparationTask, job.jobReleaseTask, job.commonEnvironmentSettings, job.metadata, job.spec, state.rawValue,
             now, now, now, Engine.newETag()])
        let pk = db.lastInsertRowID
        log.append(try EventLog.append(db, "job.created", pool: job.poolID, job: job.id, to: state.rawValue, now: now))
        return pk
    }
}

extension JobStore {
    /// The last step of deleting a job, once every release it owed has ended: its row goes, and with
    /// it (by the schema's cascades) its tasks, executions and per-node records.
    static func delete(_ db: Connection, pk: Int64) throws {
        try db.run("DELETE FROM job WHERE pk = ?", [pk])
    }

    /// Deletes up to `limit` of a deleting job's tasks (their executions, dependencies and counts
    /// go with them, by cascade and trigger); answers how many went.
    static func deleteTasks(_ db: Connection, jobPK: Int64, limit: Int) throws -> Int {
        let batch = try db.query("SELECT pk FROM task WHERE job_pk = ? ORDER BY pk LIMIT ?", [jobPK, limit])
        guard let last = batch.last else { return 0 }
        try db.run("DELETE FROM task WHERE job_pk = ? AND pk <= ?", [jobPK, try last.int64("pk", table: "task")])
        return batch.count
    }
}
