import Foundation
import SQLite

extension Engine {
    /// Adds one task to a job.
    @discardableResult
    public func addTask(jobID: String, _ spec: TaskSpec) throws -> JobTask {
        let now = Engine.now()
        var effects = PassEffects()
        // As for a collection: the dispatched task spawns before what follows the commit, and the
        // commit's sync overlaps that spawn; the task is on disk before this returns.
        let pk: Int64 = try transactionDeferringAfterCommit(sync: .deferred) { db in
            let job = try jobRow(db, jobID)
            try requireModifiable(job)
            let pk = try insertTask(db, jobPK: job.int64("pk", table: "job"), jobID: job.text("id", table: "job"), spec: spec, jobRow: job,
                isJobManager: false, killJobOnCompletion: false, now: now)
            try dispatchWithSubmission(db, into: &effects)
            return pk
        }
        launchDispatched(effects)
        try syncCommitted()
        finishAfterCommit()
        return try task(db, pk: pk)
    }

    /// Adds up to 100 tasks in one transaction; each task succeeds or fails on its own. Returns once
    /// that transaction has committed: an answer means the tasks are stored.
    ///
    /// Calls that arrive while an ingest transaction commits are stored together by the next one (a
    /// group commit): with several clients adding tasks at once, each commit's fsync is shared by
    /// all of them instead of queueing one per call behind the engine's single writer. Each call
    /// still succeeds or fails on its own: a job that does not exist or no longer accepts tasks
    /// fails only the call that named it.
    public func addTasks(jobID: String, _ specs: [TaskSpec]) async throws -> [TaskAddResult] {
        guard specs.count <= 100 else {
            throw BookendError.invalidProperty("value", "\(specs.count)", "at most 100 tasks can be added in one call")
        }
        return try await withCheckedThrowingContinuation { continuation in
            pendingIngests.append(PendingIngest(jobID: jobID, specs: specs, continuation: continuation))
            // The first call of a group schedules the commit behind whatever is already queued on the
            // engine's queue, other calls included; later calls join it until it runs.
            if pendingIngests.count == 1 { onQueue { $0.commitPendingIngests() } }
        }
    }

    /// An `addTasks` call waiting for its transaction.
    struct PendingIngest {
        var jobID: String
        var specs: [TaskSpec]
        var continuation: CheckedContinuation<[TaskAddResult], any Error>
    }

    /// Stores every waiting `addTasks` call in one transaction, then answers each.
    func commitPendingIngests() {
        let group = pendingIngests
        pendingIngests.removeAll()
        guard !group.isEmpty else { return }
        let now = Engine.now()
        var outcomes: [Result<[TaskAddResult], any Error>] = []
        // What the group's own dispatch committed; nil when the transaction did not commit.
        let committed: PassEffects?
        do {
            // Callers are answered and dispatched tasks spawned before what follows the commit; the
            // commit's sync overlaps the spawns, and callers hear once it is done.
            committed = try transactionDeferringAfterCommit(sync: .deferred) { db in
                outcomes.removeAll()
                var effects = PassEffects()
                for call in group {
                    // A call refused as a whole (JobNotFound, a job being deleted) wrote nothing.
                    do {
                        outcomes.append(.success(try insertCollection(db, jobID: call.jobID, call.specs, now: now)))
                    } catch let error as BookendError {
                        outcomes.append(.failure(error))
                    }
                }
                try dispatchWithSubmission(db, into: &effects)
                return effects
            }
        } catch {
            // Nothing of the group was stored: every call fails with the error.
            outcomes = group.map { _ in .failure(error) }
            committed = nil
        }
        // What was dispatched spawns, the commit is synced, then the callers are answered (their tasks
        // are stored and on disk). A failed sync fails every call that stored something: its tasks
        // are in the database, but the disk did not confirm them.
        if let committed {
            launchDispatched(committed)
            do {
                try syncCommitted()
            } catch {
                let failure = BookendError.internalError("the tasks were stored, but the disk did not confirm them: \(error)")
                outcomes = outcomes.map { outcome in
                    guard case .success = outcome else { return outcome }
                    return .failure(failure)
                }
            }
        }
        for (call, outcome) in zip(group, outcomes) { call.continuation.resume(with: outcome) }
        finishAfterCommit()
    }

