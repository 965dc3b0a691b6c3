import Foundation
import Logging
import SQLite
import Supervisor

// The engine's side of the Slurm provider: the pass step that follows allocations, the launch seam
// that runs an execution as a job step, and reading a step's exit status. See docs/slurm.md.

extension Engine {
    /// The provider and partition a new node of the pool gets (inside the caller's transaction, right
    /// after its row was inserted): the pool's `bookend.nodeProvider` metadata, else the engine's default.
    func assignNodeProvider(_ db: Connection, nodePK: Int64, poolPK: Int64) throws {
        let metadata = decodeJSON([MetadataItem].self, try db.scalar("SELECT metadata FROM pool WHERE pk = ?", [poolPK]).string) ?? []
        let choice = NodeProviderChoice.choose(metadata: metadata, defaultProvider: configuration.nodeProvider,
            defaultPartition: configuration.slurm.partition)
        switch choice.provider {
        case .local: return
        case .slurm:
            // No address until the allocation runs: the node boots only then (`advanceNodes`).
            try NodeStore.assignSlurm(db, pk: nodePK, partition: choice.partition,
                nodesDirectory: configuration.slurm.nodeRoot.map { Engine.absoluteNodesDirectory($0, dataDirectory: dataDirectory) })
        }
    }

    /// Pass step: follows the allocations of Slurm nodes (inside the apply transaction, before nodes
    /// advance). Stores job ids `sbatch` answered and the host a running allocation landed on (which
    /// lets the node boot); a node whose allocation ended outside Bookend (`scancel`, time limit, node
    /// failure) leaves the pool like a lost machine, its work is requeued, and a replacement node is
    /// asked for; a removed node's allocation is cancelled. Slurm itself is never called here: the
    /// provider's thread does that and this step reads what it last saw.
    func followSlurmAllocations(_ db: Connection, now: Date) throws {
        let rows = try db.query(
            """
            SELECT n.pk, n.id, n.state, n.is_dedicated, n.slurm_partition, n.slurm_job_id, n.slurm_host, n.removed_time,
                p.pk AS pool_pk, p.id AS pool_id, p.task_slots_per_node, p.deleted_time AS pool_deleted
            FROM node n JOIN pool p ON p.pk = n.pool_pk
            WHERE n.provider = 'slurm' AND n.slurm_released_time IS NULL
            """)
        guard !rows.isEmpty || slurm.snapshot().generation > 0 else { return }
        let seen = slurm.snapshot()
        let nowText = Timestamp.string(now)
        var wanted: [SlurmProvider.Request] = []
        var watched: Set<String> = []
        var releases: Set<String> = []
        for row in rows {
            let table = "node"
            let pk = try row.int64("pk", table: table)
            let nodeID = try row.text("id", table: table)
            var jobID = try row.optionalText("slurm_job_id", table: table)
            if jobID == nil, let submitted = seen.submitted[pk] {
                try NodeStore.recordAllocation(db, pk: pk, slurmJobID: submitted)
                jobID = submitted
            }
            let removed = try row.optionalText("removed_time", table: table) != nil
            let name = "bookend-\(try row.text("pool_id", table: "pool"))-\(nodeID)"
            // The id names another job now (slurmctld lost ours and reused its id): ours is gone.
            let foreign = seen.allocation(jobID ?? "").map { !$0.isGone && $0.name != name } ?? false
            if removed {
                guard let jobID else {
                    // Never submitted (removed while its sbatch had not answered): nothing to cancel.
                    if seen.submitted[pk] == nil {
                        try NodeStore.markAllocationReleased(db, pk: pk, now: nowText)
                    }
                    continue
                }
                if seen.released.contains(jobID) || seen.allocation(jobID)?.isGone == true || foreign {
                    try NodeStore.markAllocationReleased(db, pk: pk, now: nowText)
                } else {
                    releases.insert(jobID)
                }
                continue
            }
            guard let jobID else {
                wanted.append(SlurmProvider.Request(nodePK: pk, name: name,
                    cpus: Int(try row.int64("task_slots_per_node", table: "pool")),
                    partition: try row.optionalText("slurm_partition", table: table)))
                continue
            }
            watched.insert(jobID)
            guard let allocation = seen.allocation(jobID) else { continue }
            let state = try row.state(NodeState.self, table: table)
            let wasRunning = try row.optionalText("slurm_host", table: table) != nil
            // Ended, or no longer running after it ran (suspended, or started again by Slurm: its
            // steps are gone either way), or its id reused by another job: the node is lost.
            if allocation.isGone || foreign || (wasRunning && !allocation.isRunning) {
                guard state != .leavingpool else { continue }
                // Leaving ends (and requeues) its executions and owes preparation again wherever the
                // job's next task lands; the pool keeps its size with a new node. A stopped allocation
                // that still exists is cancelled once the node is removed.
                logger.warning("Slurm allocation \(jobID) of node \(nodeID) is lost (\(foreign ? "its id now names \(allocation.name)" : allocation.state)): the node leaves the pool and a replacement is requested")
                try NodeStore.transition(db, pk: pk, on: .leave, now: nowText, log: &pendingEvents)
                if try row.optionalText("pool_deleted", table: "pool") == nil {
                    let dedicated = try row.int64("is_dedicated", table: table) == 1
                    try addNodes(db, poolPK: try row.int64("pool_pk", table: "pool"), poolID: try row.text("pool_id", table: "pool"),
                        dedicated: dedicated ? 1 : 0, lowPriority: dedicated ? 0 : 1, now: nowText)
                }
            } else if allocation.isRunning, !wasRunning {
                try NodeStore.recordSlurmHost(db, pk: pk, host: allocation.host)
            }
        }
        slurm.update(wanted: wanted, watched: watched, releases: releases)
    }

