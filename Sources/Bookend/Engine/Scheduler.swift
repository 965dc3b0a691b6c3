import Foundation
import SQLite
import Logging
import Supervisor

extension Engine {
    /// One pass of the scheduling loop. Each step commits its own transactions and spawns processes
    /// only after the rows that describe them have committed.
    func tick(dispatching: Bool = true) {
        guard !stopped || !dispatching else { return }
        do {
            try recordUnrecordedOutcomes()
            try collectExits()
            try signalKills()
            try advanceNodes()
            try advanceJobs()
            if dispatching { try dispatch() }
            try updateBusyNodes()
            try enforceRetention()
        } catch {
            logger.error("scheduler pass failed: \(error)")
        }
    }

    /// Completes executions whose process has ended, from the shim's exit file and the kill reason.
    func collectExits() throws {
        // Notifications only wake the loop; the exit files decide (they also cover adopted processes).
        _ = exits.drain()
        let live = try db.query("SELECT * FROM execution WHERE state = 'running'")
        guard !live.isEmpty else { return }
        var ended: [(Row, Outcome)] = []
        for row in live {
            let identity = ProcessIdentity(pid: Int32(row["pid"].int64 ?? 0), startTime: UInt64(bitPattern: row["pid_start_time"].int64 ?? 0))
            // Liveness first, then the exit file: the shim writes the file before it exits, so a file
            // read after the process was seen gone is final. The other order would take a shim that
            // wrote its file and exited between the two reads for one that vanished, and rerun it.
            let alive = Supervisor.isAlive(identity)
            let status = Supervisor.readStatus(in: row["status_dir"].string ?? "")
            if status == nil, alive {
                // A release task is running right now (a crash here leaves it to the next engine).
                if row["kind"].string == "release" { CrashPoint.hit("release.while-running") }
                continue
            }
            // Ended without an exit file, and the watcher is still reaping it: whether the shim said
            // it could not write the file is known once it has (it wakes the loop then).
            if status == nil, watcher.isWatching(identity) { continue }
            ended.append((row, outcome(for: row, status: status)))
        }
        guard !ended.isEmpty else { return }
        // The exit files are on disk; nothing about them is recorded yet.
        CrashPoint.hit("exits.before-record")
        let now = Date()
        let launches: [Int64] = try transaction { db in
            var launches: [Int64] = []
            for (row, outcome) in ended {
                launches += try finishExecution(db, row, outcome, now: now)
                killEscalations[row["pk"].int64 ?? 0] = nil
            }
            return launches
        }
        CrashPoint.hit("exits.after-commit")
        launch(launches)
    }

    /// What an ended process means, given its exit file (if the shim wrote one) and why Bookend killed it.
    func outcome(for row: Row, status: ExitStatus?) -> Outcome {
        let code = status?.exitCode
        // A stored reason outside KillReason cannot be written (CHECK).
        if let reason = row["kill_reason"].string.flatMap(KillReason.init(rawValue:)) {
            guard let ended = reason.endedReason else { return .interrupted }
            return .ended(reason: ended, exitCode: code ?? 137)
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
            if let pid = row["pid"].int64, let start = row["pid_start_time"].int64,
                let error = watcher.takeExitFileError(ProcessIdentity(pid: Int32(pid), startTime: UInt64(bitPattern: start))) {
                let directory = row["status_dir"].string ?? ""
                return .fault(FailureInfo(category: "servererror", code: "ExitStatusNotRecorded",
                    message: "The command ended, but its exit status could not be written to \(directory)/exit (\(String(cString: strerror(error)))); it is not run again",
                    details: [NameValuePair(name: "Errno", value: "\(error)")]))
            }
            // The shim vanished without writing a status and nobody here killed it: the node's process
            // tree was lost (reboot of the machine, kill of the whole session), or an adopted shim could
            // not write its exit file. Batch treats that like a node failure: the work runs again, but
            // only so many times, so that a fault that recurs cannot run a command without end.
            let lost = lostExecutions(like: row)
            if lost >= configuration.maxLostExecutionRequeues {
                return .fault(FailureInfo(category: "servererror", code: "ExecutionLostTooOften",
                    message: "The process vanished without an exit status \(lost + 1) times (the limit is \(configuration.maxLostExecutionRequeues) requeues); it is not run again",
                    details: [NameValuePair(name: "LostCount", value: "\(lost + 1)")]))
            }
            return .interrupted
        }
    }

