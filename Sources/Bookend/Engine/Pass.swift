import Foundation
import Logging
import SQLite
import Supervisor

/// What a pass does once its apply transaction has committed, in this order: signals, spawns, folder
/// removals. Built up by the steps of the apply transaction; a step that fails adds nothing.
struct PassEffects {
    /// `starting` executions committed by this pass, to spawn (their intent is durable first).
    var launches: [Int64] = []
    /// Jobs deleted by this pass: their `workitems/<job>` folders on these node roots go.
    var deletedJobs: [(jobID: String, roots: [String])] = []
    /// Roots of the nodes this pass removed from their pools: they go, as a removed VM's disk does.
    var removedNodeRoots: [String] = []
    /// Exits were recorded (`exits.after-commit`).
    var recordedExits = false
    /// Wall clocks ran out and their kills were decided (`kill.after-decision`).
    var decidedTimeouts = false
    /// Dispatch placed tasks (`dispatch.after-commit`).
    var dispatched = false
    /// Identities of processes spawned since the last pass were stored (`launch.after-record`).
    var recordedLaunches = false
    /// A deleting job still has tasks to delete: another pass follows at once.
    var deletingMore = false
}

extension Engine {
    /// One pass of the scheduling loop:
    ///
    /// 1. **Snapshot** what needs I/O before deciding: which running executions ended (liveness, then
    ///    exit files) and the folders of nodes that boot.
    /// 2. **Plan and apply** every state change of the pass (exits and their follow-ups, kills due,
    ///    nodes, pools, jobs and releases, dispatch, busy nodes) in ONE write transaction, through the
    ///    stores, each step asking the pure decisions (`Decisions.swift`, `Plan.swift`). The
    ///    `starting` rows of everything to spawn commit here, before any spawn.
    /// 3. **Effects** after the commit: signals, spawns, removal of deleted jobs' folders.
    ///
    /// The identities of the processes a pass spawns are stored by the NEXT pass, first thing in its
    /// apply transaction (group commit): a task then costs one commit (its launch record, its exit and
    /// the dispatch of the task after it), not two. Until then the pass knows them from memory
    /// (`spawnedUnrecorded`), and a crash in between leaves an intent without a pid, which
    /// `reconcile` adopts through the shim's pid file.
    ///
    /// Retention (its own, rare, transactions) runs last.
    func tick(dispatching: Bool = true) {
        guard !stopped || !dispatching else { return }
        watchWriteAheadLog()
        do {
            try recordUnrecordedOutcomes()
            let spawned = spawnedUnrecorded
            let ended = try observeExits(spawned: spawned)
            // The exit files are on disk; nothing about them is recorded yet.
            if !ended.isEmpty { CrashPoint.hit("exits.before-record") }
            try makeBootingNodeFolders()
            let now = Date()
            let effects: PassEffects
            let notRecorded: [Int64: String]
            do {
                (effects, notRecorded) = try applyPass(spawned: spawned, ended: ended, now: now, dispatching: dispatching)
            } catch {
                abandonSpawned(spawned, reasons: spawned.mapValues { _ in "\(error)" })
                throw error
            }
            abandonSpawned(spawned.filter { notRecorded[$0.key] != nil }, reasons: notRecorded)
            for pk in spawned.keys { spawnedUnrecorded[pk] = nil }
            if effects.recordedLaunches { CrashPoint.hit("launch.after-record") }
            if effects.recordedExits { CrashPoint.hit("exits.after-commit") }
            if effects.decidedTimeouts { CrashPoint.hit("kill.after-decision") }
            if effects.dispatched { CrashPoint.hit("dispatch.after-commit") }
            // The intents are committed: they spawn whatever happens to the signals.
            do { try signalKills() } catch { logger.error("scheduler pass: signalling failed: \(error)") }
            launch(effects.launches)
            launchDeferred()
            finishAfterCommit()
            removeDeletedJobFolders(effects.deletedJobs)
            if effects.deletingMore { wake() }
            for root in effects.removedNodeRoots { taskFolders.removeNodeRoot(root) }
            try enforceRetention()
            if failingSteps.removeValue(forKey: Engine.wholePass) != nil { logger.notice("scheduler pass: succeeds again") }
        } catch {
            // Logged when it starts failing, changes or recovers, not once per pass: with the disk full
            // every pass fails the same way, several times a second, for as long as it lasts.
            let message = "\(error)"
            if failingSteps.updateValue(message, forKey: Engine.wholePass) != message {
                logger.error("scheduler pass failed (logged again only when it changes or recovers): \(message)")
            } else {
                logger.debug("scheduler pass failed again: \(message)")
            }
        }
        // A pass that failed after its commit still finishes what that commit left.
        finishAfterCommit()
    }

