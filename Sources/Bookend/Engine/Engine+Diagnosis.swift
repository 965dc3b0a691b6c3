import Foundation
import Glibc
import SQLite

// Why work waits, computed from stored state on a reader connection, so the answer is as fresh as the
// last commit and needs no bookkeeping of its own. Whether a job is blocked is decided by the
// `job_blockage` view (migration 0007), so SQL users and the API can never disagree; what the view
// cannot do cheaply for one task (walk its dependencies) and what it cannot do at all (read stderr)
// is done here with the same codes.

extension Engine {
    /// Why the job's active tasks, or one task (`taskID`), have not started: `blocked` when nothing
    /// will change until someone acts, `waiting` when they will start on their own, `notWaiting` when
    /// nothing waits. Throws `JobNotFound` / `TaskNotFound`.
    public nonisolated func whyWaiting(jobID: String, taskID: String? = nil) throws -> WaitReason {
        let (reason, failedNodes) = try readers.read { db -> (WaitReason, [(FailedPreparation, String?)]) in
            let job = try jobRow(db, jobID)
            if let taskID {
                let pk = try taskPK(db, jobID: jobID, taskID: taskID)
                return try taskReason(db, job: job, taskPK: pk)
            }
            return try jobReason(db, job: job)
        }
        return Self.withStderr(reason, failedNodes)
    }

    /// The job and why its tasks wait, from one read transaction and one read of the job's row: what
    /// `GET job` shows. The same answers as `job(id:)` and `whyWaiting(jobID:)` one after the other,
    /// without a second transaction (and, between them, a commit that could make the two disagree).
    public nonisolated func jobWithReason(id: String) throws -> (Job, WaitReason) {
        let (job, reason, failedNodes) = try readers.read { db in try jobAndReason(db, id: id) }
        return (job, Self.withStderr(reason, failedNodes))
    }

    /// The job's row, converted, its reason, and for `JobPreparationTaskFailed` the failed nodes with
    /// their preparation folders, in the caller's read transaction.
    private nonisolated func jobAndReason(_ db: Connection, id: String) throws -> (Job, WaitReason, [(FailedPreparation, String?)]) {
        let row = try jobRow(db, id)
        let (reason, failedNodes) = try jobReason(db, job: row)
        return (try Engine.job(row), reason, failedNodes)
    }

    /// `render(jobWithReason(id:))`, or the value `render` gave for the same `variant` of this job
    /// when nothing was committed since (`ReaderPool.remembering`): a job polled by many clients is
    /// read and rendered once per change. `variant` names everything the rendering depends on besides
    /// the job (the base URL, `$select`); `render` answers its value and the bytes it holds. A reason
    /// that carries stderr tails is read from files, which no commit versions, so it is never kept.
    public nonisolated func rememberedJob<T: Sendable>(
        id: String, variant: String, render: (Job, WaitReason) throws -> (value: T, bytes: Int)
    ) throws -> T {
        try readers.remembering("job\u{0}\(id)\u{0}\(variant)") { db in try jobAndReason(db, id: id) } finish: { job, reason, failedNodes in
            let (value, bytes) = try render(job, Self.withStderr(reason, failedNodes))
            return (value, failedNodes.isEmpty ? bytes : nil)
        }
    }

    /// `reason` with the stderr tails of the failed preparations, read outside the read transaction:
    /// files can be slow, and the snapshot is not needed for them.
    private nonisolated static func withStderr(_ reason: WaitReason, _ failedNodes: [(FailedPreparation, String?)]) -> WaitReason {
        guard !failedNodes.isEmpty else { return reason }
        var result = reason
        result.failedPreparations = failedNodes.map { failure, directory in
            var failure = failure
            failure.stderrTail = directory.flatMap { tail(of: ($0 as NSString).appendingPathComponent("stderr.txt")) }
            return failure
        }
        return result
    }

