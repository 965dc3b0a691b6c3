import Foundation
import SQLite

/// Changes to a job (`PATCH /jobs/{id}`): nil fields stay as they are. The wire's body itself.
public typealias JobUpdate = BatchJobUpdateOptions

extension Engine {
    /// The release task may run at most this long (and defaults to it).
    public static let releaseWallClockCap: Int64 = 15 * 60_000
    /// Tasks a pass deletes of a deleting job, at most (`endJob`): a few tens of milliseconds of
    /// the pass, which follows with another at once until the job is gone.
    static let jobDeletionChunk = 2_000
    static let defaultRetention: Int64 = 7 * 86_400_000

    /// Creates a job. Its tasks run on the nodes of `poolInfo.poolId` (which may not exist yet).
    @discardableResult
    public func createJob(_ spec: JobSpec) throws -> Job {
        try Validate.id(spec.id, property: "id")
        try Validate.displayName(spec.displayName)
        try Validate.metadata(spec.metadata)
        try Validate.environment(spec.commonEnvironmentSettings, property: "commonEnvironmentSettings")
        guard spec.poolInfo.autoPoolSpecification == nil else {
            throw BookendError.invalidProperty("poolInfo.autoPoolSpecification", nil, "auto pools are not supported by Bookend; create a pool and give its poolId")
        }
        guard let poolID = spec.poolInfo.poolId, !poolID.isEmpty else { throw BookendError.missingProperty("poolInfo.poolId") }
        try Validate.id(poolID, property: "poolInfo.poolId")
        let priority = spec.priority ?? 0
        guard (-1000...1000).contains(priority) else { throw BookendError.invalidProperty("priority", "\(priority)", "must be -1000 to 1000") }
        let maxParallel = spec.maxParallelTasks ?? -1
        guard maxParallel == -1 || maxParallel > 0 else { throw BookendError.invalidProperty("maxParallelTasks", "\(maxParallel)", "must be -1 or at least 1") }
        let wallClock = try Validate.duration(spec.constraints?.maxWallClockTime, property: "constraints.maxWallClockTime")
        try Validate.retryCount(spec.constraints?.maxTaskRetryCount, property: "constraints.maxTaskRetryCount")
        let onAll = try Validate.oneOf(spec.onAllTasksComplete, ["noaction", "terminatejob"], property: "onAllTasksComplete") ?? "noaction"
        let onFailure = try Validate.oneOf(spec.onTaskFailure, ["noaction", "performexitoptionsjobaction"], property: "onTaskFailure") ?? "noaction"
        let preparation = try spec.jobPreparationTask.map(normalizedPreparation)
        let release = try spec.jobReleaseTask.map(normalizedRelease)
        if release != nil, preparation == nil {
            throw BookendError.invalidProperty("jobReleaseTask", nil, "a job release task needs a job preparation task")
        }
        if let preparation, let release, preparation.id?.lowercased() == release.id?.lowercased() {
            throw BookendError.invalidProperty("jobReleaseTask.id", release.id, "must differ from the job preparation task's id")
        }
        var manager = spec.jobManagerTask
        if let jm = manager {
            try Validate.id(jm.id, property: "jobManagerTask.id")
            try Validate.commandLine(jm.commandLine, property: "jobManagerTask.commandLine")
            if [preparation?.id, release?.id].contains(where: { $0?.lowercased() == jm.id.lowercased() }) {
                throw BookendError.invalidProperty("jobManagerTask.id", jm.id, "must differ from the preparation and release task ids")
            }
            manager?.killJobOnCompletion = jm.killJobOnCompletion ?? true
            manager?.runExclusive = jm.runExclusive ?? true
        }
        var extra: [String: JSONValue] = [:]
        extra["networkConfiguration"] = spec.networkConfiguration
        let now = Engine.now()
        let pk: Int64 = try transaction { db in
            if try db.scalar("SELECT 1 FROM job WHERE id = ?", [spec.id]) != .null {
                throw BookendError.conflict("JobExists", "The specified job already exists")
            }
            let pk = try JobStore.insert(db, NewJob(
                id: spec.id, displayName: spec.displayName, poolID: poolID, priority: priority, maxParallelTasks: maxParallel,
                allowTaskPreemption: spec.allowTaskPreemption ?? false, maxWallClockTimeMS: wallClock,
                maxTaskRetryCount: spec.constraints?.maxTaskRetryCount ?? 0, onAllTasksComplete: onAll, onTaskFailure: onFailure,
                usesTaskDependencies: spec.usesTaskDependencies ?? false, jobManagerTask: manager.map(encodeJSON),
                jobPreparationTask: preparation.map(encodeJSON), jobReleaseTask: release.map(encodeJSON),
                commonEnvironmentSettings: encodeJSON(spec.commonEnvironmentSettings ?? []), metadata: encodeJSON(spec.metadata ?? []),
                spec: encodeJSON(extra)),
                now: now, log: &pendingEvents)
            if let jm = manager {
                var task = TaskSpec(id: jm.id, commandLine: jm.commandLine, environmentSettings: jm.environmentSettings,
                    resourceFiles: jm.resourceFiles, constraints: jm.constraints, requiredSlots: jm.requiredSlots,
                    userIdentity: jm.userIdentity)
                task.displayName = jm.displayName
                task.outputFiles = jm.outputFiles.map(JSONValue.array)
                _ = try insertTask(db, jobPK: pk, jobID: spec.id, spec: task, jobRow: nil, isJobManager: true,
                    killJobOnCompletion: jm.killJobOnCompletion ?? true, now: now)
            }
            return pk
        }
        wake()
        return try job(db, pk: pk)
    }