    /// One call's tasks, inside the group's transaction.
    private func insertCollection(_ db: Connection, jobID: String, _ specs: [TaskSpec], now: String) throws -> [TaskAddResult] {
        let job = try jobRow(db, jobID)
        try requireModifiable(job)
        let target = try TaskTarget(job: job)
        // Every task is validated before any is written, with no SQL; a refused task then writes
        // nothing, so the batch needs no savepoint per task. Only a duplicate id is found by the
        // inserts themselves (see `TaskStore.insertAll`).
        var validated: [Result<NewTask, BookendError>] = []
        validated.reserveCapacity(specs.count)
        for spec in specs {
            do throws(BookendError) {
                validated.append(.success(try validatedTask(spec, job: job, isJobManager: false, killJobOnCompletion: false,
                    reserved: target.reserved)))
            } catch {
                validated.append(.failure(error))
            }
        }
        // Each dependency is a row: one call may not make more than `maxCallDependencies` of them. A
        // body of 5 KB (100 tasks, each depending on a range of 100,000 ids) wrote 10 million rows,
        // 140 MB, and held every other write back for 20 s.
        var dependencyRows = 0
        for index in validated.indices {
            guard case .success(let task) = validated[index] else { continue }
            dependencyRows += task.dependencies.count
            if dependencyRows > Validate.maxCallDependencies {
                validated[index] = .failure(BookendError.invalidProperty("dependsOn", "\(task.dependencies.count) task ids",
                    "the tasks of one call may depend on at most \(Validate.maxCallDependencies) task ids in all (ranges expanded); add this task in another call"))
                dependencyRows -= task.dependencies.count
            }
        }
        var accepted: [NewTask] = []
        var eTags: [String] = []
        for case .success(let task) in validated {
            accepted.append(task)
            eTags.append(Engine.newETag())
        }
        var stored = try TaskStore.insertAll(db, accepted, eTags: eTags, into: target, now: now, log: &pendingEvents).makeIterator()
        var eTagsInOrder = eTags.makeIterator()
        return zip(specs, validated).map { spec, outcome in
            switch outcome {
            case .failure(let error):
                return TaskAddResult(status: "clienterror", taskId: spec.id, error: error)
            case .success:
                let eTag = eTagsInOrder.next()
                switch stored.next() {
                case .stored:
                    return TaskAddResult(status: "success", taskId: spec.id, eTag: eTag, lastModified: now, error: nil)
                case .refused(let error):
                    return TaskAddResult(status: "clienterror", taskId: spec.id, error: error)
                case nil:
                    preconditionFailure("insertAll answers once per task")
                }
            }
        }
    }

    /// The ids of a job's preparation and release tasks (lowercased), which its tasks may not take.
    struct ReservedTaskIDs {
        var preparation: String?
        var release: String?
    }

    static func reservedTaskIDs(_ job: Row) -> ReservedTaskIDs {
        ReservedTaskIDs(
            preparation: decodeJSON(JobPreparationTask.self, job["job_preparation_task"].string)?.id?.lowercased(),
            release: decodeJSON(JobReleaseTask.self, job["job_release_task"].string)?.id?.lowercased())
    }

    /// The job tasks are added to, read once per call.
    struct TaskTarget {
        var jobPK: Int64
        var jobID: String
        var poolID: String?
        var reserved: ReservedTaskIDs

        init(job: Row) throws {
            jobPK = try job.int64("pk", table: "job")
            jobID = try job.text("id", table: "job")
            poolID = job["pool_id"].string
            // Decoded once for the whole batch rather than once per task (measured in make bench).
            reserved = Engine.reservedTaskIDs(job)
        }
    }

    /// A task that passed validation: the row to insert.
    struct NewTask {
        var id: String
        var displayName: String?
        var commandLine: String
        var storedSpec: String
        var isJobManager: Bool
        var killJobOnCompletion: Bool
        var requiredSlots: Int
        var maxWallClockMS: Int64?
        var retentionMS: Int64?
        var maxRetries: Int
        var dependencies: Set<String>
    }

    /// Validates and inserts a task inside the caller's transaction; returns its primary key.
    func insertTask(
        _ db: Connection, jobPK: Int64, jobID: String, spec: TaskSpec, jobRow: Row?, isJobManager: Bool,
        killJobOnCompletion: Bool, now: String, reserved: ReservedTaskIDs? = nil
    ) throws -> Int64 {
        guard let job = try jobRow ?? db.query("SELECT * FROM job WHERE pk = ?", [jobPK]).first else {
            throw BookendError.notFound("JobNotFound", "The job \(jobID)")
        }
        var target = try TaskTarget(job: job)
        target.jobPK = jobPK
        target.jobID = jobID
        if let reserved { target.reserved = reserved }
        let task = try validatedTask(spec, job: job, isJobManager: isJobManager, killJobOnCompletion: killJobOnCompletion,
            reserved: target.reserved)
        return try insertValidated(db, task, into: target, eTag: Engine.newETag(), now: now)
    }

