import Foundation
import SQLite
import Logging
import Supervisor

extension Engine {
    /// What an ended process means, given its exit file (if the shim wrote one) and why Bookend killed it.
    func outcome(for execution: ExecutionRecord, status: ExitStatus?) -> Outcome {
        let code = status?.exitCode
        if let reason = execution.killReason {
            guard var ended = reason.endedReason else { return .interrupted }
            // Ended because its job ended (not by a terminate of its own): the job's reason says why
            // (`MaxWallClockTimeExpiry`, `AllTasksComplete`, `TaskFailed`, …), not `UserTerminate`.
            if reason == .terminate, let jobEnd = jobEndReason(execution.jobPK) { ended = jobEnd }
            return .ended(reason: ended, exitCode: code ?? 137)
        }
        if let code, let overran = overranItsWallClock(execution) {
            // Ended on its own but after its wall clock ran out, while nobody was there to end it
            // (the daemon was down or stopped): as if it had been ended then, not a success.
            return .ended(reason: overran, exitCode: code)
        }
        switch status {
        case .exited(let exitCode)?: return .exited(exitCode)
        case .signaled(let signal)?: return .exited(128 + signal)
        case .launchFailed(let stage, let error)?:
            return .preProcessing(FailureInfo(code: stage == "exec" && error == ENOENT ? "CommandProgramNotFound" : "CommandLaunchFailed",
                message: "Starting the command failed at \(stage): \(String(cString: strerror(error)))"))
        case nil:
            // Our own shim that could not write its exit file says so through its exit status: the
            // command ran, and how it ended is unknown. Running it again could repeat its effects.
            if let identity = execution.identity, let error = watcher.takeExitFileError(identity) {
                let directory = execution.statusDirectory
                return .fault(FailureInfo(category: "servererror", code: "ExitStatusNotRecorded",
                    message: "The command ended, but its exit status could not be written to \(directory)/exit (\(String(cString: strerror(error)))); it is not run again",
                    details: [NameValuePair(name: "Errno", value: "\(error)")]))
            }
            // The shim vanished without writing a status and nobody here killed it: the node's process
            // tree was lost (reboot of the machine, kill of the whole session), or an adopted shim could
            // not write its exit file. Batch treats that like a node failure: the work runs again, but
            // only so many times, so that a fault that recurs cannot run a command without end.
            let lost = lostExecutions(like: execution)
            if lost >= configuration.maxLostExecutionRequeues {
                return .fault(FailureInfo(category: "servererror", code: "ExecutionLostTooOften",
                    message: "The process vanished without an exit status \(lost + 1) times (the limit is \(configuration.maxLostExecutionRequeues) requeues); it is not run again",
                    details: [NameValuePair(name: "LostCount", value: "\(lost + 1)")]))
            }
            return .interrupted
        }
    }