    /// How many earlier executions of the same task (or of the same preparation, release or start
    /// task on the same node) were lost: interrupted without a kill Bookend decided.
    func lostExecutions(like row: Row) -> Int {
        let lost = "interrupted = 1 AND kill_reason IS NULL AND pk <> ?"
        let count = row["kind"].string == "task"
            ? try? db.scalar("SELECT count(*) FROM execution WHERE task_pk = ? AND \(lost)", [row["task_pk"], row["pk"]])
            : try? db.scalar("SELECT count(*) FROM execution WHERE kind = ? AND node_pk = ? AND job_pk IS ? AND \(lost)",
                [row["kind"], row["node_pk"], row["job_pk"], row["pk"]])
        return count?.int ?? 0
    }

    /// Completes executions whose launch could not be recorded (see `recordLaunches`), once a
    /// transaction can commit again.
    func recordUnrecordedOutcomes() throws {
        guard !unrecordedOutcomes.isEmpty else { return }
        let pending = unrecordedOutcomes
        let now = Date()
        let launches: [Int64] = try transaction { db in
            var launches: [Int64] = []
            for (pk, outcome) in pending.sorted(by: { $0.key < $1.key }) {
                guard let row = try db.query("SELECT * FROM execution WHERE pk = ?", [pk]).first else { continue }
                launches += try finishExecution(db, row, outcome, now: now)
            }
            return launches
        }
        for pk in pending.keys { unrecordedOutcomes[pk] = nil }
        launch(launches)
    }

    /// Sends SIGTERM to executions Bookend decided to end, then SIGKILL after the grace period.
    /// Executions that never spawned are completed directly.
    func signalKills() throws {
        let now = Engine.now()
        // Wall-clock limits: record the decision first, so a restart finishes what this one started.
        if try db.scalar("SELECT 1 FROM execution WHERE state <> 'completed' AND kill_reason IS NULL AND deadline <= ? LIMIT 1", [now]) != .null {
            try transaction { db in try ExecutionStore.decideKill(db, .timeout, where: "deadline <= ?", [now]) }
            // Decided and durable, not yet signalled.
            CrashPoint.hit("kill.after-decision")
        }
        let rows = try db.query("SELECT * FROM execution WHERE state <> 'completed' AND kill_reason IS NOT NULL")
        guard !rows.isEmpty else { return }
        var unspawned: [Row] = []
        for row in rows {
            let pk = row["pk"].int64 ?? 0
            guard let pid = row["pid"].int64, let start = row["pid_start_time"].int64 else {
                if !downloading.contains(pk) || row["kill_reason"].string != nil { unspawned.append(row) }
                continue
            }
            let identity = ProcessIdentity(pid: Int32(pid), startTime: UInt64(bitPattern: start))
            if let deadline = killEscalations[pk] {
                if ContinuousClock.now >= deadline { _ = Supervisor.signalGroup(identity, SIGKILL) }
            } else {
                killEscalations[pk] = ContinuousClock.now + configuration.killGracePeriod
                _ = Supervisor.signalGroup(identity, SIGTERM)
                CrashPoint.hit("kill.after-signal")
            }
        }
        guard !unspawned.isEmpty else { return }
        let date = Date()
        let launches: [Int64] = try transaction { db in
            var launches: [Int64] = []
            for row in unspawned { launches += try finishExecution(db, row, outcome(for: row, status: nil), now: date) }
            return launches
        }
        launch(launches)
    }