    /// Checks `spec` against the job's settings without touching the database; returns the row to insert.
    func validatedTask(
        _ spec: TaskSpec, job: Row, isJobManager: Bool, killJobOnCompletion: Bool, reserved: ReservedTaskIDs
    ) throws(BookendError) -> NewTask {
        try Validate.id(spec.id, property: "id")
        try Validate.displayName(spec.displayName)
        try Validate.commandLine(spec.commandLine, property: "commandLine")
        try Validate.environment(spec.environmentSettings, property: "environmentSettings")
        try Validate.resourceFiles(spec.resourceFiles, property: "resourceFiles")
        try Validate.retryCount(spec.constraints?.maxTaskRetryCount, property: "constraints.maxTaskRetryCount")
        if spec.multiInstanceSettings != nil {
            throw BookendError.invalidProperty("multiInstanceSettings", nil, "multi-instance tasks are not supported by Bookend")
        }
        let slots = spec.requiredSlots ?? 1
        try Validate.requiredSlots(slots, property: "requiredSlots")
        let wall = try Validate.duration(spec.constraints?.maxWallClockTime, property: "constraints.maxWallClockTime")
        let retention = try Validate.duration(spec.constraints?.retentionTime, property: "constraints.retentionTime")
            ?? (spec.constraints?.retentionTime == nil ? Engine.defaultRetention : nil)
        var stored = spec
        stored.userIdentity = try Validate.userIdentity(spec.userIdentity, property: "userIdentity")
        let onTaskFailure = job["on_task_failure"].string ?? "noaction"
        if let conditions = spec.exitConditions {
            let options = (conditions.exitCodes ?? []).map(\.exitOptions) + (conditions.exitCodeRanges ?? []).map(\.exitOptions)
                + [conditions.preProcessingError, conditions.fileUploadError, conditions.default].compactMap { $0 }
            for option in options {
                if let action = try Validate.known(option.jobAction, property: "exitConditions.jobAction"),
                    action != .none, onTaskFailure == "noaction" {
                    throw BookendError.invalidProperty("exitConditions.jobAction", action.rawValue, "a jobAction needs the job's onTaskFailure to be performexitoptionsjobaction")
                }
                _ = try Validate.known(option.dependencyAction, property: "exitConditions.dependencyAction")
            }
        }
        let lowercasedID = spec.id.lowercased()
        if reserved.preparation == lowercasedID {
            throw BookendError.conflict("TaskIdSameAsJobPreparationTask", "The task id is the same as the job preparation task's")
        }
        if reserved.release == lowercasedID {
            throw BookendError.conflict("TaskIdSameAsJobReleaseTask", "The task id is the same as the job release task's")
        }
        var dependencies: [String] = []
        if let dependsOn = spec.dependsOn, !(dependsOn.taskIds ?? []).isEmpty || !(dependsOn.taskIdRanges ?? []).isEmpty {
            guard job["uses_task_dependencies"].int == 1 else {
                throw BookendError(.invalidRequest, "TaskDependenciesNotSpecifiedOnJob", "The job does not use task dependencies (usesTaskDependencies is false)")
            }
            let ids = dependsOn.taskIds ?? []
            guard ids.reduce(0, { $0 + $1.count }) <= 64_000 else {
                throw BookendError(.invalidRequest, "TaskDependencyListTooLong", "The dependsOn.taskIds list is longer than 64000 characters")
            }
            dependencies = ids
            dependencies += try Validate.expand(dependsOn.taskIdRanges ?? [], property: "dependsOn.taskIdRanges")
        }
        let maxRetries: Int
        if let own = spec.constraints?.maxTaskRetryCount {
            maxRetries = own
        } else {
            // The job's default; a job row without it is corrupt, never "no retries".
            do {
                maxRetries = try job.int("max_task_retry_count", table: "job")
            } catch let error as BookendError {
                throw error
            } catch {
                throw BookendError.internalError("job max_task_retry_count: \(error)")
            }
        }
        // The stored spec drops what has its own column.
        stored.constraints = nil
        stored.requiredSlots = nil
        return NewTask(
            id: spec.id, displayName: spec.displayName, commandLine: spec.commandLine, storedSpec: StoredTaskSpec.encode(stored),
            isJobManager: isJobManager, killJobOnCompletion: killJobOnCompletion, requiredSlots: slots, maxWallClockMS: wall,
            retentionMS: retention, maxRetries: maxRetries, dependencies: Set(dependencies.map { $0.lowercased() }))
    }