    /// `MaxWallClockTimeExpiry` when `execution` has a wall clock and its exit file was written after
    /// it ran out (the file's modification time is when the command ended), else nil. Only possible
    /// when the engine could not end it in time: it was down, stopped, or its passes fell behind.
    func overranItsWallClock(_ execution: ExecutionRecord) -> String? {
        guard let text = execution.deadline, let deadline = Timestamp.date(text), Date() > deadline else { return nil }
        var info = stat()
        guard stat(execution.statusDirectory + "/exit", &info) == 0 else { return nil }
        let written = Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec) + TimeInterval(info.st_mtim.tv_nsec) / 1e9)
        return written > deadline ? KillReason.timeout.endedReason : nil
    }

    /// The terminate reason of a job that is ending or has ended, or nil while it is live (then a
    /// `terminate` kill was a terminate of the task itself).
    private func jobEndReason(_ jobPK: Int64?) -> String? {
        guard let jobPK, let row = try? db.query("SELECT state, terminate_reason FROM job WHERE pk = ?", [jobPK]).first,
            let state = row["state"].string, state == JobState.terminating.rawValue || state == JobState.completed.rawValue
        else { return nil }
        return row["terminate_reason"].string
    }

    /// How many earlier executions of the same task (or of the same preparation, release or start
    /// task on the same node) were lost: interrupted without a kill Bookend decided.
    func lostExecutions(like execution: ExecutionRecord) -> Int {
        let lost = "interrupted = 1 AND kill_reason IS NULL AND pk <> ?"
        let count = execution.kind == .task
            ? try? db.scalar("SELECT count(*) FROM execution WHERE task_pk = ? AND \(lost)", [execution.taskPK, execution.pk])
            : try? db.scalar("SELECT count(*) FROM execution WHERE kind = ? AND node_pk = ? AND job_pk IS ? AND \(lost)",
                [execution.kind.rawValue, execution.nodePK, execution.jobPK, execution.pk])
        return count?.int ?? 0
    }

    /// Completes executions whose launch could not be recorded (see `abandonSpawned`), once a
    /// transaction can commit again.
    func recordUnrecordedOutcomes() throws {
        guard !unrecordedOutcomes.isEmpty else { return }
        let pending = unrecordedOutcomes
        let now = Date()
        let launches: [Int64] = try transaction { db in
            var launches: [Int64] = []
            for (pk, outcome) in pending.sorted(by: { $0.key < $1.key }) {
                guard let execution = try ExecutionRecord.read(db, pk: pk) else { continue }
                launches += try finishExecution(db, execution, outcome, now: now)
            }
            return launches
        }
        for pk in pending.keys { unrecordedOutcomes[pk] = nil }
        launch(launches)
    }

    /// A node's root and the folders beneath it, created without following links. The engine owns them
    /// all (mode 0755: task accounts pass through to their own folders) except `shared/`, which every
    /// task on the node may write to, whichever account it runs as (1777, as on Azure). `startup/` is
    /// given to the start task's account when it runs.
    func makeNodeFolders(_ root: String) throws {
        let parent = Paths.parent(of: root)
        let base = try NodeFolders.openTrusted(parent)
        defer { close(base) }
        let engineOwned = NodeFolders.Access(mode: 0o755, owner: nil)
        let node = try NodeFolders.descend(base, (root as NSString).lastPathComponent, access: engineOwned, path: root)
        defer { close(node) }
        for folder in ["startup", "workitems", "volatile", "fsmounts", "applications"] {
            close(try NodeFolders.descend(node, folder, access: engineOwned, path: root + "/" + folder))
        }
        close(try NodeFolders.descend(node, "shared", access: NodeFolders.Access(mode: 0o1777, owner: nil), path: root + "/shared"))
    }

    /// Node lifecycle (inside the apply transaction): creating → starting → (start task) → idle;
    /// rebooting; leaving the pool. Folders of booting nodes were made before the transaction.
    func advanceNodes(_ db: Connection, now: Date, into effects: inout PassEffects) throws {
        let nowText = Timestamp.string(now)
        // Executions on nodes that reboot or leave end first (per the reboot option).
        for row in try db.query("SELECT pk, state, reboot_option, deallocation_option FROM node WHERE state IN (?, ?) AND removed_time IS NULL",
            [NodeState.rebooting.rawValue, NodeState.leavingpool.rawValue]) {
            let nodePK = try row.int64("pk", table: "node")
            let leaving = try row.state(NodeState.self, table: "node") == .leavingpool
            let option = try row.optionalState(NodeRebootOption.self, leaving ? "deallocation_option" : "reboot_option", table: "node") ?? .requeue
            if let taskReason = KillPlan.taskReason(option) {
                try ExecutionStore.decideKill(db, taskReason, where: "node_pk = ? AND kind = ?", [nodePK, ExecutionKind.task.rawValue])
                try ExecutionStore.decideKill(db, .requeue, where: "node_pk = ? AND kind <> ?", [nodePK, ExecutionKind.task.rawValue])
            }
            if try db.scalar("SELECT count(*) FROM execution WHERE node_pk = ? AND state <> 'completed' AND kind <> 'start'", [nodePK]).int ?? 0 > 0 {
                continue
            }
            // Start tasks do not hold a node back: they are simply interrupted.
            try ExecutionStore.decideKill(db, .requeue, where: "node_pk = ? AND kind = ?", [nodePK, ExecutionKind.start.rawValue])
            for task in try db.query(
                "SELECT t.pk, t.id, j.pk AS job_pk, j.pool_id, j.id AS job_id FROM task t JOIN job j ON j.pk = t.job_pk WHERE t.node_pk = ? AND t.state = ?",
                [nodePK, TaskState.preparing.rawValue]) {
                let key = TaskKey(pk: try task.int64("pk", table: "task"), id: try task.text("id", table: "task"),
                    jobID: try task.text("job_id", table: "job"), poolID: try task.text("pool_id", table: "job"))
                try TaskStore.transition(db, key, from: .preparing, .requeue, now: nowText, log: &pendingEvents)
            }
            // A node that drains stays for the releases it owes to jobs ending now (R3): their end
            // killed its last tasks, and leaving at that moment skipped the release of a node that
            // prepared. A node that leaves at once (requeue, terminate) skips them.
            if leaving, KillPlan.taskReason(option) == nil, try JobNodeStore.owesReleaseToAnEndingJob(db, nodePK: nodePK) {
                continue
            }
            if leaving {
                if try db.scalar("SELECT count(*) FROM execution WHERE node_pk = ? AND state <> 'completed'", [nodePK]).int ?? 0 == 0 {
                    try NodeStore.transition(db, pk: nodePK, on: .removed, now: nowText, log: &pendingEvents)
                    if let root = try db.scalar("SELECT root_dir FROM node WHERE pk = ? AND provider = 'local'", [nodePK]).string {
                        effects.removedNodeRoots.append(root)
                    }
                }
            } else {
                try NodeStore.transition(db, pk: nodePK, on: .rebooted, now: nowText, log: &pendingEvents)
            }
        }
        // Boot nodes: count the boot, start the start task.
        for node in try db.query(
            "SELECT n.pk, n.root_dir, p.start_task FROM node n JOIN pool p ON p.pk = n.pool_pk WHERE n.state = 'creating' AND n.removed_time IS NULL"
            // A Slurm node boots once its allocation runs (`followSlurmAllocations` stored its host).
            + " AND (n.provider = 'local' OR n.slurm_host IS NOT NULL)") {
            let nodePK = try node.int64("pk", table: "node")
            let root = try node.text("root_dir", table: "node")
            let startTask = try node.json(StartTask.self, "start_task", table: "pool")
            try NodeStore.transition(db, pk: nodePK, on: .boot, now: nowText, log: &pendingEvents)
            guard let start = startTask else {
                try NodeStore.transition(db, pk: nodePK, on: .ready, now: nowText, log: &pendingEvents)
                continue
            }
            effects.launches.append(try beginExecution(db, kind: ExecutionKind.start.rawValue, nodePK: nodePK, jobPK: nil, taskPK: nil,
                attempt: 1, taskDirectory: (root as NSString).appendingPathComponent("startup"), wallClockMilliseconds: nil,
                retryCount: 0, requeueCount: 0, now: now))
            try NodeStore.transition(db, pk: nodePK, on: start.waitForSuccess == false ? .ready : .awaitStartTask, now: nowText,
                log: &pendingEvents)
        }
    }

    /// Pools (inside the apply transaction): resizing → steady once every node has booted; deleting →
    /// gone once every node left.
    func advancePools(_ db: Connection, now: Date) throws {
        let nowText = Timestamp.string(now)
        for pool in try db.query("SELECT * FROM pool WHERE deleted_time IS NULL AND (allocation_state = ? OR state = ?)",
            [AllocationState.resizing.rawValue, PoolState.deleting.rawValue]) {
            let pk = try pool.int64("pk", table: "pool")
            let id = try pool.text("id", table: "pool")
            let state = try pool.state(PoolState.self, table: "pool")
            let allocation = try pool.state(AllocationState.self, "allocation_state", table: "pool")
            switch state {
            case .deleting:
                if try db.scalar("SELECT count(*) FROM node WHERE pool_pk = ? AND removed_time IS NULL", [pk]).int ?? 0 == 0 {
                    try PoolStore.markDeleted(db, pk: pk, id: id, now: nowText, log: &pendingEvents)
                }
            case .active:
                if try db.scalar("SELECT count(*) FROM node WHERE pool_pk = ? AND removed_time IS NULL AND state IN (?, ?)",
                    [pk, NodeState.creating.rawValue, NodeState.leavingpool.rawValue]).int ?? 0 == 0 {
                    try PoolStore.settle(db, pk: pk, id: id, from: allocation, now: nowText, log: &pendingEvents)
                }
            }
        }
    }

    /// The active jobs this pass may end (`JobEndDecision` decides): those whose wall clock has run
    /// out by `?1` (the pass's clock, a stored timestamp), within a second's margin and every one
    /// whose creation time SQLite cannot read, and those that end when all their tasks complete and
    /// have none active or running. Why not every active job: a pass read and decoded each one
    /// (`SELECT *`, specs included) to find almost always nothing to do, ten times a second, so
    /// 10,000 active jobs held an idle daemon at half a core and each new job took 65 ms.
    static let activeJobsThatMayEnd = """
        SELECT pk, id, pool_id, creation_time, max_wall_clock_time_ms, on_all_tasks_complete FROM job
        WHERE state = 'active' AND (
            (max_wall_clock_time_ms IS NOT NULL AND (julianday(creation_time) IS NULL
                OR julianday(creation_time) + (max_wall_clock_time_ms - 1000) / 86400000.0 <= julianday(?1)))
            OR (on_all_tasks_complete = 'terminatejob' AND NOT EXISTS (
                SELECT 1 FROM task_count c WHERE c.job_pk = job.pk AND c.bucket IN ('active', 'running') AND c.tasks > 0)))
        """

    /// Job lifecycle (inside the apply transaction): wall-clock expiry, all-tasks-complete, disabling,
    /// enabling, and termination with its release tasks, then completion or deletion.
    func advanceJobs(_ db: Connection, now: Date, into effects: inout PassEffects) throws {
        let nowText = Timestamp.string(now)
        for job in try db.query(Engine.activeJobsThatMayEnd, [nowText]) {
            let reason = try JobEndDecision.terminateReason(
                created: Timestamp.date(try job.text("creation_time", table: "job")),
                maxWallClockMilliseconds: try job.optionalInt64("max_wall_clock_time_ms", table: "job"),
                terminateWhenAllComplete: try job.optionalText("on_all_tasks_complete", table: "job") == "terminatejob",
                unfinishedTasks: {
                    try db.scalar("SELECT coalesce(sum(tasks), 0) FROM task_count WHERE job_pk = ? AND bucket IN ('active', 'running')",
                        [job["pk"]]).int ?? 0
                }, now: now)
            if let reason {
                try JobStore.transition(db, JobKey(job), from: .active, .terminate(reason: reason), now: nowText, log: &pendingEvents)
            }
        }
        for job in try db.query("SELECT * FROM job WHERE state = ?", [JobState.enabling.rawValue]) {
            try JobStore.transition(db, JobKey(job), from: .enabling, .resume, now: nowText, log: &pendingEvents)
        }
        for job in try db.query("SELECT * FROM job WHERE state = ?", [JobState.disabling.rawValue]) {
            let jobPK = try job.int64("pk", table: "job")
            let option = try job.optionalState(DisableJobOption.self, "disable_tasks", table: "job") ?? .requeue
            if let reason = KillPlan.disableReason(option) {
                try ExecutionStore.decideKill(db, reason, where: "job_pk = ? AND kind = ?", [jobPK, ExecutionKind.task.rawValue])
            }
            try returnPreparingTasks(db, job, option: option, now: nowText)
            if try db.scalar("SELECT count(*) FROM task WHERE job_pk = ? AND state IN (?, ?)",
                [jobPK, TaskState.preparing.rawValue, TaskState.running.rawValue]).int ?? 0 == 0 {
                try JobStore.transition(db, JobKey(job), from: .disabling, .tasksStopped, now: nowText, log: &pendingEvents)
            }
        }
        for job in try db.query("SELECT * FROM job WHERE state IN (?, ?)", [JobState.terminating.rawValue, JobState.deleting.rawValue]) {
            // Each ending job in a savepoint of its own, as in dispatch.
            try step("ending job \((try? job.text("id", table: "job")) ?? "?")", db, &effects) { try endJob(db, job, now: now, into: &$0) }
        }
    }

    /// One terminating or deleting job: its tasks and preparations end (R4), then releases run once on
    /// exactly the nodes that prepared (R3, R6), then the job completes or goes.
    private func endJob(_ db: Connection, _ job: Row, now: Date, into effects: inout PassEffects) throws {
        let nowText = Timestamp.string(now)
        let jobPK = try job.int64("pk", table: "job")
        let jobID = try job.text("id", table: "job")
        let poolID = try job.text("pool_id", table: "job")
        let state = try job.state(JobState.self, table: "job")
        let deleting = state == .deleting
        // A stored release task that does not decode stops here, not as "no release owed".
        let releaseTask = try job.json(JobReleaseTask.self, "job_release_task", table: "job")
        // R4: running tasks and preparation are ended; preparing tasks go back to active.
        try returnPreparingTasks(db, job, option: nil, now: nowText)
        try ExecutionStore.decideKill(db, KillPlan.jobEndReason(deleting: deleting), where: "job_pk = ? AND kind IN (?, ?)",
            [jobPK, ExecutionKind.task.rawValue, ExecutionKind.preparation.rawValue])
        if try db.scalar("SELECT count(*) FROM execution WHERE job_pk = ? AND kind IN ('task', 'preparation') AND state <> 'completed'", [jobPK]).int ?? 0 > 0 {
            return
        }
        if let release = releaseTask {
            try JobNodeStore.oweReleases(db, jobPK: jobPK)
            let wall = release.maxWallClockTime.flatMap { try? ISODuration.parse($0) } ?? Engine.releaseWallClockCap
            let records = try db.query(
                """
                SELECT r.job_pk, r.node_pk, r.prep_state, r.release_state, n.root_dir, n.state, n.deallocation_option, n.id AS node_id
                FROM job_node r JOIN node n ON n.pk = r.node_pk
                WHERE r.job_pk = ? AND r.release_state = 'pending'
                """, [jobPK])
            var roots: [Int64: String] = [:]
            var nodeIDs: [Int64: String] = [:]
            let pending = try records.map { row in
                let nodePK = try row.int64("node_pk", table: "job_node")
                roots[nodePK] = try row.text("root_dir", table: "node")
                nodeIDs[nodePK] = try row.text("node_id", table: "node")
                let phase: JobNodePhase
                do {
                    phase = try JobNodePhase(preparation: row.state(PreparationState.self, "prep_state", table: "job_node"),
                        release: row.optionalState(ReleaseState.self, "release_state", table: "job_node"))
                } catch let error as BookendError {
                    throw row.corrupt("job_node", "prep_state, release_state", error.message)
                }
                let option = try row.optionalState(NodeRebootOption.self, "deallocation_option", table: "node") ?? .requeue
                return ReleasePlan.NodeRecord(nodePK: nodePK, phase: phase, node: try row.state(NodeState.self, table: "node"),
                    drains: KillPlan.taskReason(option) == nil)
            }
            for nodePK in ReleasePlan.starts(pending) {
                try JobNodeStore.startRelease(db, JobNodeKey(jobPK: jobPK, nodePK: nodePK, jobID: jobID, poolID: poolID, nodeID: nodeIDs[nodePK]),
                    now: nowText, log: &pendingEvents)
                guard let root = roots[nodePK] else { continue }  // starts() names only the nodes read
                let directory = (root as NSString).appendingPathComponent("workitems/\(jobID)/job-1/\(release.id ?? "jobrelease")")
                let attempt = (try db.scalar("SELECT count(*) FROM execution WHERE job_pk = ? AND node_pk = ? AND kind = 'release'", [jobPK, nodePK]).int ?? 0) + 1
                effects.launches.append(try beginExecution(db, kind: ExecutionKind.release.rawValue, nodePK: nodePK, jobPK: jobPK, taskPK: nil,
                    attempt: attempt, taskDirectory: directory, wallClockMilliseconds: min(wall, Engine.releaseWallClockCap),
                    retryCount: 0, requeueCount: 0, now: now))
            }
            CrashPoint.hit("release.after-begin")
        }
        // A node that left the pool is skipped (R3): a release owed or running there when it went was
        // put back to pending by its removal and can never run, and waiting for it kept the job
        // terminating (or deleting) for ever.
        let phases = try db.query(
            "SELECT r.* FROM job_node r JOIN node n ON n.pk = r.node_pk WHERE r.job_pk = ? AND n.removed_time IS NULL", [jobPK])
            .map { try JobNodeRecord($0).phase }
        if ReleasePlan.waits(phases) { return }
        if deleting {
            // A job of many tasks goes a chunk of tasks per pass: deleting 200,000 task rows (with
            // their executions, by cascade) in one statement held the pass, and every exit, launch
            // and request waiting on the engine's queue, for about four seconds. The job stays
            // `deleting` until its last task is gone; a crash in between leaves it so, and the next
            // start goes on.
            if try JobStore.deleteTasks(db, jobPK: jobPK, limit: Engine.jobDeletionChunk) == Engine.jobDeletionChunk {
                effects.deletingMore = true
                return
            }
            // Where the job's folder may be: the nodes its remaining executions ran on (its task
            // executions may have gone with an earlier chunk) and every node still in a pool. No
            // other job can own `workitems/<id>` while this one is deleting (its id is taken).
            let roots = try db.query(
                """
                SELECT DISTINCT n.root_dir FROM node n
                WHERE n.pk IN (SELECT node_pk FROM execution WHERE job_pk = ?) OR n.removed_time IS NULL
                """, [jobPK])
                .map { try $0.text("root_dir", table: "node") }
            try JobStore.delete(db, pk: jobPK)
            try record(db, "job.deleted", pool: poolID, job: jobID, from: "deleting", now: nowText)
            effects.deletedJobs.append((jobID, roots))
        } else {
            try JobStore.transition(db, JobKey(job), from: state, .complete, now: nowText, log: &pendingEvents)
        }
    }

    /// The job's tasks that wait for a preparation on their node. When the job ends (`option` nil, R4)
    /// they go back to `active`. When it is disabled a preparing task counts as running (§2.12), so it
    /// goes as a running one does (§4.2): `requeue` puts it back to `active` with `requeueCount`+1,
    /// `terminate` completes it as failed with `TaskEnded`, and `wait` lets it go back to `active` as it
    /// is (it has not started, and a disabled job starts nothing).
    private func returnPreparingTasks(_ db: Connection, _ job: Row, option: DisableJobOption?, now: String) throws {
        for task in try db.query("SELECT * FROM task WHERE job_pk = ? AND state = ?", [job["pk"], TaskState.preparing.rawValue]) {
            switch option {
            case .requeue?:
                try TaskStore.transition(db, TaskKey(task: task, job: job), from: .preparing, .requeue, now: now, log: &pendingEvents)
            case .terminate?:
                try completeTask(db, task, job: job, result: .ended(reason: KillReason.terminate.endedReason ?? "UserTerminate", exitCode: nil), now: now)
            case .wait?, nil:
                try TaskStore.transition(db, TaskKey(task: task, job: job), from: .preparing, .unassign(reason: nil), now: now, log: &pendingEvents)
            }
        }
    }

    /// The slots node `n` has in use: the SQL expression every read of them shares, summed from
    /// `task_on_node` alone, whose entries hold each task's state and slots. A copy written another
    /// way (`state = 'running' OR …`) would no longer match that partial index and would read one
    /// task row per running task again.
    static let usedSlotsOfNode = """
        coalesce((SELECT sum(t.required_slots) FROM task t WHERE t.node_pk = n.pk AND t.state IN ('preparing', 'running')), 0)
        """

    /// The nodes dispatch may place tasks on, with their free slots (`?`: whether Slurm nodes may
    /// take work). Every pass reads this: a table read per task running on the node made it cost
    /// in proportion to the running work.
    static let nodesTakingTasks = """
        SELECT n.pk, n.pool_pk, n.boot_count, p.task_slots_per_node - \(usedSlotsOfNode) AS free
        FROM node n JOIN pool p ON p.pk = n.pool_pk
        WHERE n.state IN ('idle', 'running') AND n.scheduling_state = 'enabled' AND n.removed_time IS NULL AND p.state = 'active'
            AND (n.provider = 'local' OR ?)
        """

    /// Active jobs on a live pool with at least one active task (the `active` bucket of `task_count`,
    /// kept by triggers), highest priority first.
    static let jobsWithTasksToPlace = """
        SELECT j.*, p.pk AS live_pool_pk, p.node_fill_type FROM job j
        JOIN pool p ON p.id = j.pool_id COLLATE NOCASE AND p.deleted_time IS NULL
        WHERE j.state = 'active' AND EXISTS (SELECT 1 FROM task_count c WHERE c.job_pk = j.pk AND c.bucket = 'active' AND c.tasks > 0)
        ORDER BY j.priority DESC, j.pk
        """

    /// Places active tasks on nodes with free slots (inside the apply transaction): higher job priority
    /// first, then submission order; preparation runs first on a node that has not prepared for the job.
    func dispatch(_ db: Connection, now: Date, into effects: inout PassEffects) throws {
        let candidates = try db.query(Engine.nodesTakingTasks, [slurmAvailable])
        var freeByPool: [Int64: [NodeSlots]] = [:]
        for row in candidates {
            let free = Int(try row.int64("free", table: "node"))
            guard free > 0 else { continue }
            freeByPool[try row.int64("pool_pk", table: "node"), default: []].append(
                NodeSlots(pk: try row.int64("pk", table: "node"), free: free, bootCount: Int(try row.int64("boot_count", table: "node"))))
        }
        guard !freeByPool.isEmpty else { return }
        // Only jobs with an active task: the others have nothing to place, and reading every active
        // job (a daemon keeps thousands that finished their tasks but were never terminated) on every
        // pass with a free slot cost time in proportion to them.
        for job in try db.query(Engine.jobsWithTasksToPlace) {
            // Each job in a savepoint of its own: a job whose rows do not decode is skipped (and logged),
            // not every job behind it.
            let jobName = (try? job.text("id", table: "job")) ?? "?"
            try step("dispatching job \(jobName)", db, &effects) { effects in
                let poolPK = try job.int64("live_pool_pk", table: "pool")
                guard var slots = freeByPool[poolPK], slots.contains(where: { $0.free > 0 }) else { return }
                let jobPK = try job.int64("pk", table: "job")
                let cap = try job.optionalInt64("max_parallel_tasks", table: "job").map(Int.init)
                var running = 0
                if let cap, cap > 0 {
                    running = try db.scalar("SELECT count(*) FROM task WHERE job_pk = ? AND state IN (?, ?)",
                        [jobPK, TaskState.preparing.rawValue, TaskState.running.rawValue]).int ?? 0
                }
                let budget = Placement.budget(freeSlots: slots.reduce(0) { $0 + $1.free }, maxParallelTasks: cap, running: running)
                guard budget > 0 else { return }
                let ineligible = Set(try db.query("SELECT node_pk FROM job_node WHERE job_pk = ? AND eligible = 0", [jobPK])
                    .map { try $0.int64("node_pk", table: "job_node") })
                // Only tasks that fit some node now: otherwise a task needing more slots than any node
                // has (§12.24) would fill the LIMIT and hold back every task queued behind it, forever.
                let largest = Placement.largestFit(slots, ineligible: ineligible)
                guard largest > 0 else { return }
                let tasks = try db.query(
                    """
                    SELECT t.* FROM task t WHERE t.job_pk = ? AND t.state = 'active' AND t.required_slots <= ?
                      AND NOT EXISTS (SELECT 1 FROM task_dependency d WHERE d.task_pk = t.pk AND NOT EXISTS (
                          SELECT 1 FROM task u WHERE u.job_pk = t.job_pk AND u.id = d.depends_on_id AND u.satisfies_dependents = 1))
                    ORDER BY t.is_job_manager DESC, t.pk LIMIT ?
                    """, [jobPK, largest, budget])
                guard !tasks.isEmpty else { return }
                let needs = try tasks.map { Int(try $0.int64("required_slots", table: "task")) }
                // A stored preparation task that does not decode is a corrupt job, never "no preparation".
                let preparationTask = try job.json(JobPreparationTask.self, "job_preparation_task", table: "job")
                let records = preparationTask == nil ? [:] : try preparationRecords(db, jobPK: jobPK)
                let assignments = DispatchPlan.assign(needs, on: &slots, ineligible: ineligible,
                    fill: NodeFill(try job.optionalText("node_fill_type", table: "pool")), budget: budget,
                    preparation: preparationTask.map {
                        DispatchPlan.Preparation(rerunOnNodeRebootAfterSuccess: $0.rerunOnNodeRebootAfterSuccess, waitForSuccess: $0.waitForSuccess)
                    }, records: records)
                for assignment in assignments {
                    effects.launches += try assign(db, tasks[assignment.task], job: job, assignment, preparationTask: preparationTask, now: now)
                    effects.dispatched = true
                }
                freeByPool[poolPK] = slots
            }
        }
    }

    /// The job's (job, node) records with whether a preparation attempt is live on each node.
    private func preparationRecords(_ db: Connection, jobPK: Int64) throws -> [Int64: DispatchPlan.NodeRecord] {
        let live = Set(try db.query("SELECT DISTINCT node_pk FROM execution WHERE job_pk = ? AND kind = 'preparation' AND state <> 'completed'",
            [jobPK]).map { try $0.int64("node_pk", table: "execution") })
        var records: [Int64: DispatchPlan.NodeRecord] = [:]
        for row in try db.query("SELECT * FROM job_node WHERE job_pk = ?", [jobPK]) {
            let record = try JobNodeRecord(row)
            records[record.nodePK] = DispatchPlan.NodeRecord(phase: record.phase, result: record.result, bootCount: record.bootCount,
                liveAttempt: live.contains(record.nodePK))
        }
        return records
    }

    /// Applies one assignment (inside the apply transaction): preparation begins on the node first when
    /// the plan says so (P1–P3, P6, P7), then the task waits for it or starts.
    private func assign(
        _ db: Connection, _ task: Row, job: Row, _ assignment: DispatchPlan.Assignment, preparationTask: JobPreparationTask?, now: Date
    ) throws -> [Int64] {
        let nowText = Timestamp.string(now)
        let nodePK = assignment.node.pk
        var launches: [Int64] = []
        if let start = assignment.preparation, let preparation = preparationTask {
            let jobPK = try job.int64("pk", table: "job")
            let jobID = try job.text("id", table: "job")
            guard let node = try db.query("SELECT pk, id, root_dir FROM node WHERE pk = ?", [nodePK]).first else {
                throw BookendError.internalError("node row pk \(nodePK): gone while assigning")
            }
            let directory = (try node.text("root_dir", table: "node") as NSString).appendingPathComponent(
                "workitems/\(jobID)/job-1/\(preparation.id ?? "jobpreparation")")
            let key = JobNodeKey(jobPK: jobPK, nodePK: nodePK, jobID: jobID, poolID: try job.text("pool_id", table: "job"),
                nodeID: try node.text("id", table: "node"))
            var retryCount = 0
            switch start {
            case .first:
                try JobNodeStore.insert(db, key, bootCount: assignment.node.bootCount, now: nowText, log: &pendingEvents)
            case .rerun(let phase):
                retryCount = try JobNodeStore.read(db, jobPK: jobPK, nodePK: nodePK)?.retryCount ?? 0
                try JobNodeStore.runPreparation(db, key, from: phase, bootCount: assignment.node.bootCount, now: nowText, log: &pendingEvents)
            }
            let attempt = (try db.scalar("SELECT count(*) FROM execution WHERE job_pk = ? AND node_pk = ? AND kind = 'preparation'", [jobPK, nodePK]).int ?? 0) + 1
            let wall = preparation.constraints?.maxWallClockTime.flatMap { try? ISODuration.parse($0) }
            launches.append(try beginExecution(db, kind: ExecutionKind.preparation.rawValue, nodePK: nodePK, jobPK: jobPK, taskPK: nil,
                attempt: attempt, taskDirectory: directory, wallClockMilliseconds: wall, retryCount: retryCount,
                requeueCount: 0, now: now))
        }
        if assignment.taskWaits {
            try TaskStore.transition(db, TaskKey(task: task, job: job), from: task.state(TaskState.self, table: "task"),
                .waitForPreparation(nodePK: nodePK, nodeID: try db.scalar("SELECT id FROM node WHERE pk = ?", [nodePK]).string),
                now: nowText, log: &pendingEvents)
            return launches
        }
        launches.append(try startTask(db, task, job: job, nodePK: nodePK, now: now))
        return launches
    }

    /// Nodes read `running` while any job task, preparation or release executes there, else `idle`
    /// (inside the apply transaction, so it sees what this pass dispatched and collected).
    func updateBusyNodes(_ db: Connection, now: Date) throws {
        let rows = try db.query(
            """
            SELECT n.pk, n.state, EXISTS (SELECT 1 FROM execution e WHERE e.node_pk = n.pk AND e.state <> 'completed' AND e.kind <> 'start') AS busy
            FROM node n WHERE n.state IN ('idle', 'running') AND n.removed_time IS NULL
            """)
        let nowText = Timestamp.string(now)
        for row in rows {
            let busy = try row.int64("busy", table: "node") == 1
            guard busy != (try row.state(NodeState.self, table: "node") == .running) else { continue }
            try NodeStore.transition(db, pk: row.int64("pk", table: "node"), on: busy ? .busy : .free, now: nowText, log: &pendingEvents)
        }
    }

    /// Housekeeping at the end of a pass (Retention.swift): folders whose retention deadline passed,
    /// folders deleted early while free disk is below `minFreeDisk`, and the history of deleted jobs
    /// older than `historyRetention`.
    func enforceRetention() throws {
        let now = Date()
        let nowText = Timestamp.string(now)
        try enforceRetentionDeadlines(now: nowText)
        try relieveDiskPressure(now: nowText)
        try pruneDeletedJobHistory(now: now)
    }
}