    /// The id (defaulted as Azure does) and the process, checked alike for both of a job's tasks.
    private func withCheckedProcess<T: JobSideTask>(_ task: T, _ property: String, defaultID: String) throws -> T {
        var checked = task
        checked.id = task.id ?? defaultID
        try Validate.id(checked.id ?? "", property: "\(property).id")
        try Validate.process(property, commandLine: task.commandLine, environment: task.environmentSettings, resourceFiles: task.resourceFiles)
        return checked
    }

    private func normalizedPreparation(_ task: JobPreparationTask) throws -> JobPreparationTask {
        var preparation = try withCheckedProcess(task, "jobPreparationTask", defaultID: "jobpreparation")
        try Validate.retryCount(task.constraints?.maxTaskRetryCount, property: "jobPreparationTask.constraints.maxTaskRetryCount")
        let wall = try Validate.duration(task.constraints?.maxWallClockTime, property: "jobPreparationTask.constraints.maxWallClockTime")
        let retention = try Validate.duration(task.constraints?.retentionTime, property: "jobPreparationTask.constraints.retentionTime")
            ?? (task.constraints?.retentionTime == nil ? Engine.defaultRetention : nil)
        preparation.constraints = TaskConstraints(
            maxWallClockTime: ISODuration.format(wall), retentionTime: ISODuration.format(retention),
            maxTaskRetryCount: task.constraints?.maxTaskRetryCount ?? 0)
        preparation.waitForSuccess = task.waitForSuccess ?? true
        preparation.rerunOnNodeRebootAfterSuccess = task.rerunOnNodeRebootAfterSuccess ?? true
        preparation.userIdentity = try Validate.userIdentity(task.userIdentity, property: "jobPreparationTask.userIdentity")
        return preparation
    }

    private func normalizedRelease(_ task: JobReleaseTask) throws -> JobReleaseTask {
        var release = try withCheckedProcess(task, "jobReleaseTask", defaultID: "jobrelease")
        let cap = configuration.releaseWallClockCap.components
        let capMS = min(cap.seconds * 1000 + cap.attoseconds / 1_000_000_000_000_000, Engine.releaseWallClockCap)
        let wall = try Validate.duration(task.maxWallClockTime, property: "jobReleaseTask.maxWallClockTime") ?? (task.maxWallClockTime == nil ? capMS : nil)
        guard let wall, wall <= capMS else {
            throw BookendError.invalidProperty("jobReleaseTask.maxWallClockTime", task.maxWallClockTime,
                "a job release task may run at most \(ISODuration.format(capMS))")
        }
        let retention = try Validate.duration(task.retentionTime, property: "jobReleaseTask.retentionTime")
            ?? (task.retentionTime == nil ? Engine.defaultRetention : nil)
        release.maxWallClockTime = ISODuration.format(wall)
        release.retentionTime = ISODuration.format(retention)
        release.userIdentity = try Validate.userIdentity(task.userIdentity, property: "jobReleaseTask.userIdentity")
        return release
    }

    /// The job with this id (case-insensitive), as last committed. Reads on a reader connection.
    public nonisolated func job(id: String) throws -> Job {
        try readers.read { db in
            guard let pk = try db.scalar("SELECT pk FROM job WHERE id = ?", [id]).int64 else {
                throw BookendError.notFound("JobNotFound", "The job \(id)")
            }
            return try job(db, pk: pk)
        }
    }