    /// Inserts a validated task, its dependencies and its event; returns its primary key.
    func insertValidated(_ db: Connection, _ task: NewTask, into target: TaskTarget, eTag: String, now: String) throws -> Int64 {
        try TaskStore.insert(db, task, into: target, eTag: eTag, now: now, log: &pendingEvents)
    }

    /// One task of a job, as last committed. Reads on a reader connection.
    public nonisolated func task(jobID: String, taskID: String) throws -> JobTask {
        try readers.read { db in try task(db, pk: taskPK(db, jobID: jobID, taskID: taskID)) }
    }

    /// The job's id as it was created (requests may spell it in another case), or JobNotFound: for
    /// callers that need only the id, without reading the whole job. Reads on a reader connection.
    public nonisolated func storedJobID(_ jobID: String) throws -> String {
        try readers.read { db in
            guard let id = try db.scalar("SELECT id FROM job WHERE id = ?", [jobID]).string else {
                throw BookendError.notFound("JobNotFound", "The job \(jobID)")
            }
            return id
        }
    }

    nonisolated func taskPK(_ db: Connection, jobID: String, taskID: String) throws -> Int64 {
        let job = try jobRow(db, jobID)
        guard let pk = try db.scalar("SELECT pk FROM task WHERE job_pk = ? AND id = ?", [job["pk"], taskID]).int64 else {
            throw BookendError.notFound("TaskNotFound", "The task \(taskID)")
        }
        return pk
    }

    /// The tasks of a job in the order they were added.
    public func tasks(jobID: String) throws -> [JobTask] {
        let job = try jobRow(db, jobID)
        return try db.query(Engine.taskSelect + " WHERE t.job_pk = ? ORDER BY t.pk", [job["pk"]]).map(Engine.jobTask)
    }

    nonisolated func task(_ db: Connection, pk: Int64) throws -> JobTask {
        guard let row = try db.query(Engine.taskSelect + " WHERE t.pk = ?", [pk]).first else {
            throw BookendError.notFound("TaskNotFound", "The task")
        }
        return try Engine.jobTask(row)
    }

    /// The columns `jobTask(_:)` reads: a task row with its job's id and the id of the node (and that
    /// node's pool) it holds or last held. Every read of tasks as entities (one task, a page, a whole
    /// job) appends its own WHERE/ORDER BY to this, so a page is one statement, not one per task.
    static let taskSelect = """
        SELECT t.*, j.id AS job_id, n.id AS node_id, p.id AS node_pool_id FROM task t JOIN job j ON j.pk = t.job_pk
        LEFT JOIN node n ON n.pk = t.node_pk LEFT JOIN pool p ON p.pk = n.pool_pk
        """

    /// The task entity of a `taskSelect` row.
    static func jobTask(_ row: Row) throws -> JobTask {
        let spec = try StoredTaskSpec.decode(row)
        let id = try row.text("id", table: "task")
        var nodeInfo: TaskNodeInfo?
        if let nodeID = row["node_id"].string {
            nodeInfo = TaskNodeInfo(affinityId: "TVM:\(nodeID)", poolId: try row.text("node_pool_id", table: "task"), nodeId: nodeID,
                taskRootDirectory: "workitems/\(try row.text("job_id", table: "task"))/job-1/\(id)")
        }
        let retries = try row.int("retry_count", table: "task")
        let requeues = try row.int("requeue_count", table: "task")
        return JobTask(
            id: id, displayName: row["display_name"].string, eTag: try row.text("e_tag", table: "task"),
            lastModified: try row.text("last_modified", table: "task"), creationTime: try row.text("creation_time", table: "task"),
            exitConditions: spec?.exitConditions, state: try row.state(TaskState.self, table: "task"),
            stateTransitionTime: try row.text("state_transition_time", table: "task"), previousState: try row.optionalState(TaskState.self, "previous_state", table: "task"),
            previousStateTransitionTime: row["previous_state_transition_time"].string, commandLine: try row.text("command_line", table: "task"),
            containerSettings: spec?.containerSettings, resourceFiles: spec?.resourceFiles, outputFiles: spec?.outputFiles,
            environmentSettings: spec?.environmentSettings, affinityInfo: spec?.affinityInfo,
            constraints: TaskConstraints(
                maxWallClockTime: ISODuration.format(row["max_wall_clock_time_ms"].int64),
                retentionTime: ISODuration.format(row["retention_time_ms"].int64),
                maxTaskRetryCount: try row.int("max_task_retry_count", table: "task")),
            requiredSlots: row["required_slots"].int ?? 1, userIdentity: spec?.userIdentity ?? .nonAdmin,
            executionInfo: TaskExecutionInfo(
                startTime: row["start_time"].string, endTime: row["end_time"].string, exitCode: row["exit_code"].int,
                failureInfo: try row.json(FailureInfo.self, "failure_info", table: "task"), retryCount: retries,
                lastRetryTime: row["last_retry_time"].string, requeueCount: requeues,
                lastRequeueTime: row["last_requeue_time"].string, result: row["result"].string),
            nodeInfo: nodeInfo, dependsOn: spec?.dependsOn, applicationPackageReferences: spec?.applicationPackageReferences)
    }