    /// A node's root and the folders beneath it, created without following links. The engine owns them
    /// all (mode 0755: task accounts pass through to their own folders) except `shared/`, which every
    /// task on the node may write to, whichever account it runs as (1777, as on Azure). `startup/` is
    /// given to the start task's account when it runs.
    func makeNodeFolders(_ root: String) throws {
        let parent = (root as NSString).deletingLastPathComponent
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

    /// Node lifecycle: creating → starting → (start task) → idle; rebooting; leaving the pool.
    func advanceNodes() throws {
        let now = Date()
        let nowText = Timestamp.string(now)
        // Executions on nodes that reboot or leave end first (per the reboot option).
        for row in try db.query("SELECT pk, state, reboot_option FROM node WHERE state IN (?, ?) AND removed_time IS NULL",
            [NodeState.rebooting.rawValue, NodeState.leavingpool.rawValue]) {
            let nodePK = try row.int64("pk", table: "node")
            let leaving = try row.state(NodeState.self, table: "node") == .leavingpool
            let option = try row.optionalState(NodeRebootOption.self, "reboot_option", table: "node") ?? .requeue
            try transaction { db in
                // A node leaving its pool always requeues; a reboot ends tasks per its option, and with
                // taskcompletion or retaineddata lets them finish.
                let taskReason: KillReason?
                switch (leaving, option) {
                case (true, _), (false, .requeue): taskReason = .requeue
                case (false, .terminate): taskReason = .terminate
                case (false, .taskcompletion), (false, .retaineddata): taskReason = nil
                }
                if let taskReason {
                    try ExecutionStore.decideKill(db, taskReason, where: "node_pk = ? AND kind = ?", [nodePK, ExecutionKind.task.rawValue])
                    try ExecutionStore.decideKill(db, .requeue, where: "node_pk = ? AND kind <> ?", [nodePK, ExecutionKind.task.rawValue])
                }
                if try db.scalar("SELECT count(*) FROM execution WHERE node_pk = ? AND state <> 'completed' AND kind <> 'start'", [nodePK]).int ?? 0 > 0 {
                    return
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
                if leaving {
                    if try db.scalar("SELECT count(*) FROM execution WHERE node_pk = ? AND state <> 'completed'", [nodePK]).int ?? 0 == 0 {
                        try NodeStore.transition(db, pk: nodePK, on: .removed, now: nowText, log: &pendingEvents)
                    }
                } else {
                    try NodeStore.transition(db, pk: nodePK, on: .rebooted, now: nowText, log: &pendingEvents)
                }
            }
        }
        // Boot nodes: create their folders, count the boot, start the start task.
        let booting = try db.query(
            "SELECT n.*, p.start_task, p.id AS pool_id FROM node n JOIN pool p ON p.pk = n.pool_pk WHERE n.state = 'creating' AND n.removed_time IS NULL")
        var launches: [Int64] = []
        for node in booting {
            let root = node["root_dir"].string ?? ""
            do {
                try makeNodeFolders(root)
            } catch {
                logger.error("cannot prepare the node folder: \(error)")
            }
            let nodePK = try node.int64("pk", table: "node")
            let startTask = try node.json(StartTask.self, "start_task", table: "pool")
            launches += try transaction { db -> [Int64] in
                try NodeStore.transition(db, pk: nodePK, on: .boot, now: nowText, log: &pendingEvents)
                guard let start = startTask else {
                    try NodeStore.transition(db, pk: nodePK, on: .ready, now: nowText, log: &pendingEvents)
                    return []
                }
                let pk = try beginExecution(db, kind: ExecutionKind.start.rawValue, nodePK: nodePK, jobPK: nil, taskPK: nil, attempt: 1,
                    taskDirectory: (root as NSString).appendingPathComponent("startup"), wallClockMilliseconds: nil,
                    retryCount: 0, requeueCount: 0, now: now)
                try NodeStore.transition(db, pk: nodePK, on: start.waitForSuccess == false ? .ready : .awaitStartTask, now: nowText,
                    log: &pendingEvents)
                return [pk]
            }
        }
        launch(launches)
        // Pools: resizing → steady once every node has booted; deleting → gone once every node left.
        for pool in try db.query("SELECT * FROM pool WHERE deleted_time IS NULL AND (allocation_state = ? OR state = ?)",
            [AllocationState.resizing.rawValue, PoolState.deleting.rawValue]) {
            let pk = try pool.int64("pk", table: "pool")
            let id = try pool.text("id", table: "pool")
            let state = try pool.state(PoolState.self, table: "pool")
            let allocation = try pool.state(AllocationState.self, "allocation_state", table: "pool")
            try transaction { db in
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
    }

    /// Job lifecycle: wall-clock expiry, all-tasks-complete, disabling, enabling, and termination with
    /// its release tasks, then completion or deletion.
    func advanceJobs() throws {
        let now = Date()
        let nowText = Timestamp.string(now)
        try transaction { db in
            for job in try db.query("SELECT * FROM job WHERE state = ?", [JobState.active.rawValue]) {
                let reason = try JobEndDecision.terminateReason(
                    created: Timestamp.date(try job.text("creation_time", table: "job")),
                    maxWallClockMilliseconds: job["max_wall_clock_time_ms"].int64,
                    terminateWhenAllComplete: job["on_all_tasks_complete"].string == "terminatejob",
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
                let reason: KillReason?
                switch option {
                case .requeue: reason = .requeue
                case .terminate: reason = .terminate
                case .wait: reason = nil
                }
                if let reason {
                    try ExecutionStore.decideKill(db, reason, where: "job_pk = ? AND kind = ?", [jobPK, ExecutionKind.task.rawValue])
                }
                try returnPreparingTasks(db, job, now: nowText)
                if try db.scalar("SELECT count(*) FROM task WHERE job_pk = ? AND state IN (?, ?)",
                    [jobPK, TaskState.preparing.rawValue, TaskState.running.rawValue]).int ?? 0 == 0 {
                    try JobStore.transition(db, JobKey(job), from: .disabling, .tasksStopped, now: nowText, log: &pendingEvents)
                }
            }
        }
        var launches: [Int64] = []
        var deleted: [(String, [String])] = []
        for job in try db.query("SELECT * FROM job WHERE state IN (?, ?)", [JobState.terminating.rawValue, JobState.deleting.rawValue]) {
            let jobPK = try job.int64("pk", table: "job")
            let state = try job.state(JobState.self, table: "job")
            let deleting = state == .deleting
            // Read before the transaction: a stored release task that does not decode stops here, not
            // as "no release owed".
            let releaseTask = try job.json(JobReleaseTask.self, "job_release_task", table: "job")
            launches += try transaction { db -> [Int64] in
                // R4: running tasks and preparation are ended; preparing tasks go back to active.
                try returnPreparingTasks(db, job, now: nowText)
                try ExecutionStore.decideKill(db, deleting ? .delete : .terminate, where: "job_pk = ? AND kind IN (?, ?)",
                    [jobPK, ExecutionKind.task.rawValue, ExecutionKind.preparation.rawValue])
                if try db.scalar("SELECT count(*) FROM execution WHERE job_pk = ? AND kind IN ('task', 'preparation') AND state <> 'completed'", [jobPK]).int ?? 0 > 0 {
                    return []
                }
                // R3/R6: release is owed once on every node whose preparation completed; never twice.
                var launches: [Int64] = []
                if let release = releaseTask {
                    try JobNodeStore.oweReleases(db, jobPK: jobPK)
                    let wall = release.maxWallClockTime.flatMap { try? ISODuration.parse($0) } ?? Engine.releaseWallClockCap
                    for owed in try db.query(
                        """
                        SELECT r.node_pk, n.root_dir, n.state FROM job_node r JOIN node n ON n.pk = r.node_pk
                        WHERE r.job_pk = ? AND r.release_state = 'pending'
                        """, [jobPK]) {
                        // A node that is up (not booting, rebooting or leaving) runs the release now.
                        switch try owed.state(NodeState.self, table: "node") {
                        case .idle, .running, .starttaskfailed, .waitingforstarttask: break
                        case .rebooting, .reimaging, .unusable, .creating, .starting, .unknown, .leavingpool, .offline, .preempted, .upgradingos,
                            .deallocated, .deallocating:
                            continue
                        }
                        let nodePK = try owed.int64("node_pk", table: "job_node")
                        try JobNodeStore.startRelease(db, JobNodeKey(jobPK: jobPK, nodePK: nodePK, jobID: try job.text("id", table: "job"),
                            poolID: try job.text("pool_id", table: "job"), nodeID: nil), now: nowText, log: &pendingEvents)
                        let directory = ((owed["root_dir"].string ?? "") as NSString).appendingPathComponent(
                            "workitems/\(job["id"].string ?? "")/job-1/\(release.id ?? "jobrelease")")
                        let attempt = (try db.scalar("SELECT count(*) FROM execution WHERE job_pk = ? AND node_pk = ? AND kind = 'release'", [jobPK, nodePK]).int ?? 0) + 1
                        launches.append(try beginExecution(db, kind: ExecutionKind.release.rawValue, nodePK: nodePK, jobPK: jobPK, taskPK: nil,
                            attempt: attempt, taskDirectory: directory, wallClockMilliseconds: min(wall, Engine.releaseWallClockCap),
                            retryCount: 0, requeueCount: 0, now: now))
                    }
                    CrashPoint.hit("release.after-begin")
                }
                if try db.scalar("SELECT count(*) FROM job_node WHERE job_pk = ? AND release_state IN ('pending', 'running')", [jobPK]).int ?? 0 > 0 {
                    return launches
                }
                if deleting {
                    let roots = try db.query("SELECT DISTINCT n.root_dir FROM execution e JOIN node n ON n.pk = e.node_pk WHERE e.job_pk = ?", [jobPK])
                        .compactMap { $0[0].string }
                    try db.run("DELETE FROM job WHERE pk = ?", [jobPK])
                    try record(db, "job.deleted", pool: job["pool_id"].string, job: job["id"].string, from: "deleting", now: nowText)
                    deleted.append((job["id"].string ?? "", roots))
                } else {
                    try JobStore.transition(db, JobKey(job), from: state, .complete, now: nowText, log: &pendingEvents)
                }
                return launches
            }
        }
        launch(launches)
        for (jobID, roots) in deleted {
            CrashPoint.hit("delete.before-files")
            for root in roots { FileAccess.removeTree(atPath: (root as NSString).appendingPathComponent("workitems/\(jobID)")) }
            CrashPoint.hit("delete.after-files")
        }
    }

    private func returnPreparingTasks(_ db: Connection, _ job: Row, now: String) throws {
        for task in try db.query("SELECT pk, id FROM task WHERE job_pk = ? AND state = ?", [job["pk"], TaskState.preparing.rawValue]) {
            try TaskStore.transition(db, TaskKey(task: task, job: job), from: .preparing, .unassign(reason: nil), now: now, log: &pendingEvents)
        }
    }

    /// Places active tasks on nodes with free slots: higher job priority first, then submission order;
    /// preparation runs first on a node that has not prepared for the job.
    func dispatch() throws {
        let candidates = try db.query(
            """
            SELECT n.pk, n.pool_pk, n.boot_count, p.task_slots_per_node - coalesce((SELECT sum(t.required_slots) FROM task t
                WHERE t.node_pk = n.pk AND t.state IN ('preparing', 'running')), 0) AS free
            FROM node n JOIN pool p ON p.pk = n.pool_pk
            WHERE n.state IN ('idle', 'running') AND n.scheduling_state = 'enabled' AND n.removed_time IS NULL AND p.state = 'active'
            """)
        var freeByPool: [Int64: [NodeSlots]] = [:]
        for row in candidates where (row["free"].int ?? 0) > 0 {
            freeByPool[try row.int64("pool_pk", table: "node"), default: []].append(
                NodeSlots(pk: try row.int64("pk", table: "node"), free: row["free"].int ?? 0, bootCount: Int(try row.int64("boot_count", table: "node"))))
        }
        guard !freeByPool.isEmpty else { return }
        let now = Date()
        let launches: [Int64] = try transaction { db in
            var launches: [Int64] = []
            for job in try db.query("SELECT j.*, p.pk AS live_pool_pk, p.node_fill_type FROM job j JOIN pool p ON p.id = j.pool_id COLLATE NOCASE AND p.deleted_time IS NULL WHERE j.state = 'active' ORDER BY j.priority DESC, j.pk") {
                let poolPK = job["live_pool_pk"].int64 ?? 0
                guard var slots = freeByPool[poolPK], slots.contains(where: { $0.free > 0 }) else { continue }
                let jobPK = try job.int64("pk", table: "job")
                let cap = job["max_parallel_tasks"].int
                var running = 0
                if let cap, cap > 0 {
                    running = try db.scalar("SELECT count(*) FROM task WHERE job_pk = ? AND state IN (?, ?)",
                        [jobPK, TaskState.preparing.rawValue, TaskState.running.rawValue]).int ?? 0
                }
                let budget = Placement.budget(freeSlots: slots.reduce(0) { $0 + $1.free }, maxParallelTasks: cap, running: running)
                guard budget > 0 else { continue }
                let ineligible = Set(try db.query("SELECT node_pk FROM job_node WHERE job_pk = ? AND eligible = 0", [jobPK]).compactMap { $0[0].int64 })
                // Only tasks that fit some node now: otherwise a task needing more slots than any node
                // has (§12.24) would fill the LIMIT and hold back every task queued behind it, forever.
                let largest = Placement.largestFit(slots, ineligible: ineligible)
                guard largest > 0 else { continue }
                let tasks = try db.query(
                    """
                    SELECT t.* FROM task t WHERE t.job_pk = ? AND t.state = 'active' AND t.required_slots <= ?
                      AND NOT EXISTS (SELECT 1 FROM task_dependency d WHERE d.task_pk = t.pk AND NOT EXISTS (
                          SELECT 1 FROM task u WHERE u.job_pk = t.job_pk AND u.id = d.depends_on_id AND u.satisfies_dependents = 1))
                    ORDER BY t.is_job_manager DESC, t.pk LIMIT ?
                    """, [jobPK, largest, budget])
                let needs = try tasks.map { Int(try $0.int64("required_slots", table: "task")) }
                for placement in Placement.place(needs, on: &slots, ineligible: ineligible, fill: NodeFill(job["node_fill_type"].string), budget: budget) {
                    launches += try assign(db, tasks[placement.task], job: job, node: placement.node.pk, bootCount: placement.node.bootCount, now: now)
                }
                freeByPool[poolPK] = slots
            }
            return launches
        }
        CrashPoint.hit("dispatch.after-commit")
        launch(launches)
    }

    /// Assigns a task to a node (inside the dispatch transaction), running preparation first when the
    /// node has not prepared for the job (P1–P3, P6, P7).
    private func assign(_ db: Connection, _ task: Row, job: Row, node nodePK: Int64, bootCount: Int, now: Date) throws -> [Int64] {
        let nowText = Timestamp.string(now)
        let jobPK = try job.int64("pk", table: "job")
        // A stored preparation task that does not decode is a corrupt job, never "no preparation".
        guard let preparation = try job.json(JobPreparationTask.self, "job_preparation_task", table: "job") else {
            return [try startTask(db, task, job: job, nodePK: nodePK, now: now)]
        }
        var launches: [Int64] = []
        let record = try JobNodeStore.read(db, jobPK: jobPK, nodePK: nodePK)
        let liveAttempt = try db.scalar("SELECT count(*) FROM execution WHERE job_pk = ? AND node_pk = ? AND kind = 'preparation' AND state <> 'completed'", [jobPK, nodePK]).int ?? 0 > 0
        let decision = PreparationDecision.decide(
            record: record.map { ($0.phase, $0.result, $0.bootCount) }, nodeBootCount: bootCount, liveAttempt: liveAttempt,
            rerunOnNodeRebootAfterSuccess: preparation.rerunOnNodeRebootAfterSuccess, waitForSuccess: preparation.waitForSuccess)
        if decision.runPreparation {
            let node = try db.query("SELECT pk, id, root_dir FROM node WHERE pk = ?", [nodePK]).first
            let root = node?["root_dir"].string ?? ""
            let directory = (root as NSString).appendingPathComponent("workitems/\(job["id"].string ?? "")/job-1/\(preparation.id ?? "jobpreparation")")
            let key = JobNodeKey(jobPK: jobPK, nodePK: nodePK, jobID: try job.text("id", table: "job"), poolID: try job.text("pool_id", table: "job"),
                nodeID: node?["id"].string)
            if let record {
                try JobNodeStore.runPreparation(db, key, from: record.phase, bootCount: bootCount, now: nowText, log: &pendingEvents)
            } else {
                try JobNodeStore.insert(db, key, bootCount: bootCount, now: nowText, log: &pendingEvents)
            }
            let attempt = (try db.scalar("SELECT count(*) FROM execution WHERE job_pk = ? AND node_pk = ? AND kind = 'preparation'", [jobPK, nodePK]).int ?? 0) + 1
            let wall = preparation.constraints?.maxWallClockTime.flatMap { try? ISODuration.parse($0) }
            launches.append(try beginExecution(db, kind: ExecutionKind.preparation.rawValue, nodePK: nodePK, jobPK: jobPK, taskPK: nil,
                attempt: attempt, taskDirectory: directory, wallClockMilliseconds: wall, retryCount: record?.retryCount ?? 0,
                requeueCount: 0, now: now))
        }
        if decision.taskWaits {
            try TaskStore.transition(db, TaskKey(task: task, job: job), from: task.state(TaskState.self, table: "task"),
                .waitForPreparation(nodePK: nodePK), now: nowText, log: &pendingEvents)
            return launches
        }
        launches.append(try startTask(db, task, job: job, nodePK: nodePK, now: now))
        return launches
    }

    /// Nodes read `running` while any job task, preparation or release executes there, else `idle`.
    func updateBusyNodes() throws {
        let rows = try db.query(
            """
            SELECT n.pk, n.state, EXISTS (SELECT 1 FROM execution e WHERE e.node_pk = n.pk AND e.state <> 'completed' AND e.kind <> 'start') AS busy
            FROM node n WHERE n.state IN ('idle', 'running') AND n.removed_time IS NULL
            """)
        let changes = rows.filter { ($0["busy"].int == 1) != ($0["state"].string == NodeState.running.rawValue) }
        guard !changes.isEmpty else { return }
        let now = Engine.now()
        try transaction { db in
            for row in changes {
                try NodeStore.transition(db, pk: row.int64("pk", table: "node"), on: row["busy"].int == 1 ? .busy : .free, now: now,
                    log: &pendingEvents)
            }
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