    /// What a node shows about its provider: a Slurm node says so while Slurm does not answer, or
    /// while Slurm refuses its allocation.
    nonisolated func nodeProviderErrors(provider: String?, nodePK: Int64?) -> [NodeError]? {
        guard provider == NodeProviderKind.slurm.rawValue else { return nil }
        let seen = slurm.snapshot()
        if !seen.available {
            return [NodeError(code: "SlurmUnavailable",
                message: "The Slurm cluster does not answer; work already running goes on, nothing new starts here until it does: \(seen.error ?? "")")]
        }
        if let nodePK, let refused = seen.submitErrors[nodePK] {
            return [NodeError(code: "SlurmAllocationRefused", message: refused)]
        }
        return nil
    }

    /// Whether Slurm answered its last round: while it does not, no new work goes onto Slurm nodes
    /// (a step cannot start), and work already running there is left alone. Before the first round
    /// (just after a restart) nothing is known yet: an allocation lost meanwhile must make its node
    /// leave before work is put on it.
    var slurmAvailable: Bool {
        let seen = slurm.snapshot()
        return seen.available && seen.generation > 0
    }

    /// The exit status of an execution, as the pass and reconcile act on it. For a job step, the
    /// shim's `exit` file holds how `srun` ended; the command's own exit status is what the step wrote
    /// (`step-exit`). A step that ended without one never ran its command to the end (Slurm could not
    /// start it, or its allocation was lost): that is reported as no status, so the execution counts
    /// as lost and is requeued, never failed for Slurm's sake.
    func executionStatus(_ execution: ExecutionRecord) -> ExitStatus? {
        guard let status = Supervisor.readStatus(in: execution.statusDirectory) else { return nil }
        switch status {
        case .launchFailed: return status
        case .exited, .signaled:
            guard (try? db.scalar("SELECT provider FROM node WHERE pk = ?", [execution.nodePK]).string) == NodeProviderKind.slurm.rawValue
            else { return status }
            guard let bytes = FileManager.default.contents(atPath: (execution.statusDirectory as NSString).appendingPathComponent(Engine.stepExitFile)),
                let code = Int32(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
            else { return nil }
            return .exited(code)
        }
    }

    /// Whether the pass should wait before recording the loss of an execution that ended without an
    /// exit status: on a Slurm node, until Slurm has been asked whether the allocation is still there.
    func holdsSlurmLoss(_ execution: ExecutionRecord) -> Bool {
        guard execution.killReason == nil,
            (try? db.scalar("SELECT provider FROM node WHERE pk = ?", [execution.nodePK]).string) == NodeProviderKind.slurm.rawValue
        else { return false }
        return slurm.holdsLoss(execution.pk)
    }

    /// Where a step writes its command's exit status, in the execution's status folder.
    static let stepExitFile = "step-exit"

    /// The launch seam: on a Slurm node, the shim runs `srun` in the node's allocation instead of the
    /// command, and the step runs the command. `srun` stays the engine's user (the allocation's owner);
    /// the step drops to the execution's account itself (`setpriv`) before the command runs, as the
    /// shim does locally. The shim's pid/exit files, adoption and signals work as for local work: a
    /// SIGTERM to the shim's group reaches `srun`, which cancels the step.
    func wrapForProvider(_ plan: LaunchPlan, _ request: LaunchRequest) -> Result<LaunchRequest, FailureInfo> {
        guard let allocation = plan.slurmAllocation else { return .success(request) }
        let commands: SlurmCommands
        switch SlurmCommands.find() {
        case .success(let found): commands = found
        case .failure(let error):
            return .failure(FailureInfo(category: "servererror", code: "SlurmUnavailable", message: "\(error)"))
        }
        let stepExit = (plan.statusDirectory as NSString).appendingPathComponent(Engine.stepExitFile)
        // Records the command's status beside the shim's, then exits with it. Only builtins: no process
        // more per step. The file is read only after the shim's own `exit` file exists, that is after
        // srun returned, after this wrote it; a step killed mid-write leaves it empty, which reads as
        // no status (lost), never as a wrong code.
        let script = #"f=$1; shift; "$@"; c=$?; echo "$c" > "$f"; exit $c"#
        var arguments = [commands.srun, "--jobid=\(allocation)", "--overlap", "--nodes=1", "--ntasks=1", "--cpus-per-task=1",
            "--job-name=bookend-execution-\(plan.executionPK)", "--chdir=\(request.workingDirectory)", "--quiet",
            "--", "/bin/sh", "-c", script, "bookend-step", stepExit]
        if let account = request.runAs {
            arguments += ["/usr/bin/setpriv", "--reuid=\(account.uid)", "--regid=\(account.gid)", "--clear-groups", "--"]
        }
        arguments += [request.executablePath] + request.arguments.dropFirst()
        var wrapped = request
        wrapped.executablePath = commands.srun
        wrapped.arguments = arguments
        wrapped.runAs = nil
        // srun reads the cluster's configuration as any Slurm user's shell would; it passes the
        // rest of this environment (the task's) on to the step.
        for (name, value) in commands.environment where name != "PATH" { wrapped.environment[name] = value }
        return .success(wrapped)
    }
}