    /// Every job, ordered by id.
    public func jobs() throws -> [Job] {
        // One statement for the list, rows built as a single job's are.
        try db.query("SELECT * FROM job ORDER BY id").map(Engine.job)
    }

    nonisolated func job(_ db: Connection, pk: Int64) throws -> Job {
        guard let row = try db.query("SELECT * FROM job WHERE pk = ?", [pk]).first else {
            throw BookendError.notFound("JobNotFound", "The job")
        }
        return try Engine.job(row)
    }

    /// The job entity of a `job` row.
    static func job(_ row: Row) throws -> Job {
        let completed = try row.state(JobState.self, table: "job") == .completed
        let common = try row.json([EnvironmentSetting].self, "common_environment_settings", table: "job") ?? []
        let metadata = try row.json([MetadataItem].self, "metadata", table: "job") ?? []
        let extra = try row.json([String: JSONValue].self, "spec", table: "job") ?? [:]
        return Job(
            id: try row.text("id", table: "job"), displayName: row["display_name"].string,
            usesTaskDependencies: row["uses_task_dependencies"].int == 1, eTag: try row.text("e_tag", table: "job"),
            lastModified: try row.text("last_modified", table: "job"), creationTime: try row.text("creation_time", table: "job"),
            state: try row.state(JobState.self, table: "job"), stateTransitionTime: try row.text("state_transition_time", table: "job"),
            previousState: try row.optionalState(JobState.self, "previous_state", table: "job"), previousStateTransitionTime: row["previous_state_transition_time"].string,
            priority: try row.int("priority", table: "job"), allowTaskPreemption: row["allow_task_preemption"].int == 1,
            maxParallelTasks: row["max_parallel_tasks"].int ?? -1,
            constraints: JobConstraints(
                maxWallClockTime: ISODuration.format(row["max_wall_clock_time_ms"].int64),
                maxTaskRetryCount: try row.int("max_task_retry_count", table: "job")),
            jobManagerTask: try row.json(JobManagerTask.self, "job_manager_task", table: "job"),
            jobPreparationTask: try row.json(JobPreparationTask.self, "job_preparation_task", table: "job"),
            jobReleaseTask: try row.json(JobReleaseTask.self, "job_release_task", table: "job"),
            commonEnvironmentSettings: common.isEmpty ? nil : common,
            poolInfo: PoolInfo(poolId: try row.text("pool_id", table: "job")),
            onAllTasksComplete: row["on_all_tasks_complete"].string ?? "noaction",
            onTaskFailure: row["on_task_failure"].string ?? "noaction", networkConfiguration: extra["networkConfiguration"],
            metadata: metadata.isEmpty ? nil : metadata,
            executionInfo: JobExecutionInfo(
                startTime: try row.text("creation_time", table: "job"), endTime: completed ? row["end_time"].string : nil,
                poolId: try row.text("pool_id", table: "job"),
                schedulingError: try row.json(SchedulingError.self, "scheduling_error", table: "job"),
                terminateReason: completed ? row["terminate_reason"].string : nil))
    }

    nonisolated func jobRow(_ db: Connection, _ id: String) throws -> Row {
        guard let row = try db.query("SELECT * FROM job WHERE id = ?", [id]).first else {
            throw BookendError.notFound("JobNotFound", "The job \(id)")
        }
        return row
    }

    /// Throws the Batch error for a job that no longer accepts changes.
    func requireModifiable(_ row: Row) throws {
        try JobMachine.requireModifiable(row.state(JobState.self, table: "job"))
    }