    /// The job's reason, and for `JobPreparationTaskFailed` the failed nodes with their preparation folders.
    private nonisolated func jobReason(_ db: Connection, job: Row) throws -> (WaitReason, [(FailedPreparation, String?)]) {
        if let blocked = try blockage(db, job: job) { return blocked }
        let jobPK = try job.int64("pk", table: "job")
        func count(_ bucket: String) throws -> Int {
            // A bucket with no row holds no tasks (the triggers delete rows that reach zero).
            try db.scalar("SELECT tasks FROM task_count WHERE job_pk = ? AND bucket = ?", [jobPK, bucket]).int ?? 0
        }
        let active = try count("active")
        let running = try count("running")
        let state = try job.state(JobState.self, table: "job")
        switch state {
        case .completed:
            return (WaitReason(state: .notWaiting, code: "JobCompleted", message: "The job has completed (\(try job.optionalText("terminate_reason", table: "job") ?? "no reason recorded"))"), [])
        case .deleting:
            return (WaitReason(state: .notWaiting, code: "JobBeingDeleted", message: "The job is being deleted"), [])
        case .active, .disabling, .disabled, .enabling, .terminating:
            break
        }
        if active == 0 && running == 0 {
            return (WaitReason(state: .notWaiting, code: "NoActiveTasks", message: "No task of the job is active or running"), [])
        }
        if let deferred = try deferredLaunch(db, "job_pk = ?", [jobPK]) {
            return (WaitReason(state: .waiting, code: "LaunchDeferred",
                message: "\(running) task(s) running or assigned, but commands of this job have not started: \(deferred)"), [])
        }
        if active == 0 {
            return (WaitReason(state: .waiting, code: "TasksRunning", message: "\(running) task(s) running, none waiting to start"), [])
        }
        switch state {
        case .terminating, .enabling:
            return (WaitReason(state: .waiting, code: state == .enabling ? "JobEnabling" : "JobTerminating",
                message: "The job is \(state.rawValue)"), [])
        case .active, .disabling, .disabled, .completed, .deleting:
            break
        }
        let cap = job["max_parallel_tasks"].int ?? -1
        if cap > 0 && running >= cap {
            return (WaitReason(state: .waiting, code: "MaxParallelTasksReached",
                message: "\(running) task(s) running, the job's maxParallelTasks (\(cap)); \(active) active task(s) start as they finish"), [])
        }
        // Nodes that can take the job's tasks now (the dispatcher's own conditions) and their free slots.
        let ready = try db.query(
            """
            SELECT p.task_slots_per_node - \(Engine.usedSlotsOfNode) AS free
            FROM node n JOIN pool p ON p.pk = n.pool_pk
            WHERE p.id = ? COLLATE NOCASE AND p.deleted_time IS NULL AND p.state = 'active' AND n.removed_time IS NULL
              AND n.state IN ('idle', 'running') AND n.scheduling_state = 'enabled'
              AND NOT EXISTS (SELECT 1 FROM job_node r WHERE r.job_pk = ? AND r.node_pk = n.pk AND r.eligible = 0)
            """, [job.text("pool_id", table: "job"), jobPK])
        if ready.isEmpty {
            return (WaitReason(state: .waiting, code: "NodesNotReady",
                message: "No node of pool \(try job.text("pool_id", table: "job")) is ready yet (being created, starting, running its start task or rebooting)"), [])
        }
        if try ready.allSatisfy({ try $0.int("free", table: "node") <= 0 }) {
            return (WaitReason(state: .waiting, code: "NoFreeSlots",
                message: "Every slot on the pool's ready nodes is taken; \(active) active task(s) start as slots free up"), [])
        }
        return (WaitReason(state: .waiting, code: "Queued",
            message: "\(active) active task(s) start as free slots, dependencies and job priority allow"), [])
    }