    /// The rows of a task and its job, for a call that changes the task: JobNotFound, the job's
    /// refusal while it is ending or disabled, or TaskNotFound, in that order.
    func modifiableTask(_ db: Connection, jobID: String, taskID: String) throws -> (job: Row, task: Row) {
        let job = try jobRow(db, jobID)
        try requireModifiable(job)
        return (job, try taskRow(db, job: job, taskID))
    }

    /// The task's row in the job's row, or TaskNotFound.
    nonisolated func taskRow(_ db: Connection, job: Row, _ taskID: String) throws -> Row {
        guard let row = try db.query("SELECT * FROM task WHERE job_pk = ? AND id = ?", [job["pk"], taskID]).first else {
            throw BookendError.notFound("TaskNotFound", "The task \(taskID)")
        }
        return row
    }

    /// Ends a task: kills it if it runs; it completes as failed with `TaskEnded`.
    public func terminateTask(jobID: String, taskID: String) throws {
        let now = Engine.now()
        try transaction { db in
            let (job, row) = try modifiableTask(db, jobID: jobID, taskID: taskID)
            // A running task is killed and completes when its process has ended; any other completes
            // now, and the task machine answers TaskCompleted for one that already has.
            switch try row.state(TaskState.self, table: "task") {
            case .running:
                try ExecutionStore.decideKill(db, .terminate, where: "task_pk = ?", [row.int64("pk", table: "task")])
            case .active, .preparing, .completed:
                try completeTask(db, row, job: job, result: .ended(reason: "UserTerminate", exitCode: nil), now: now)
            }
        }
        wake()
    }

    /// Deletes a task and its files; a running task is killed first.
    public func deleteTask(jobID: String, taskID: String) throws {
        let now = Engine.now()
        var directory: String?
        var live: [Row] = []
        var removal: Int64?
        // The processes are killed once the deletion is committed, never before: a crash (or a failed
        // commit) in between left the task stored with its run killed, and that run was taken for lost
        // and ran again.
        defer { finishAfterCommit() }
        try transactionDeferringAfterCommit { db in
            let job = try jobRow(db, jobID)
            let row = try taskRow(db, job: job, taskID)
            let pk = try row.int64("pk", table: "task")
            live = try db.query("SELECT pid, pid_start_time FROM execution WHERE task_pk = ? AND state <> 'completed' AND pid IS NOT NULL", [pk])
            directory = try db.scalar("SELECT task_dir FROM execution WHERE task_pk = ? ORDER BY pk DESC LIMIT 1", [pk]).string
            // Recorded with the deletion: a crash before the folder is removed below leaves the row,
            // and the next start removes the folder (`finishTaskFolderRemovals`).
            if let directory {
                removal = try TaskFolderRemovalStore.record(db, jobID: try job.text("id", table: "job"), taskID: try row.text("id", table: "task"),
                    path: directory)
            }
            // A live execution's shim is killed after the commit: its folder goes with its row
            // (completed ones lost theirs when their exit was recorded).
            retiredStatusDirectories += try db.query("SELECT status_dir FROM execution WHERE task_pk = ? AND state <> 'completed'", [pk])
                .compactMap { $0[0].string }
            try TaskStore.delete(db, TaskKey(task: row, job: job), from: row.state(TaskState.self, table: "task"), now: now,
                log: &pendingEvents)
            CrashPoint.hit("task-delete.before-commit")
        }
        for execution in live { killNow(execution) }
        finishAfterCommit()
        if let directory, let removal, FileAccess.removeTree(atPath: directory) {
            // Forgotten by the next pass, with whatever else it commits.
            removedTaskFolders.append(removal)
        }
        wake()
    }