    /// Updates the given properties of a job (Batch PATCH semantics).
    public func updateJob(id: String, _ update: JobUpdate) throws {
        let now = Engine.now()
        try transaction { db in
            let row = try jobRow(db, id)
            try requireModifiable(row)
            var assignments: [(String, any SQLiteBindable)] = []
            if let priority = update.priority {
                guard (-1000...1000).contains(priority) else { throw BookendError.invalidProperty("priority", "\(priority)", "must be -1000 to 1000") }
                assignments.append(("priority", priority))
            }
            if let maxParallel = update.maxParallelTasks {
                guard maxParallel == -1 || maxParallel > 0 else { throw BookendError.invalidProperty("maxParallelTasks", "\(maxParallel)", "must be -1 or at least 1") }
                assignments.append(("max_parallel_tasks", maxParallel))
            }
            if let allow = update.allowTaskPreemption {
                assignments.append(("allow_task_preemption", allow))
            }
            if let value = try Validate.known(update.onAllTasksComplete, property: "onAllTasksComplete") {
                if value == .noAction, row["on_all_tasks_complete"].string == OnAllBatchTasksComplete.terminateJob.rawValue {
                    throw BookendError.invalidProperty("onAllTasksComplete", value.rawValue, "cannot change from terminatejob to noaction")
                }
                assignments.append(("on_all_tasks_complete", value.rawValue))
            }
            if let constraints = update.constraints {
                let wall = try Validate.duration(constraints.maxWallClockTime, property: "constraints.maxWallClockTime")
                try Validate.retryCount(constraints.maxTaskRetryCount, property: "constraints.maxTaskRetryCount")
                assignments.append(("max_wall_clock_time_ms", wall))
                assignments.append(("max_task_retry_count", constraints.maxTaskRetryCount ?? 0))
            }
            if let poolInfo = update.poolInfo {
                guard try row.state(JobState.self, table: "job") == .disabled else {
                    throw BookendError.conflict("OperationInvalidForCurrentState", "The pool of a job can only change while the job is disabled")
                }
                guard let poolID = poolInfo.poolId else { throw BookendError.missingProperty("poolInfo.poolId") }
                try Validate.id(poolID, property: "poolInfo.poolId")
                assignments.append(("pool_id", poolID))
            }
            if let metadata = update.metadata {
                try Validate.metadata(metadata)
                assignments.append(("metadata", encodeJSON(metadata)))
            }
            try PropertyStore.update(db, .job, pk: row.int64("pk", table: "job"), assignments, now: now)
            try record(db, "job.updated", pool: row["pool_id"].string, job: row["id"].string, now: now)
        }
        wake()
    }

    /// Stops new tasks of the job from starting; `disableTasks` says what happens to running ones:
    /// `requeue` (kill and run again later), `terminate` (kill, task fails) or `wait` (let them finish).
    public func disableJob(id: String, disableTasks: String) throws {
        guard let value = try Validate.oneOf(disableTasks, DisableJobOption.allCases.map(\.rawValue), property: "disableTasks"),
            let option = DisableJobOption(rawValue: value)
        else {
            throw BookendError.missingProperty("disableTasks")
        }
        let now = Engine.now()
        try transaction { db in
            let row = try jobRow(db, id)
            try JobStore.transition(db, JobKey(row), from: row.state(JobState.self, table: "job"), .disable(option), now: now, log: &pendingEvents)
        }
        wake()
    }

    /// Lets a disabled job schedule tasks again.
    public func enableJob(id: String) throws {
        let now = Engine.now()
        try transaction { db in
            let row = try jobRow(db, id)
            try JobStore.transition(db, JobKey(row), from: row.state(JobState.self, table: "job"), .enable, now: now, log: &pendingEvents)
        }
        wake()
    }

    /// Ends a job: running tasks are killed, then the release task runs once on every node that ran
    /// preparation, then the job is `completed`. `terminateReason` defaults to `UserTerminate`.
    public func terminateJob(id: String, terminateReason: String? = nil) throws {
        let now = Engine.now()
        try transaction { db in
            let row = try jobRow(db, id)
            let reason = terminateReason.flatMap { $0.isEmpty ? nil : $0 } ?? "UserTerminate"
            try JobStore.transition(db, JobKey(row), from: row.state(JobState.self, table: "job"), .terminate(reason: reason), now: now,
                log: &pendingEvents)
        }
        wake()
    }

    /// Deletes a job: running tasks are killed, release runs where it is still owed, then the job,
    /// its tasks and their files are removed.
    public func deleteJob(id: String) throws {
        let now = Engine.now()
        try transaction { db in
            let row = try jobRow(db, id)
            // A job that was terminated keeps its reason.
            let reason = row["terminate_reason"].string ?? "UserDelete"
            try JobStore.transition(db, JobKey(row), from: row.state(JobState.self, table: "job"), .delete(reason: reason), now: now,
                log: &pendingEvents)
        }
        wake()
    }

    /// Each node's preparation and release record for the job. Reads on a reader connection.
    public nonisolated func prepReleaseStatus(jobID: String) throws -> [PrepReleaseStatus] {
        try readers.read { db in try prepReleaseStatus(db, jobID: jobID) }
    }