    /// The task's reason: its job's blockage first, then its own.
    private nonisolated func taskReason(_ db: Connection, job: Row, taskPK: Int64) throws -> (WaitReason, [(FailedPreparation, String?)]) {
        guard let task = try db.query(
            "SELECT t.*, n.id AS node_id FROM task t LEFT JOIN node n ON n.pk = t.node_pk WHERE t.pk = ?", [taskPK]).first
        else { throw BookendError.notFound("TaskNotFound", "The task") }
        switch try task.state(TaskState.self, table: "task") {
        case .completed:
            return (WaitReason(state: .notWaiting, code: "TaskCompleted", message: "The task has completed (\(try task.text("result", table: "task")))"), [])
        case .running:
            let node = try task.text("node_id", table: "task")
            if let deferred = try deferredLaunch(db, "task_pk = ? AND kind = 'task'", [taskPK]) {
                return (WaitReason(state: .waiting, code: "LaunchDeferred",
                    message: "The task is assigned to node \(node) but its command has not started: \(deferred)"), [])
            }
            return (WaitReason(state: .notWaiting, code: "TaskRunning", message: "The task is running on node \(node)"), [])
        case .preparing:
            let node = try task.text("node_id", table: "task")
            if let deferred = try deferredLaunch(db, "job_pk = ? AND node_pk = ? AND kind = 'preparation'", [job.int64("pk", table: "job"), task.int64("node_pk", table: "task")]) {
                return (WaitReason(state: .waiting, code: "LaunchDeferred",
                    message: "The task waits on node \(node) for the job preparation task, whose command has not started: \(deferred)"), [])
            }
            return (WaitReason(state: .waiting, code: "JobPreparationTaskRunning",
                message: "The task waits on node \(node) for the job preparation task to succeed"), [])
        case .active:
            break
        }
        let jobBlockage = try blockage(db, job: job)
        if let jobBlockage, jobBlockage.0.code != "AllTasksBlocked" { return jobBlockage }
        let poolID = try job.text("pool_id", table: "job")
        let slots = try db.scalar("SELECT task_slots_per_node FROM pool WHERE id = ? COLLATE NOCASE AND deleted_time IS NULL", [poolID]).int
        let needed = try task.int("required_slots", table: "task")
        if let slots, needed > slots {
            return (WaitReason(state: .blocked, code: "RequiredSlotsExceedTaskSlotsPerNode",
                message: "The task needs \(needed) slots but the nodes of pool \(poolID) have \(slots) (taskSlotsPerNode): it can never be scheduled"), [])
        }
        let dependencies = try dependencyReason(db, jobPK: job.int64("pk", table: "job"), taskPK: taskPK)
        if let dependencies, dependencies.state == .blocked { return (dependencies, []) }
        if jobBlockage != nil {
            return (WaitReason(state: .blocked, code: "TaskDependencyBlocked",
                message: "The task's dependencies wait on each other in a cycle (or on tasks that do): none can ever run"), [])
        }
        if let dependencies { return (dependencies, []) }
        return try jobReason(db, job: job)
    }

    /// Why the launch of the `starting` executions matching `condition` is held back, when the engine
    /// deferred one for want of the machine's resources (`deferLaunches`): what it lacks, since when,
    /// how often it was tried. Nil when none is deferred.
    private nonisolated func deferredLaunch(_ db: Connection, _ condition: String, _ arguments: [any SQLiteBindable]) throws -> String? {
        guard !deferredLaunches.isEmpty else { return nil }
        let starting = try db.query("SELECT pk FROM execution WHERE state = 'starting' AND \(condition)", arguments)
        let entries = try starting.compactMap { try deferredLaunches.entry($0.int64("pk", table: "execution")) }
        guard let first = entries.min(by: { $0.since < $1.since }) else { return nil }
        let tries = entries.map(\.attempts).max() ?? first.attempts
        return "it lacks a resource (\(first.reason)) since \(Timestamp.string(first.since)); tried \(tries) time(s), again every 1 to 30 s until it starts"
    }

    /// The job's row in `job_blockage`, if any, as a blocked reason.
    private nonisolated func blockage(_ db: Connection, job: Row) throws -> (WaitReason, [(FailedPreparation, String?)])? {
        guard let row = try db.query("SELECT code, message FROM job_blockage WHERE job_id = ?", [job.text("id", table: "job")]).first,
              let code = row["code"].string
        else { return nil }
        let reason = WaitReason(state: .blocked, code: code, message: row["message"].string ?? code)
        guard code == "JobPreparationTaskFailed" else { return (reason, []) }
        let failed = try db.query(
            """
            SELECT n.id, r.prep_exit_code, r.prep_failure_info, (SELECT e.task_dir FROM execution e WHERE e.job_pk = r.job_pk
                AND e.node_pk = r.node_pk AND e.kind = 'preparation' ORDER BY e.pk DESC LIMIT 1) AS task_dir
            FROM job_node r JOIN node n ON n.pk = r.node_pk JOIN pool p ON p.pk = n.pool_pk
            WHERE r.job_pk = ? AND r.eligible = 0 AND p.id = ? COLLATE NOCASE AND p.deleted_time IS NULL
              AND n.removed_time IS NULL AND n.state <> 'leavingpool'
            ORDER BY n.id
            """, [job["pk"], job.text("pool_id", table: "job")])
        return (reason, try failed.map { row in
            (FailedPreparation(nodeId: try row.text("id", table: "node"), exitCode: row["prep_exit_code"].int,
                failureInfo: try row.json(FailureInfo.self, "prep_failure_info", table: "job_node"), stderrTail: nil), row["task_dir"].string)
        })
    }

