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
    /// Exits were recorded (`exits.after-commit`).
    var recordedExits = false
    /// Wall clocks ran out and their kills were decided (`kill.after-decision`).
    var decidedTimeouts = false
    /// Dispatch placed tasks (`dispatch.after-commit`).
    var dispatched = false
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
    /// 4. **Record** the spawned processes' identities, all in one transaction (`launch`).
    ///
    /// Retention (its own, rare, transactions) runs last.
    func tick(dispatching: Bool = true) {
        guard !stopped || !dispatching else { return }
        do {
            try recordUnrecordedOutcomes()
            let ended = try observeExits()
            // The exit files are on disk; nothing about them is recorded yet.
            if !ended.isEmpty { CrashPoint.hit("exits.before-record") }
            try makeBootingNodeFolders()
            let now = Date()
            var effects = PassEffects()
            try transaction { db in
                try step("recording exits", db, &effects) { try recordExits(db, ended, now: now, into: &$0) }
                try step("deciding kills", db, &effects) { try decideKills(db, now: now, into: &$0) }
                try step("following Slurm allocations", db, &effects) { _ in try followSlurmAllocations(db, now: now) }
                try step("advancing nodes", db, &effects) { try advanceNodes(db, now: now, into: &$0) }
                try step("advancing pools", db, &effects) { _ in try advancePools(db, now: now) }
                try step("advancing jobs", db, &effects) { try advanceJobs(db, now: now, into: &$0) }
                if dispatching { try step("dispatching", db, &effects) { try dispatch(db, now: now, into: &$0) } }
                try step("marking busy nodes", db, &effects) { _ in try updateBusyNodes(db, now: now) }
            }
            if effects.recordedExits { CrashPoint.hit("exits.after-commit") }
            if effects.decidedTimeouts { CrashPoint.hit("kill.after-decision") }
            if effects.dispatched { CrashPoint.hit("dispatch.after-commit") }
            // The intents are committed: they spawn whatever happens to the signals.
            do { try signalKills() } catch { logger.error("scheduler pass: signalling failed: \(error)") }
            launch(effects.launches)
            removeDeletedJobFolders(effects.deletedJobs)
            try enforceRetention()
        } catch {
            logger.error("scheduler pass failed: \(error)")
        }
    }

    /// Runs one step of the apply transaction inside a savepoint. A step that throws (a corrupt row,
    /// a guard that found the world moved) is rolled back alone, with its events and effects, and
    /// logged; the rest of the pass commits, so one bad job cannot hold back every exit. Steps nest
    /// (dispatch and job ends take one savepoint per job). If SQLite
    /// itself ended the transaction, nothing more can be written in it: the pass stops.
    func step(_ name: String, _ db: Connection, _ effects: inout PassEffects, _ body: (inout PassEffects) throws -> Void) throws {
        let events = pendingEvents.count
        let retired = retiredStatusDirectories.count
        var draft = effects
        try db.execute("SAVEPOINT pass_step")  // nested savepoints of one name unwind innermost first
        do {
            try body(&draft)
            try db.execute("RELEASE pass_step")
            effects = draft
            if failingSteps.removeValue(forKey: name) != nil { logger.notice("scheduler pass: \(name) succeeds again") }
        } catch {
            guard db.isInTransaction else { throw error }
            try db.execute("ROLLBACK TO pass_step")
            try db.execute("RELEASE pass_step")
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

    /// The running executions whose process has ended, with their outcome. Notifications only wake the
    /// loop; the exit files decide (they also cover adopted processes).
    func observeExits() throws -> [ObservedExit] {
        _ = exits.drain()
        var ended: [ObservedExit] = []
        for execution in try ExecutionRecord.all(db, where: "state = 'running'") {
            guard let identity = execution.identity else {
                throw BookendError.internalError("execution row pk \(execution.pk), column pid: NULL while running")
            }
            // Liveness first, then the exit file: the shim writes the file before it exits, so a file
            // read after the process was seen gone is final. The other order would take a shim that
            // wrote its file and exited between the two reads for one that vanished, and rerun it.
            let alive = Supervisor.isAlive(identity)
            let status = executionStatus(execution)
            if status == nil, alive {
                // A release task is running right now (a crash here leaves it to the next engine).
                if execution.kind == .release { CrashPoint.hit("release.while-running") }
                continue
            }
            // Ended without an exit file, and the watcher is still reaping it: whether the shim said
            // it could not write the file is known once it has (it wakes the loop then).
            if status == nil, watcher.isWatching(identity) { continue }
            // A step that ended without its command's status: first ask Slurm whether its node is gone.
            if status == nil, holdsSlurmLoss(execution) { continue }
            ended.append(ObservedExit(execution: execution, outcome: outcome(for: execution, status: status)))
        }
        return ended
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
        let clocks = try db.query("SELECT pk, deadline, kill_reason FROM execution WHERE state <> 'completed' AND deadline IS NOT NULL")
            .map { row in
                KillPlan.Clock(pk: try row.int64("pk", table: "execution"), deadline: try row.text("deadline", table: "execution"),
                    killDecided: try row.optionalState(KillReason.self, "kill_reason", table: "execution") != nil)
            }
        for pk in KillPlan.timedOut(clocks, now: Timestamp.string(now)) {
            try ExecutionStore.decideKill(db, .timeout, where: "pk = ?", [pk])
            effects.decidedTimeouts = true
        }
        // One still downloading its resource files ends too: `downloadFinished` then finds it completed.
        for execution in try ExecutionRecord.all(db, where: "state <> 'completed' AND kill_reason IS NOT NULL AND pid IS NULL") {
            effects.launches += try finishExecution(db, execution, outcome(for: execution, status: nil), now: now)
        }
    }

    /// Sends SIGTERM to executions Bookend decided to end, then SIGKILL after the grace period. Runs
    /// after the apply transaction committed their reasons.
    func signalKills() throws {
        for execution in try ExecutionRecord.all(db, where: "state <> 'completed' AND kill_reason IS NOT NULL AND pid IS NOT NULL") {
            guard let identity = execution.identity else { continue }
            if let deadline = killEscalations[execution.pk] {
                if ContinuousClock.now >= deadline { _ = Supervisor.signalGroup(identity, SIGKILL) }
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
            for root in roots { FileAccess.removeTree(atPath: (root as NSString).appendingPathComponent("workitems/\(jobID)")) }
            CrashPoint.hit("delete.after-files")
        }
    }

    /// How many transactions that changed something have committed on the engine's writer connection:
    /// what a pass costs in durable writes.
    var writeTransactions: Int { db.writeTransactions }
}