    nonisolated func prepReleaseStatus(_ db: Connection, jobID: String) throws -> [PrepReleaseStatus] {
        let job = try jobRow(db, jobID)
        // A stored preparation task that does not decode is a corrupt job, not "no preparation task".
        guard let preparation = try job.json(JobPreparationTask.self, "job_preparation_task", table: "job") else {
            throw BookendError.conflict("JobPreparationTaskNotSpecified", "The specified job does not have a job preparation task")
        }
        let release = try job.json(JobReleaseTask.self, "job_release_task", table: "job")
        let jobID = try job.text("id", table: "job")
        return try db.query(
            """
            SELECT r.*, n.id AS node_id, p.id AS pool_id FROM job_node r JOIN node n ON n.pk = r.node_pk
            JOIN pool p ON p.pk = n.pool_pk WHERE r.job_pk = ? ORDER BY n.pk
            """, [job["pk"]]
        ).map { row in
            let record = try JobNodeRecord(row)
            // The wire shows a release once it has started: running, then completed.
            var releaseInfo: ReleaseTaskExecutionInfo?
            let releaseState: ReleaseState?
            switch record.phase {
            case .preparationRunning, .preparationCompleted, .releasePending: releaseState = nil
            case .releaseRunning: releaseState = .running
            case .releaseCompleted: releaseState = .completed
            }
            if let releaseState {
                let done = releaseState == .completed
                releaseInfo = ReleaseTaskExecutionInfo(
                    startTime: try row.text("release_start_time", table: "job_node"), endTime: done ? row["release_end_time"].string : nil,
                    state: releaseState,
                    taskRootDirectory: "workitems/\(jobID)/job-1/\(release?.id ?? "jobrelease")",
                    exitCode: row["release_exit_code"].int,
                    failureInfo: try row.json(FailureInfo.self, "release_failure_info", table: "job_node"),
                    result: row["release_result"].string)
            }
            let preparationState = record.phase.preparation
            return PrepReleaseStatus(
                poolId: try row.text("pool_id", table: "pool"), nodeId: try row.text("node_id", table: "node"),
                jobPreparationTaskExecutionInfo: PreparationTaskExecutionInfo(
                    startTime: try row.text("prep_start_time", table: "job_node"),
                    endTime: preparationState == .completed ? row["prep_end_time"].string : nil,
                    state: preparationState,
                    taskRootDirectory: "workitems/\(jobID)/job-1/\(preparation.id ?? "jobpreparation")",
                    exitCode: row["prep_exit_code"].int, failureInfo: try row.json(FailureInfo.self, "prep_failure_info", table: "job_node"),
                    retryCount: record.retryCount, lastRetryTime: row["prep_last_retry_time"].string,
                    result: record.result?.rawValue),
                jobReleaseTaskExecutionInfo: releaseInfo)
        }
    }

    /// Task and slot counts by state (preparation, release and start tasks are not counted).
    public nonisolated func taskCounts(jobID: String) throws -> TaskCounts {
        try readers.read { db in try taskCounts(db, jobID: jobID) }
    }

    nonisolated func taskCounts(_ db: Connection, jobID: String) throws -> TaskCounts {
        let job = try jobRow(db, jobID)
        var tasks: [String: Int] = [:]
        var slots: [String: Int] = [:]
        for row in try db.query("SELECT bucket, tasks, slots FROM task_count WHERE job_pk = ?", [job["pk"]]) {
            let bucket = try row.text("bucket", table: "task_count")
            tasks[bucket] = try row.int("tasks", table: "task_count")
            slots[bucket] = try row.int("slots", table: "task_count")
        }
        func counts(_ values: [String: Int]) -> TaskCountsByState {
            let succeeded = values["succeeded"] ?? 0
            let failed = values["failed"] ?? 0
            return TaskCountsByState(active: values["active"] ?? 0, running: values["running"] ?? 0,
                completed: succeeded + failed, succeeded: succeeded, failed: failed)
        }
        return TaskCounts(taskCounts: counts(tasks), taskSlotCounts: counts(slots))
    }
}

/// What a job's preparation and release tasks share on the wire (an optional id, a command line, its
/// environment and resource files), so both are checked by one rule.
protocol JobSideTask {
    var id: String? { get set }
    var commandLine: String { get }
    var environmentSettings: [EnvironmentSetting]? { get }
    var resourceFiles: [ResourceFile]? { get }
}

extension JobPreparationTask: JobSideTask {}
extension JobReleaseTask: JobSideTask {}