    /// What the task's dependencies hold it back by: blocked when one failed without satisfying its
    /// dependants, names no task, or (through active dependencies) depends on such a task; waiting when
    /// one has not completed yet; nil when all are satisfied. The order matches `task_blockage`.
    private nonisolated func dependencyReason(_ db: Connection, jobPK: Int64, taskPK: Int64) throws -> WaitReason? {
        struct Dependency { var id: String; var pk: Int64?; var state: TaskState?; var satisfies: Int? }
        func dependencies(of pk: Int64) throws -> [Dependency] {
            try db.query(
                """
                SELECT d.depends_on_id, u.pk, u.state, u.satisfies_dependents FROM task_dependency d
                LEFT JOIN task u ON u.job_pk = ? AND u.id = d.depends_on_id WHERE d.task_pk = ? ORDER BY d.depends_on_id
                """, [jobPK, pk]).map {
                Dependency(id: try $0.text("depends_on_id", table: "task_dependency"), pk: $0[1].int64,
                    state: try $0.optionalState(TaskState.self, "state", table: "task"), satisfies: $0[3].int)
            }
        }
        func isStuck(_ dependency: Dependency) -> Bool { dependency.pk == nil || dependency.satisfies == 0 }
        let direct = try dependencies(of: taskPK)
        if let failed = direct.first(where: { $0.pk != nil && $0.satisfies == 0 }) {
            return WaitReason(state: .blocked, code: "TaskDependencyFailed",
                message: "The task depends on \(failed.id), which failed without satisfying its dependants", dependencyId: failed.id)
        }
        if let missing = direct.first(where: { $0.pk == nil }) {
            return WaitReason(state: .blocked, code: "TaskDependencyNotFound",
                message: "The task depends on \(missing.id), which does not exist in the job", dependencyId: missing.id)
        }
        // An active dependency that itself (transitively) waits on a stuck task can never run either.
        // Bounded so that a pathological graph costs a bounded read; past the bound the task reads as waiting.
        for dependency in direct where dependency.state == .active {
            var seen: Set<Int64> = [taskPK]
            var queue = dependency.pk.map { [$0] } ?? []
            while let next = queue.popLast(), seen.count < 10_000 {
                guard seen.insert(next).inserted else { continue }
                let further = try dependencies(of: next)
                if further.contains(where: isStuck) {
                    return WaitReason(state: .blocked, code: "TaskDependencyBlocked",
                        message: "The task depends on \(dependency.id), which can never run", dependencyId: dependency.id)
                }
                queue += further.filter { $0.state == .active }.compactMap(\.pk)
            }
        }
        if let pending = direct.first(where: { $0.satisfies != 1 }) {
            return WaitReason(state: .waiting, code: "WaitingForDependencies",
                message: "The task waits for \(pending.id) (\(pending.state?.rawValue ?? "not added yet")) to complete", dependencyId: pending.id)
        }
        return nil
    }

    /// The last lines of a file, at most 10 lines and 2 KiB; nil when it cannot be read. The link
    /// itself is never followed: a task must not make the engine read another file for it.
    nonisolated static func tail(of path: String) -> String? {
        let descriptor = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { return nil }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        let size = UInt64(status.st_size)
        let limit: UInt64 = 2048
        guard (try? handle.seek(toOffset: size > limit ? size - limit : UInt64(0))) != nil,
              let data = try? handle.read(upToCount: Int(limit))
        else { return nil }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if size > limit, !lines.isEmpty { lines.removeFirst() }  // a partial first line says nothing
        while lines.last?.isEmpty == true { lines.removeLast() }
        return lines.suffix(10).joined(separator: "\n")
    }
}
