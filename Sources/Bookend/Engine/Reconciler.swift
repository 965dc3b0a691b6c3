import Foundation
import Logging
import SQLite
import Supervisor

extension Engine {
    /// How long `reconcile` waits for a shim that may have been forked just before the crash to
    /// write its pid file. A forked shim writes it within microseconds of starting; a restart takes
    /// far longer than that, so this wait only matters in the worst interleavings (and on a loaded
    /// machine it is extended while a process that may be that shim exists).
    static let shimIdentityGrace: Duration = .milliseconds(300)

    /// Settles what a previous engine left behind, before anything new is dispatched: adopts
    /// executions still running, records the exits of those that ended while it was down, re-runs
    /// the ones that never spawned, and treats those that vanished as lost with their node.
    func reconcile() throws {
        let executions = try ExecutionRecord.all(db, where: ExecutionRecord.Live.unfinished)
        // A `starting` row without a pid file may belong to a shim forked an instant before the
        // crash that has not written its identity yet: give it a moment before deciding it never
        // spawned, or the command would run twice.
        let unknown = executions.filter { $0.identity == nil && Supervisor.readIdentity(in: $0.statusDirectory) == nil
            && FileManager.default.fileExists(atPath: $0.statusDirectory) }
        if !unknown.isEmpty {
            let started = ContinuousClock.now
            let known = Set(executions.compactMap { $0.identity?.pid ?? Supervisor.readIdentity(in: $0.statusDirectory)?.pid })
            while unknown.contains(where: { Supervisor.readIdentity(in: $0.statusDirectory) == nil }) {
                let waited = ContinuousClock.now - started
                // Past the grace period, keep waiting (up to 10x) only while a process that could be
                // such a shim exists: a fork of a program like this one that is not a known shim.
                if waited >= Engine.shimIdentityGrace * 10 { break }
                if waited >= Engine.shimIdentityGrace, !Engine.possibleShimInFlight(excluding: known) { break }
                usleep(10_000)
            }
        }
        var respawn: [Int64] = []
        var ended: [(ExecutionRecord, Outcome)] = []
        for execution in executions {
            // The row's identity, or the one the shim wrote if the row never got it.
            let identity = execution.identity ?? Supervisor.readIdentity(in: execution.statusDirectory)
            // Liveness before the exit file, as in the pass's snapshot: a file read after the process
            // was seen gone is final.
            let alive = identity.map(Supervisor.isAlive) ?? false
            if let status = executionStatus(execution) {
                // Finished while nobody watched: its exit is recorded now, exactly once. One Bookend was
                // ending leaves nothing of its session behind, as when the pass collects it.
                if execution.killReason != nil, let identity {
                    var ending = execution
                    ending.identity = identity
                    endSession(of: ending, shimLost: false)
                }
                ended.append((execution, outcome(for: execution, status: status)))
                metrics.record(.collected, count: 1)
            } else if let identity, alive {
                // Still running: adopt it. Its wall clock keeps counting from its original start
                // (the stored deadline), and a kill decided before the crash is signalled by the loop.
                if execution.identity == nil {
                    guard try ExecutionStore.recordProcess(db, pk: execution.pk, pid: identity.pid,
                        pidStartTime: Int64(bitPattern: identity.startTime))
                    else { throw BookendError.internalError("execution \(execution.pk): adopted, yet no longer starting") }
                }
                watchedExecutions[identity] = execution.pk
                watcher.watch(identity)
                metrics.record(.adopted, count: 1)
            } else if identity != nil || execution.killReason != nil {
                // Spawned, then vanished without an exit status (its process tree was lost, or the
                // shim alone was killed: what it started is ended first), or meant to be killed before
                // it ever spawned.
                endSession(of: execution, shimLost: true)
                ended.append((execution, outcome(for: execution, status: nil)))
                metrics.record(.lost, count: 1)
            } else {
                // Committed as starting but never spawned: starting it now runs it once, not twice.
                // Its wall clock has not begun: it starts now, with the same limit.
                if let start = Timestamp.date(execution.startTime), let deadline = execution.deadline.flatMap(Timestamp.date) {
                    let now = Date()
                    try ExecutionStore.restartClock(db, pk: execution.pk, startTime: Timestamp.string(now),
                        deadline: Timestamp.string(now.addingTimeInterval(deadline.timeIntervalSince(start))))
                }
                respawn.append(execution.pk)
                metrics.record(.respawned, count: 1)
            }
        }
        if !ended.isEmpty {
            let now = Date()
            respawn += try transaction { db in
                var launches: [Int64] = []
                for (row, outcome) in ended { launches += try finishExecution(db, row, outcome, now: now) }
                return launches
            }
        }
        if !ended.isEmpty || !respawn.isEmpty { CrashPoint.hit("reconcile.after-collect") }
        launch(respawn)
        try removeOrphanedJobFolders()
        try removeRemovedNodeFolders()
        // Processes of deleted work first (`removeRetiredStatusFolders`), then deleted tasks' folders.
        try removeRetiredStatusFolders()
        try finishTaskFolderRemovals()
    }