    /// Makes a failed task runnable again (retry count reset).
    public func reactivateTask(jobID: String, taskID: String) throws {
        let now = Engine.now()
        try transaction { db in
            let (job, row) = try modifiableTask(db, jobID: jobID, taskID: taskID)
            let state = try row.state(TaskState.self, table: "task")
            // Only a failed task may be reactivated: the machine answers TaskNotCompleted first.
            if state == .completed, try row.optionalState(ExecutionResult.self, "result", table: "task") != .failure {
                throw BookendError.conflict("TaskSucceeded", "The specified task succeeded")
            }
            try TaskStore.transition(db, TaskKey(task: row, job: job), from: state, .reactivate, now: now, log: &pendingEvents)
            try ExecutionStore.clearRetentionDeadlines(db, taskPK: row.int64("pk", table: "task"))
        }
        wake()
    }

    /// Replaces a task's constraints (Batch PUT semantics: omitted values return to their defaults).
    public func updateTask(jobID: String, taskID: String, constraints: TaskConstraints?) throws {
        let now = Engine.now()
        try transaction { db in
            let (job, row) = try modifiableTask(db, jobID: jobID, taskID: taskID)
            guard try row.state(TaskState.self, table: "task") != .completed else {
                throw BookendError.conflict("TaskCompleted", "The specified task is already completed")
            }
            let wall = try Validate.duration(constraints?.maxWallClockTime, property: "constraints.maxWallClockTime")
            let retention = try Validate.duration(constraints?.retentionTime, property: "constraints.retentionTime")
                ?? (constraints?.retentionTime == nil ? Engine.defaultRetention : nil)
            try Validate.retryCount(constraints?.maxTaskRetryCount, property: "constraints.maxTaskRetryCount")
            let retries = try constraints?.maxTaskRetryCount ?? job.int("max_task_retry_count", table: "job")
            if retries != -1, retries < (try row.int("retry_count", table: "task")) {
                throw BookendError.invalidProperty("constraints.maxTaskRetryCount", "\(retries)", "is below the task's retry count so far")
            }
            try PropertyStore.update(db, .task, pk: row.int64("pk", table: "task"),
                [("max_wall_clock_time_ms", wall), ("retention_time_ms", retention), ("max_task_retry_count", retries)], now: now)
            // The attempt under way runs under the new clock too (spec §4.2: a running task whose
            // maxWallClockTime is exceeded completes); before, only the next attempt did.
            try ExecutionStore.resetTaskClock(db, taskPK: row.int64("pk", table: "task"), milliseconds: wall)
            try record(db, "task.updated", pool: job["pool_id"].string, job: job["id"].string, task: row["id"].string, now: now)
        }
    }

    /// The directory of a task on its node, for reading its files (`stdout.txt`, `stderr.txt`, `wd/…`).
    public func taskDirectory(jobID: String, taskID: String) throws -> String {
        let pk = try taskPK(db, jobID: jobID, taskID: taskID)
        guard let row = try db.query("SELECT task_dir, files_deleted_time FROM execution WHERE task_pk = ? ORDER BY pk DESC LIMIT 1", [pk]).first,
            let directory = row["task_dir"].string
        else {
            throw BookendError.conflict("OperationInvalidForCurrentState", "The task has not run on a node yet, so it has no files")
        }
        if row["files_deleted_time"] != .null {
            throw BookendError.conflict("TaskFilesCleanedup", "The task's files were deleted when its retention time passed")
        }
        return directory
    }

    /// Reads a file of a task, by a path relative to the task directory that must stay inside it.
    public func readTaskFile(jobID: String, taskID: String, path: String) throws -> Data {
        try FileAccess.read(root: taskDirectory(jobID: jobID, taskID: taskID), relativePath: path)
    }

    /// Reads a file of a node, by a path relative to the node's root directory that must stay inside it.
    public func readNodeFile(poolID: String, nodeID: String, path: String) throws -> Data {
        try FileAccess.read(root: node(poolID: poolID, nodeID: nodeID).rootDirectory, relativePath: path)
    }
}