    /// Notices `bookend.db-wal` removed or replaced while the engine runs (by hand, a clean-up script). SQLite
    /// goes on writing to the removed file, which no later start can read: everything committed since
    /// the last checkpoint, acknowledged to clients, was lost at the next start, silently. So from then
    /// on every commit is checkpointed into `bookend.db` at once (`wal_autocheckpoint = 1`, and a full
    /// checkpoint now): slower, but nothing acknowledged is lost, and the log says to restart, which
    /// makes a new log file. One `stat` per pass.
    func watchWriteAheadLog() {
        guard !logRemoved else { return }
        var info = stat()
        if stat(db.path + "-wal", &info) == 0 {
            let found = (device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
            // Another file at the path (the log moved over, or removed and made again by another
            // SQLite client) is the same loss as a removal: SQLite writes to the file it has open.
            guard let known = logIdentity else { logIdentity = found; return }
            if known == found { return }
        } else if errno != ENOENT || logIdentity == nil {
            return
        }
        logRemoved = true
        logger.critical("\(db.path)-wal was removed or replaced while Bookend runs: every commit is now copied into \(db.path) at once, so nothing is lost, at the cost of speed; restart the daemon to write a new log")
        do {
            try db.execute("PRAGMA wal_autocheckpoint = 1")
            _ = try db.query("PRAGMA wal_checkpoint(FULL)")
        } catch {
            logger.critical("checkpointing after the log's removal failed: \(error)")
        }
        // A file that took the log's place (an older copy, say) would be replayed over the database at
        // the next start, undoing what was checkpointed: everything in it is in the database now.
        if stat(db.path + "-wal", &info) == 0, unlink(db.path + "-wal") == 0 {
            logger.critical("\(db.path)-wal was another file than Bookend's log: removed, so that the next start does not replay it")
        }
    }

    /// The key of `failingSteps` for a pass that failed as a whole.
    static let wholePass = "the whole pass"

    /// The pass's apply transaction (step 2 of `tick`): its effects, and the spawned processes whose
    /// identity could not be stored, with why.
    ///
    /// It runs first without a savepoint per step, and only when a step fails is it rolled back whole
    /// and run again with them, so that the failing step alone is undone and the rest commits (`step`).
    /// Why: a savepoint journals every page a step changes before the change, and a pass's steps
    /// journaled about 45 pages, past the 64 KiB SQLite keeps in memory, so every pass created, wrote
    /// and deleted a temporary file besides its `SAVEPOINT` and `RELEASE` statements, for steps that
    /// almost never fail. Why running it again is safe: everything a step does outside the database
    /// is buffered until the commit and dropped with a rollback (`pendingEvents`, `pendingObservations`,
    /// `retiredStatusDirectories`, the returned effects), or is the same when done again from the same
    /// rows (a `killEscalations` entry cleared, the Slurm provider told what is wanted, an orphan
    /// process killed). `BOOKEND_PASS_SAVEPOINTS=1` keeps the savepoints on every pass, to measure
    /// the two against each other.
    private func applyPass(
        spawned: [Int64: ProcessIdentity], ended: [ObservedExit], now: Date, dispatching: Bool
    ) throws -> (PassEffects, [Int64: String]) {
        var inSavepoints = Engine.passSavepointsAlways
        // Rows of task folders `deleteTask` removed: forgotten with the pass's commit. One whose
        // forgetting fails stays until the next start, which finds its folder gone and forgets it then.
        let forgetting = removedTaskFolders
        defer { removedTaskFolders.removeFirst(min(forgetting.count, removedTaskFolders.count)) }
        while true {
            stepsInSavepoints = inSavepoints
            defer { stepsInSavepoints = true }
            var effects = PassEffects()
            var notRecorded: [Int64: String] = [:]
            do {
                // Deferred sync: the processes this pass decided start while its log is synced.
                try transactionDeferringAfterCommit(sync: .deferred) { db in
                    // First: every later step reads pids (kills decided in this pass are signalled by pid).
                    notRecorded = try recordSpawned(db, spawned, into: &effects)
                    if !forgetting.isEmpty {
                        try step("forgetting removed task folders", db, &effects) { _ in
                            for pk in forgetting { try TaskFolderRemovalStore.forget(db, pk: pk) }
                        }
                    }
                    let collectable = notRecorded.isEmpty ? ended : ended.filter { notRecorded[$0.execution.pk] == nil }
                    try step("recording exits", db, &effects) { try recordExits(db, collectable, now: now, into: &$0) }
                    try step("deciding kills", db, &effects) { try decideKills(db, now: now, into: &$0) }
                    try step("following Slurm allocations", db, &effects) { _ in try followSlurmAllocations(db, now: now) }
                    try step("advancing nodes", db, &effects) { try advanceNodes(db, now: now, into: &$0) }
                    try step("advancing pools", db, &effects) { _ in try advancePools(db, now: now) }
                    try step("advancing jobs", db, &effects) { try advanceJobs(db, now: now, into: &$0) }
                    if dispatching { try step("dispatching", db, &effects) { try dispatch(db, now: now, into: &$0) } }
                    try step("marking busy nodes", db, &effects) { _ in try updateBusyNodes(db, now: now) }
                }
                return (effects, notRecorded)
            } catch let failed as StepFailedWithoutSavepoint where !inSavepoints {
                logger.debug("scheduler pass: \(failed.step) failed; the pass runs again with a savepoint per step")
                inSavepoints = true
            }
        }
    }

    /// Dispatch inside the transaction that stores new tasks (`addTask`, `addTasks`): a task that finds
    /// a free slot commits its `starting` execution together with itself, so one commit, not two (the
    /// submission, then a pass's dispatch), lies between a submission and its process. It is the pass's
    /// own dispatch step, in a savepoint: if it fails, the tasks are stored all the same and the next
    /// pass dispatches them. Not while the engine stops (a stopping engine starts nothing new).
    func dispatchWithSubmission(_ db: Connection, into effects: inout PassEffects) throws {
        guard !stopped else { return }
        let now = Date()
        try step("dispatching submitted tasks", db, &effects) { try dispatch(db, now: now, into: &$0) }
    }

    /// After the commit of new tasks: spawns what `dispatchWithSubmission` committed, as a pass spawns
    /// what its apply transaction committed. When it spawned something, no pass is woken: the next one
    /// (the first exit, say) stores those identities with whatever else it commits (group commit),
    /// and a pass now could place nothing the submission's own dispatch did not. Otherwise a pass is
    /// woken, as before: it dispatches what could not be placed here (a failed step) and advances the
    /// rest of the world.
    func launchDispatched(_ effects: PassEffects) {
        guard !effects.launches.isEmpty else { return wake() }
        if effects.dispatched { CrashPoint.hit("dispatch.after-commit") }
        launch(effects.launches)
    }

    /// A step of a pass run without savepoints failed: the pass is rolled back and run again with them
    /// (`applyPass`).
    struct StepFailedWithoutSavepoint: Error, CustomStringConvertible {
        let step: String
        let error: any Error
        var description: String { "\(step): \(error)" }
    }

    /// Runs one step of the apply transaction inside a savepoint (in a pass's first run, without one:
    /// a step that fails then has the whole pass run again with them, see `applyPass`). A step that
    /// throws (a corrupt row, a guard that found the world moved) is rolled back alone, with its events
    /// and effects, and logged; the rest of the pass commits, so one bad job cannot hold back every
    /// exit. Steps nest (dispatch and job ends take one savepoint per job). If SQLite itself ended the
    /// transaction, nothing more can be written in it: the pass stops.
    func step(_ name: String, _ db: Connection, _ effects: inout PassEffects, _ body: (inout PassEffects) throws -> Void) throws {
        guard stepsInSavepoints else {
            do {
                try body(&effects)
            } catch let error as StepFailedWithoutSavepoint {
                throw error
            } catch {
                // SQLite ended the transaction itself: nothing to run again in it (as below).
                guard db.isInTransaction else { throw error }
                throw StepFailedWithoutSavepoint(step: name, error: error)
            }
            if failingSteps.removeValue(forKey: name) != nil { logger.notice("scheduler pass: \(name) succeeds again") }
            return
        }
        let events = pendingEvents.count
        let retired = retiredStatusDirectories.count
        var draft = effects
        try db.run("SAVEPOINT pass_step" as StaticString)  // nested savepoints of one name unwind innermost first
        do {
            try body(&draft)
            try db.run("RELEASE pass_step" as StaticString)
            effects = draft
            if failingSteps.removeValue(forKey: name) != nil { logger.notice("scheduler pass: \(name) succeeds again") }
        } catch {
            guard db.isInTransaction else { throw error }
            try db.run("ROLLBACK TO pass_step" as StaticString)
            try db.run("RELEASE pass_step" as StaticString)
            pendingEvents.removeSubrange(events...)
            retiredStatusDirectories.removeSubrange(retired...)
            let message = "\(error)"
            if failingSteps.updateValue(message, forKey: name) != message {
                logger.error("scheduler pass: \(name) failed and was skipped (logged again only when it changes or recovers): \(message)")
            } else {
                logger.debug("scheduler pass: \(name) failed again: \(message)")
            }
        }
    }

    /// The running executions whose process has ended, with their outcome. The exit files decide (they
    /// also cover adopted processes); the watcher's notifications say which processes to look at.
    ///
    /// Only the processes the watcher reported ended, and those it does not watch, are looked at in a
    /// pass (with few running, the others' exit files are tried too: `exitProbeLimit`); every running
    /// one is looked at once a second besides (`exitScanInterval`). Why: looking
    /// is a read of `/proc/<pid>/stat` and an open of the exit file, and every exit starts a pass, so
    /// looking at all of them made each exit cost I/O in proportion to the executions still running
    /// (400 of each per exit on a pool of 100 four-slot nodes). Why it is safe: a watched process
    /// that ends is reported, and its report wakes a pass after it is queued, so a pass that skipped it
    /// is followed by one that drains it; one the watcher stopped watching without a report (it could
    /// not be watched, the watcher stopped) is not skipped; the scan once a second catches anything else.
    /// With more than `exitProbeLimit` processes watched, a pass between scans reads only the rows of
    /// the reported ones, by key (`watchedExecutions`): decoding every running row only to skip it
    /// was the cost left in proportion to the running work (0.83 of the plain rate beside 200
    /// running sleeps, in the fresh-clone table of the second sitting of 2026-12-04). It also tries
    /// the exit files of the last `exitProbeLimit` launches (`RecentLaunches`), as it tries every one
    /// when few run: without that, short commands beside many long ones were recorded by a pass each
    /// as their reports came in (0.36 passes per task beside 200 sleeps, 0.32 alone).
    func observeExits(spawned: [Int64: ProcessIdentity] = [:]) throws -> [ObservedExit] {
        let reported = Set(exits.drain())
        let now = ContinuousClock.now
        let lookAtAll = now >= nextFullExitScan
        if lookAtAll {
            nextFullExitScan = now + Engine.exitScanInterval
            watchedExecutions = watchedExecutions.filter { watcher.isWatching($0.key) }
        }
        // Few running: the exit files of those not reported yet are tried too (see below). Many running
        // and no full look due: only the rows of the processes reported ended are read, by key, not
        // every running row decoded to be skipped.
        let fewRunning = watcher.watchedCount <= Engine.exitProbeLimit
        let targeted = !lookAtAll && !fewRunning
        // Many running: the exit files of the last `exitProbeLimit` launches are tried all the same (one
        // `access` each), so short commands that end together beside long ones are still recorded
        // by one pass, as they are when few run. The rows of those found ended are read by key.
        let probed = fewRunning || lookAtAll ? [] : recentLaunches.ended(besides: reported, spawned: spawned)
        let endedKeys = (reported.compactMap { watchedExecutions[$0] } + probed).sorted()
        for identity in reported { watchedExecutions[identity] = nil }
        // One read transaction for the pass's reads: one snapshot, the log's read lock taken once.
        let executions = try db.readTransaction { db in
            var executions = targeted
                ? try endedKeys.compactMap { pk in try ExecutionRecord.read(db, pk: pk).flatMap { $0.state == .running ? $0 : nil } }
                : try ExecutionRecord.all(db, where: ExecutionRecord.Live.running)
            // Spawned since the last pass and not stored yet: this pass stores them before it records any
            // exit, so one that has already ended is collected now, with the identity from memory.
            for (pk, identity) in spawned.sorted(by: { $0.key < $1.key }) {
                guard var execution = try ExecutionRecord.read(db, pk: pk), execution.state == .starting else { continue }
                execution.state = .running
                execution.identity = identity
                executions.append(execution)
            }
            return executions
        }
        var ended: [ObservedExit] = []
        for execution in executions {
            guard let identity = execution.identity else {
                throw BookendError.internalError("execution row pk \(execution.pk), column pid: NULL while running")
            }
            let exited = reported.contains(identity)
            // Watched and not reported ended: running, or ended so recently that its report is queued.
            // With few running, its exit file is tried all the same (no /proc read): a shim writes
            // that file just before it exits, so one that is there is final, and commands that ended
            // together are then recorded by one pass (one commit) instead of one pass each as their
            // reports arrive.
            if !exited, !lookAtAll, watcher.isWatching(identity) {
                if fewRunning || recentLaunches.contains(execution.pk), let status = executionStatus(execution) {
                    ended.append(ObservedExit(execution: execution, outcome: outcome(for: execution, status: status)))
                } else if execution.kind == .release {
                    CrashPoint.hit("release.while-running")
                }
                continue
            }
            // Liveness first, then the exit file: the shim writes the file before it exits, so a file
            // read after the process was seen gone is final. The other order would take a shim that
            // wrote its file and exited between the two reads for one that vanished, and rerun it.
            // A process the watcher reported has ended (its pidfd said so, or /proc did).
            let alive = exited ? false : Supervisor.isAlive(identity)
            let status = executionStatus(execution)
            if status == nil, alive {
                // A release task is running right now (a crash here leaves it to the next engine).
                if execution.kind == .release { CrashPoint.hit("release.while-running") }
                continue
            }
            // Ended without an exit file, and the watcher is still reaping it: whether the shim said
            // it could not write the file is known once it has (it wakes the loop then).
            if status == nil, watcher.isWatching(identity) { continue }
            // The exit file could not be opened (the daemon's descriptors used up by a flood of
            // connections, say): it may be there, so the work is not taken for lost and run again.
            // The once-a-second scan tries it again.
            if status == nil, let error = Supervisor.exitFileUnreadable(in: execution.statusDirectory) {
                let message = "\(execution.statusDirectory)/exit: \(String(cString: strerror(error)))"
                if failingSteps.updateValue(message, forKey: "reading exits") != message {
                    logger.warning("scheduler pass: cannot read an exit file, its execution waits (logged again only when it changes): \(message)")
                }
                continue
            }
            // A step that ended without its command's status: first ask Slurm whether its node is gone.
            if status == nil, holdsSlurmLoss(execution) { continue }
            // The shim is gone without a status: whatever it started that still runs is ended before
            // the work is requeued (its command survives a kill of the shim alone).
            if status == nil { endSession(of: execution, shimLost: true) }
            ended.append(ObservedExit(execution: execution, outcome: outcome(for: execution, status: status)))
        }
        // Work Bookend ended (terminate, a wall clock, its job's end) leaves nothing of its session
        // behind: the SIGTERM went to the command's process group, and a process that moved to a group
        // of its own (a shell with job control, `setpgrp`) outlived it once the command exited.
        for exit in ended where exit.execution.killReason != nil && exit.execution.identity != nil {
            endSession(of: exit.execution, shimLost: false)
        }
        recentLaunches.forget(ended.map(\.execution.pk), reported: reported)
        return ended
    }

    /// Kills what is left of an execution's session: once the shim of work Bookend decided to end has
    /// exited (`shimLost` false), or when its shim vanished without an exit status, before its outcome
    /// (a requeue, most often) is recorded (`shimLost` true; on a Slurm node the session holds `srun`,
    /// whose end cancels the step). Processes that left the session with `setsid` are out of its reach
    /// (docs/security.md).
    func endSession(of execution: ExecutionRecord, shimLost: Bool) {
        guard let identity = execution.identity else { return }
        let signalled = Supervisor.killSession(identity)
        guard signalled > 0 else { return }
        if shimLost {
            logger.warning("execution \(execution.pk): its shim \(identity.pid) is gone without an exit status and \(signalled) process(es) or group(s) of its session still ran; they were killed before the work is run again")
        } else {
            logger.info("execution \(execution.pk): \(signalled) process(es) or group(s) of its session outlived the command it was asked to end; they were killed")
        }
    }

    /// How often a pass looks at every running execution, not only at those the watcher reported.
    static let exitScanInterval = Duration.seconds(1)
    /// Up to this many running executions, a pass also tries the exit files of those not reported yet
    /// (one `open` each): the few it costs buy fewer commits when short commands end together. Beyond
    /// it, that cost would grow with the pool's running work again.
    static let exitProbeLimit = 32

    /// Stores the identities of the processes spawned since the last pass (inside the apply
    /// transaction, in a savepoint of its own). Answers the executions whose identity could not be
    /// stored, with why; their processes are ended by `abandonSpawned`. A process whose execution is
    /// gone or completed meanwhile (its task deleted between the two passes) is killed here: no row
    /// will ever name it.
    func recordSpawned(_ db: Connection, _ spawned: [Int64: ProcessIdentity], into effects: inout PassEffects) throws -> [Int64: String] {
        guard !spawned.isEmpty else { return [:] }
        let inSavepoint = stepsInSavepoints
        if inSavepoint { try db.execute("SAVEPOINT record_spawned") }
        do {
            var orphans: [ProcessIdentity] = []
            for (pk, identity) in spawned.sorted(by: { $0.key < $1.key }) {
                if try !ExecutionStore.recordProcess(db, pk: pk, pid: identity.pid, pidStartTime: Int64(bitPattern: identity.startTime)) {
                    orphans.append(identity)
                }
            }
            if inSavepoint { try db.execute("RELEASE record_spawned") }
            for identity in orphans { _ = Supervisor.signalGroup(identity, SIGKILL) }
            effects.recordedLaunches = true
            return [:]
        } catch {
            guard db.isInTransaction else { throw error }
            guard inSavepoint else { throw StepFailedWithoutSavepoint(step: "recording launches", error: error) }
            try db.execute("ROLLBACK TO record_spawned")
            try db.execute("RELEASE record_spawned")
            return spawned.mapValues { _ in "\(error)" }
        }
    }

    /// Stores the spawned processes' identities in a transaction of their own, when no pass will
    /// (the engine shuts down). One that cannot be stored is left to `reconcile`, which adopts it
    /// through its pid file.
    func recordSpawnedAlone() {
        guard !spawnedUnrecorded.isEmpty else { return }
        let spawned = spawnedUnrecorded
        var effects = PassEffects()
        do {
            let failed = try transaction { db in try recordSpawned(db, spawned, into: &effects) }
            for pk in spawned.keys where failed[pk] == nil { spawnedUnrecorded[pk] = nil }
            if effects.recordedLaunches { CrashPoint.hit("launch.after-record") }
        } catch {
            logger.warning("recording \(spawned.count) launches at shutdown failed (the next start adopts them): \(error)")
        }
    }

    /// Processes whose identity could not be stored: they run, but no row names them, so terminate,
    /// requeue and wall clocks could not reach them and a restart would take them for lost and run
    /// them again. They are killed now; their executions complete as failed (`LaunchNotRecorded`) once
    /// a transaction commits again (`recordUnrecordedOutcomes`).
    func abandonSpawned(_ spawned: [Int64: ProcessIdentity], reasons: [Int64: String]) {
        guard !spawned.isEmpty else { return }
        logger.error("recording launches failed; ending \(spawned.count) unrecorded processes (LaunchNotRecorded)")
        for (pk, identity) in spawned {
            spawnedUnrecorded[pk] = nil
            _ = Supervisor.signalGroup(identity, SIGKILL)
            unrecordedOutcomes[pk] = .fault(FailureInfo(category: "servererror", code: "LaunchNotRecorded",
                message: "The process started, but recording it failed (\(reasons[pk] ?? "unknown error")); it was killed and is not run again"))
        }
    }

    /// Completes the executions `observeExits` found ended (inside the apply transaction), each at most
    /// once: one completed meanwhile is skipped.
    private func recordExits(_ db: Connection, _ ended: [ObservedExit], now: Date, into effects: inout PassEffects) throws {
        guard !ended.isEmpty else { return }
        for exit in ended {
            effects.launches += try finishExecution(db, exit.execution, exit.outcome, now: now)
            killEscalations[exit.execution.pk] = nil
        }
        effects.recordedExits = true
    }

    /// Kills due in this pass: wall clocks that ran out (decided, so a restart finishes what this one
    /// started), and executions that are to end but never spawned, which complete at once.
    private func decideKills(_ db: Connection, now: Date, into effects: inout PassEffects) throws {
        let nowText = Timestamp.string(now)
        let clocks = try db.query(Engine.clocksRunOut, [nowText])
            .map { row in
                KillPlan.Clock(pk: try row.int64("pk", table: "execution"), deadline: try row.text("deadline", table: "execution"),
                    killDecided: try row.optionalState(KillReason.self, "kill_reason", table: "execution") != nil)
            }
        for pk in KillPlan.timedOut(clocks, now: nowText) {
            try ExecutionStore.decideKill(db, .timeout, where: "pk = ?", [pk])
            effects.decidedTimeouts = true
        }
        // One still downloading its resource files ends too: `downloadFinished` then finds it completed.
        for execution in try ExecutionRecord.all(db, where: ExecutionRecord.Live.killedUnspawned) {
            effects.launches += try finishExecution(db, execution, outcome(for: execution, status: nil), now: now)
        }
    }

    /// The wall clocks of live executions that have run out by `?` (a stored timestamp): only those,
    /// through their partial index (`execution_deadline`). Every live clock would be every running
    /// execution with a wall clock, read on every pass.
    static let clocksRunOut =
        "SELECT pk, deadline, kill_reason FROM execution WHERE state <> 'completed' AND deadline IS NOT NULL AND deadline <= ?"

    /// Sends SIGTERM to executions Bookend decided to end, then SIGKILL after the grace period. Runs
    /// after the apply transaction committed their reasons.
    func signalKills() throws {
        for execution in try ExecutionRecord.all(db, where: ExecutionRecord.Live.killedSpawned) {
            guard let identity = execution.identity else { continue }
            if let deadline = killEscalations[execution.pk] {
                // The whole session, not only the group: a process that left the group (a shell with
                // job control) does not outlive a kill.
                if ContinuousClock.now >= deadline { Supervisor.killSession(identity) }
            } else {
                killEscalations[execution.pk] = ContinuousClock.now + configuration.killGracePeriod
                _ = Supervisor.signalGroup(identity, SIGTERM)
                CrashPoint.hit("kill.after-signal")
            }
        }
    }

    /// Folders of nodes that boot in this pass, made before the transaction that boots them (so a
    /// node is never `starting` without its folders). Making them again is harmless.
    private func makeBootingNodeFolders() throws {
        for row in try db.query("SELECT pk, root_dir FROM node WHERE state = 'creating' AND removed_time IS NULL") {
            do {
                try makeNodeFolders(try row.text("root_dir", table: "node"))
            } catch {
                logger.error("cannot prepare the node folder: \(error)")
            }
        }
    }

    private func removeDeletedJobFolders(_ deleted: [(jobID: String, roots: [String])]) {
        for (jobID, roots) in deleted {
            CrashPoint.hit("delete.before-files")
            for root in roots {
                // Its task folders become spares for their accounts' next launches (`TaskFolderPool`):
                // removing them here would free inodes the next job then allocates slowly.
                let folder = (root as NSString).appendingPathComponent("workitems/\(jobID)")
                if !taskFolders.reclaim(nodeRoot: root, jobFolder: folder, owners: accountsLaunchingAgain(on: root)) {
                    FileAccess.removeTree(atPath: folder)
                }
            }
            CrashPoint.hit("delete.after-files")
        }
    }

    /// The accounts whose work can launch on the node at `root` again, so whose task folders are worth
    /// keeping as spares: the engine's own and, when it is root, root (admin work) and the pool's
    /// account (scope `pool`). A task-scoped account is used once, and so is never among them.
    private func accountsLaunchingAgain(on root: String) -> Set<TaskFolderPool.Owner> {
        var owners: Set<TaskFolderPool.Owner> = [TaskFolderPool.Owner(uid: geteuid(), gid: getegid())]
        guard isRoot else { return owners }
        owners.insert(TaskFolderPool.Owner(uid: 0, gid: 0))
        let poolAccount = try? db.scalar(
            "SELECT p.uid FROM node n JOIN pool p ON p.pk = n.pool_pk WHERE n.root_dir = ? AND n.removed_time IS NULL", [root])
        if let uid = poolAccount?.int64.flatMap({ uid_t(exactly: $0) }) { owners.insert(TaskFolderPool.Owner(uid: uid, gid: uid)) }
        return owners
    }

    /// How many transactions that changed something have committed on the engine's writer connection:
    /// what a pass costs in durable writes.
    var writeTransactions: Int { db.writeTransactions }
}