    /// True if some other live process runs this executable and is not one of `known`: a shim is a
    /// fork of the engine or of its spawn helper (same executable, no exec) until it has written its pid file. Other
    /// engines running the same program (and their helpers' spare shims) also match; that only
    /// lengthens the wait, up to its cap.
    nonisolated static func possibleShimInFlight(excluding known: Set<Int32>) -> Bool {
        let me = getpid()
        // This process's spawn helper runs the same executable but is never a shim, and its idle spare
        // shim holds no request yet.
        let helper = Supervisor.spawnHelperPID
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return false }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != me, pid != helper, !known.contains(pid),
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) == exe,
                !Supervisor.isIdleSpareShim(pid),
                let identity = Supervisor.identity(ofPID: pid), Supervisor.isAlive(identity)
            else { continue }
            return true
        }
        return false
    }

    /// Status folders are removed right after their execution's exit is committed; a crash in between,
    /// a task deleted while its shim ran, or a version before 5 leaves some behind. Only executions
    /// that are not completed still need theirs: every other folder under `volatile/executions` goes,
    /// and so do the spare folders an earlier engine kept (`StatusFolderPool`) and the task folders it
    /// made ahead (`TaskFolderPool`), which this one does not know of.
    ///
    /// A folder that names a shim (`pid`) but holds no `exit` belonged to work whose row went while it
    /// ran: a task or job deleted at the moment the engine died, after the deletion committed and
    /// before its processes were signalled. No row names that process any more, so nothing else would
    /// ever end it (a deleted task's `sleep 300` outlived the restart): its session is killed first.
    func removeRetiredStatusFolders() throws {
        let live = Set(try db.query("SELECT status_dir FROM execution WHERE state <> 'completed'").compactMap { $0[0].string })
        statusFolders.forgetAll()
        taskFolders.forgetAll()
        for root in try db.query("SELECT root_dir FROM node WHERE removed_time IS NULL").compactMap({ $0[0].string }) {
            _ = FileAccess.removeTree(atPath: (root as NSString).appendingPathComponent("volatile/spare-status"))
            _ = FileAccess.removeTree(atPath: TaskFolderPool.spareFolder(ofNodeRoot: root))
            let executions = (root as NSString).appendingPathComponent("volatile/executions")
            for name in (try? FileManager.default.contentsOfDirectory(atPath: executions)) ?? [] {
                let folder = (executions as NSString).appendingPathComponent(name)
                guard !live.contains(folder) else { continue }
                if Supervisor.readStatus(in: folder) == nil, let shim = Supervisor.readIdentity(in: folder) {
                    let signalled = Supervisor.killSession(shim)
                    if signalled > 0 {
                        logger.warning("\(folder): the work it ran is no longer stored (deleted as the previous engine stopped), and \(signalled) process(es) or group(s) of it still ran; they were killed")
                    }
                }
                Engine.removeStatusDirectory(folder)
            }
        }
    }

    /// A crash between a node's removal and the removal of its folder, or a version before this one
    /// (which kept them), leaves folders of local nodes that left their pools: removed, in the
    /// background, as `advanceNodes` removes them (a pool resized up and down for months left one
    /// folder per node it ever had).
    func removeRemovedNodeFolders() throws {
        for root in try db.query("SELECT root_dir FROM node WHERE removed_time IS NOT NULL AND provider = 'local'").compactMap({ $0[0].string })
        where access(root, F_OK) == 0 {
            taskFolders.removeNodeRoot(root)
        }
    }

    /// A crash between a task's deletion and the removal of its folder leaves the row the deletion
    /// recorded (`task_folder_removal`): the folder goes now, before anything is dispatched, unless a
    /// task added since under the same ids has it (that task's launch deals with what is there). A
    /// folder that cannot be removed keeps its row, for the next start.
    func finishTaskFolderRemovals() throws {
        var after: Int64 = 0
        while true {
            let page = try TaskFolderRemovalStore.pending(db, after: after, limit: 500)
            guard let last = page.last else { return }
            after = last.pk
            var done: [Int64] = []
            for removal in page {
                if try TaskFolderRemovalStore.taskExists(db, jobID: removal.jobID, taskID: removal.taskID) || FileAccess.removeTree(atPath: removal.path) {
                    done.append(removal.pk)
                } else {
                    logger.warning("the folder of deleted task \(removal.taskID) of job \(removal.jobID) could not be removed; the next start tries again: \(removal.path)")
                }
            }
            try transaction { db in
                for pk in done { try TaskFolderRemovalStore.forget(db, pk: pk) }
            }
        }
    }

    /// A crash between deleting a job's rows and removing its folders leaves folders no row
    /// points at any more: remove them (job ids are the folder names under each node's workitems/).
    func removeOrphanedJobFolders() throws {
        let jobs = Set(try db.query("SELECT id FROM job").compactMap { $0[0].string?.lowercased() })
        for root in try db.query("SELECT root_dir FROM node WHERE removed_time IS NULL").compactMap({ $0[0].string }) {
            let workitems = (root as NSString).appendingPathComponent("workitems")
            for name in (try? FileManager.default.contentsOfDirectory(atPath: workitems)) ?? [] where !jobs.contains(name.lowercased()) {
                FileAccess.removeTree(atPath: (workitems as NSString).appendingPathComponent(name))
            }
        }
    }
}
