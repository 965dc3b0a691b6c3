import Foundation
import SQLite
import Logging
import Supervisor

/// Everything needed to start one execution, rebuilt from the database (so a restart can redo it).
struct LaunchPlan {
    var executionPK: Int64
    var commandLine: String
    var taskDirectory: String
    var statusDirectory: String
    var environment: [String: String]
    var resourceFiles: [ResourceFile]
    var isAdmin: Bool
    /// The node's root folder; `taskDirectory` lies beneath it.
    var nodeRoot: String
    /// The account non-admin work runs as (`execution.uid`); nil for admin work and when the engine is
    /// not root.
    var uid: UInt32?
    /// A reason to end it is recorded: it must not spawn.
    var killDecided: Bool
    /// The Slurm allocation (job id) its node is, when the node is a Slurm node: it runs as a step there.
    var slurmAllocation: String? = nil
}

extension Engine {
    /// The minimal system environment tasks start from; the daemon's own environment (which may hold
    /// secrets) is never passed on.
    static let systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Inserts an execution in state `starting` (inside the caller's transaction) and returns its key.
    /// The process is spawned only after the transaction commits.
    func beginExecution(
        _ db: Connection, kind: String, nodePK: Int64, jobPK: Int64?, taskPK: Int64?, attempt: Int,
        taskDirectory: String, wallClockMilliseconds: Int64?, retryCount: Int, requeueCount: Int, now: Date
    ) throws -> Int64 {
        guard let root = try db.scalar("SELECT root_dir FROM node WHERE pk = ?", [nodePK]).string else {
            throw BookendError.internalError("node row pk \(nodePK), column root_dir: no such node, or NULL")
        }
        let deadline = wallClockMilliseconds.flatMap { Timestamp.deadline(after: now, milliseconds: $0) }
        let pk = try ExecutionStore.insertStarting(db, kind: kind, nodePK: nodePK, nodeRoot: root, jobPK: jobPK, taskPK: taskPK,
            attempt: attempt, taskDirectory: taskDirectory, startTime: Timestamp.string(now), deadline: deadline,
            retryCount: retryCount, requeueCount: requeueCount)
        try assignAccount(db, executionPK: pk, kind: kind, nodePK: nodePK, jobPK: jobPK, taskPK: taskPK)
        return pk
    }

    /// What the shim (`pid`, `exit`, each first written under a `.tmp` name) and a Slurm step
    /// (`step-exit`) write in a status folder; nothing else ever is.
    nonisolated static let statusFiles = ["exit", "exit.tmp", "pid", "pid.tmp", stepExitFile]

    /// Empties the status folders (`pid`, `exit`) of executions whose completion has just committed
    /// (their exit is recorded, so nothing reads them again) and keeps them for the next launches on
    /// their nodes (`StatusFolderPool`), or removes them. A crash before this leaves them to the sweep
    /// in `reconcile`.
    func removeRetiredStatusDirectories(_ directories: [String]) {
        for directory in directories where !directory.isEmpty && !statusFolders.retire(directory) {
            Engine.removeStatusDirectory(directory)
        }
    }

    /// Removes one status folder and the files the shim writes there. Something else put there is
    /// left to whole-folder removal (job delete, reconcile).
    nonisolated static func removeStatusDirectory(_ directory: String) {
        StatusFolderPool.remove(directory, files: statusFiles)
    }

    /// Rebuilds the launch plan of an execution from its rows.
    func launchPlan(_ db: Connection, _ pk: Int64) throws -> LaunchPlan {
        guard let row = try db.query(
            """
            SELECT e.*, n.id AS node_id, n.root_dir, n.is_dedicated, n.provider, n.slurm_job_id, p.id AS pool_id, p.start_task,
                j.id AS job_id, j.job_preparation_task, j.job_release_task, j.common_environment_settings,
                t.id AS task_id, t.command_line, t.spec AS task_spec
            FROM execution e JOIN node n ON n.pk = e.node_pk JOIN pool p ON p.pk = n.pool_pk
            LEFT JOIN job j ON j.pk = e.job_pk LEFT JOIN task t ON t.pk = e.task_pk WHERE e.pk = ?
            """, [pk]).first
        else { throw BookendError.internalError("execution \(pk) vanished") }
        let kind = try row.state(ExecutionKind.self, "kind", table: "execution")
        let joined = "execution (with its task, job and pool)"
        let root = try row.text("root_dir", table: joined)
        // The row is the execution joined with its task, job and pool: a stored spec that does not
        // decode fails the launch (naming the column), never runs an empty command or a default identity.
        let preparation = try row.json(JobPreparationTask.self, "job_preparation_task", table: joined)
        var commandLine = ""
        var ownSettings: [EnvironmentSetting] = []
        var files: [ResourceFile] = []
        var identity = UserIdentity.nonAdmin
        var taskID: String?
        switch kind {
        case .task:
            let spec = try StoredTaskSpec.decode(row, "task_spec", table: joined)
            commandLine = try row.text("command_line", table: joined)
            ownSettings = spec?.environmentSettings ?? []
            files = spec?.resourceFiles ?? []
            identity = spec?.userIdentity ?? .nonAdmin
            taskID = row["task_id"].string
        case .preparation:
            commandLine = preparation?.commandLine ?? ""
            ownSettings = preparation?.environmentSettings ?? []
            files = preparation?.resourceFiles ?? []
            identity = preparation?.userIdentity ?? .nonAdmin
            taskID = preparation?.id
        case .release:
            let release = try row.json(JobReleaseTask.self, "job_release_task", table: joined)
            commandLine = release?.commandLine ?? ""
            ownSettings = release?.environmentSettings ?? []
            files = release?.resourceFiles ?? []
            identity = release?.userIdentity ?? .nonAdmin
            taskID = release?.id
        case .start:
            let start = try row.json(StartTask.self, "start_task", table: joined)
            commandLine = start?.commandLine ?? ""
            ownSettings = start?.environmentSettings ?? []
            files = start?.resourceFiles ?? []
            identity = start?.userIdentity ?? .nonAdmin
        }
        let taskDirectory = try row.text("task_dir", table: joined)
        let workingDirectory = (taskDirectory as NSString).appendingPathComponent("wd")
        let uid = row["uid"].int64.flatMap { UInt32(exactly: $0) }
        let user = identity.isAdmin || !isRoot ? Engine.currentUserName() : uid.map(TaskAccounts.name) ?? Engine.currentUserName()
        // Precedence, low to high: system, the job's common settings (not for start tasks), the task's
        // own settings, then the Batch-defined variables, which cannot be overridden.
        var environment: [String: String] = ["PATH": Engine.systemPath, "LANG": "C.UTF-8"]
        if kind != .start {
            for setting in try row.json([EnvironmentSetting].self, "common_environment_settings", table: joined) ?? [] {
                environment[setting.name] = setting.value ?? ""
            }
        }
        for setting in ownSettings { environment[setting.name] = setting.value ?? "" }
        let shared = (root as NSString).appendingPathComponent("shared")
        let scope = identity.isTaskScope ? "Task" : "Pool"
        var batch: [String: String] = [
            "AZ_BATCH_ACCOUNT_NAME": configuration.accountName,
            "AZ_BATCH_ACCOUNT_URL": configuration.accountURL,
            "AZ_BATCH_POOL_ID": try row.text("pool_id", table: joined),
            "AZ_BATCH_NODE_ID": try row.text("node_id", table: joined),
            "AZ_BATCH_NODE_IS_DEDICATED": try row.int64("is_dedicated", table: joined) == 1 ? "true" : "false",
            "AZ_BATCH_NODE_ROOT_DIR": root,
            "AZ_BATCH_NODE_SHARED_DIR": shared,
            "AZ_BATCH_NODE_STARTUP_DIR": (root as NSString).appendingPathComponent("startup"),
            "AZ_BATCH_NODE_MOUNTS_DIR": (root as NSString).appendingPathComponent("fsmounts"),
            "AZ_BATCH_TASK_DIR": taskDirectory,
            "AZ_BATCH_TASK_WORKING_DIR": workingDirectory,
            "AZ_BATCH_CERTIFICATES_DIR": (taskDirectory as NSString).appendingPathComponent("certs"),
            "AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES": "0",
            "AZ_BATCH_TASK_USER": user,
            "AZ_BATCH_TASK_USER_IDENTITY": scope + (identity.isAdmin ? "Admin" : "NonAdmin"),
        ]
        if kind != .start {
            let jobID = try row.text("job_id", table: joined)
            batch["AZ_BATCH_JOB_ID"] = jobID
            batch["AZ_BATCH_TASK_ID"] = taskID ?? ""
            if let preparation, kind != .preparation {
                let preparationDirectory = (root as NSString).appendingPathComponent(
                    "workitems/\(jobID)/job-1/\(preparation.id ?? "jobpreparation")")
                batch["AZ_BATCH_JOB_PREP_DIR"] = preparationDirectory
                batch["AZ_BATCH_JOB_PREP_WORKING_DIR"] = (preparationDirectory as NSString).appendingPathComponent("wd")
            }
        }
        environment.merge(batch) { _, batchValue in batchValue }
        environment["HOME"] = workingDirectory
        environment["PWD"] = workingDirectory
        environment["USER"] = user
        // Non-admin work finds programs in shared/ and its working folder, as on Azure. Admin work does
        // not: both are writable by non-admin tasks, and a bare program name must never run something
        // one of them planted with root's rights.
        if !identity.isAdmin {
            environment["PATH"] = (environment["PATH"] ?? Engine.systemPath) + ":\(shared):\(workingDirectory)"
        }
        return LaunchPlan(
            executionPK: pk, commandLine: commandLine, taskDirectory: taskDirectory,
            statusDirectory: try row.text("status_dir", table: joined), environment: environment, resourceFiles: files,
            isAdmin: identity.isAdmin, nodeRoot: root, uid: identity.isAdmin ? nil : uid,
            killDecided: try row.optionalState(KillReason.self, "kill_reason", table: joined) != nil,
            slurmAllocation: try row.text("provider", table: joined) == NodeProviderKind.slurm.rawValue
                ? try row.text("slurm_job_id", table: joined) : nil)
    }

    /// Spawns the planned executions (after their `starting` rows committed). Each process's identity
    /// is stored by the next pass's apply transaction (`rememberSpawned`); launch failures are recorded at
    /// once, in one transaction.
    func launch(_ pks: [Int64]) {
        guard !pks.isEmpty else { return }
        var identities: [(Int64, ProcessIdentity, statusDirectory: String)] = []
        var failures: [(Int64, FailureInfo)] = []
        // Each request goes out as soon as it is ready: the first command starts while the next
        // ones' folders are prepared, not after all of them.
        var batch = Supervisor.LaunchBatch()
        var forking = Duration.zero
        var ready: [(Int64, LaunchRequest)] = []
        var nodeRoots: [String] = []
        var shortages: [(Int64, String)] = []
        var faults: [(Int64, Outcome)] = []
        for pk in pks {
            do {
                let plan = try launchPlanWithAccount(pk)
                // Ended before it spawned (its job ended in the same pass that committed it, say): it
                // never runs, and the next pass completes it with its kill reason's outcome.
                if plan.killDecided { continue }
                let owner = try ownerFor(plan)
                nodeRoots.append(plan.nodeRoot)
                try prepareDirectories(plan, owner: owner)
                // A recycled folder comes emptied of `pid` and `exit` (StatusFolderPool.take).
                let recycled = statusFolders.take(plan.statusDirectory)
                if !plan.resourceFiles.isEmpty {
                    downloading.insert(pk)
                    let files = plan.resourceFiles
                    let workingDirectory = (plan.taskDirectory as NSString).appendingPathComponent("wd")
                    let storage = storageDirectory
                    let ownerIDs = owner.map { (uid: $0.uid, gid: $0.gid) }
                    // Downloads block (network, disk) on a thread of their own, never on the engine's queue
                    // or the cooperative pool; the result comes back to the engine's queue.
                    ResourceFiles.detach { [weak self] in
                        let failure = ResourceFiles.download(files, into: workingDirectory, storage: storage, owner: ownerIDs)
                        self?.onQueue { engine in engine.downloadFinished(pk, failure) }
                    }
                    continue
                }
                switch request(plan, owner: owner) {
                case .success(var request):
                    request.statusDirectoryPrepared = recycled
                    ready.append((pk, request))
                    let forkStarted = ContinuousClock.now
                    batch.start(request)
                    forking += ContinuousClock.now - forkStarted
                case .failure(let failure): failures.append((pk, failure))
                }
            } catch let error as NodeFolders.UnsafeFolder {
                if Engine.isShortage(error.reason) { shortages.append((pk, "\(error)")); continue }
                // The task's own folder holds something that is not a folder, a link left by an earlier
                // attempt, say: the task cannot start, and nothing was followed.
                failures.append((pk, FailureInfo(code: "CommandLaunchFailed", message: "The task folder cannot be prepared: \(error)")))
            } catch {
                if Engine.isShortage("\(error)") { shortages.append((pk, "\(error)")); continue }
                failures.append((pk, FailureInfo(category: "servererror", code: "Unknown", message: "\(error)")))
            }
        }
        // All shims are forked before any exec is awaited: with several tasks to start (a pass that
        // collected several exits), their start-ups overlap instead of queueing on this thread.
        // A deferred commit (the pass's, a submission's) is synced while the shims start: the sync
        // and the commands' start-up overlap, and neither waits for the other. A failed sync is
        // tried again, and logged, by `finishAfterCommit`.
        let launchStarted = ContinuousClock.now
        var syncTook = Duration.zero
        let launched = batch.finish {
            let syncStarted = ContinuousClock.now
            try? syncCommitted()
            syncTook = ContinuousClock.now - syncStarted
        }
        if !ready.isEmpty { metrics.record(metrics.launchDuration, since: launchStarted + syncTook - forking) }
        for ((pk, request), result) in zip(ready, launched) {
            switch result {
            case .success(let identity): identities.append((pk, identity, request.statusDirectory))
            case .failure(let error) where error.stage == "status": faults.append((pk, Engine.identityNotRecorded(request, error)))
            // Nothing of the command ran (no fork, or it stopped before its exec): it can wait for the resource.
            case .failure(let error) where Engine.shortageErrnos.contains(error.errno): shortages.append((pk, Engine.shortage(request, error)))
            case .failure(let error): failures.append((pk, Engine.launchFailure(request, error)))
            }
        }
        rememberSpawned(identities)
        recordLaunchFailures(failures.map { ($0.0, Outcome.preProcessing($0.1)) } + faults)
        deferLaunches(shortages)
        // After the spawns, not before: the folders of the next launches on these nodes are made
        // while these commands start.
        for root in Set(nodeRoots) { taskFolders.refill(nodeRoot: root) }
    }

    /// What the machine ran short of, not what the task asked for: too many open descriptors (a
    /// flood of connections), memory, processes, disk space.
    static let shortageErrnos: Set<Int32> = [EMFILE, ENFILE, ENOMEM, EAGAIN, ENOSPC, EDQUOT]

    /// What a deferred launch lacks, for the log and `whyWaiting`. The kernel refuses the exec with
    /// EAGAIN when the command's account already holds more processes than its cap: that one is the
    /// account's, not the machine's, and is said so.
    static func shortage(_ request: LaunchRequest, _ error: SupervisorError) -> String {
        if error.errno == EAGAIN, error.stage == "exec", let limit = request.processLimit, let account = request.runAs {
            return "its account, uid \(account.uid), holds the \(limit) processes and threads --task-process-limit allows it, shared by the tasks of a pool with scope pool"
        }
        return "\(error)"
    }

    static func isShortage(_ text: String) -> Bool {
        shortageErrnos.contains { text.contains(String(cString: strerror($0))) }
    }

    /// Launches that failed because the machine lacked a resource stay `starting` (their slot held)
    /// and are tried again later, 1 s after the first failure and twice as long after each next one
    /// (at most 30 s; `DeferredLaunches.record`), and `whyWaiting` names the shortage. Why: such a failure says nothing about the task, and recording it as the task's
    /// `CommandLaunchFailed` failed it for good, as a user error, when anyone who could reach the port
    /// filled the daemon's descriptor table for a few seconds. Why not a requeue: while the shortage
    /// lasts, each pass would dispatch, fail and requeue again, a row and events each time.
    func deferLaunches(_ shortages: [(Int64, String)]) {
        for (pk, reason) in shortages {
            let (attempts, delay) = deferredLaunches.record(pk, reason: reason)
            // Said when it starts and then every tenth try, not once a second for as long as it lasts.
            if attempts == 1 || attempts % 10 == 0 {
                logger.warning("execution \(pk): cannot start now, the machine lacks a resource (\(reason)); trying again in \(delay) (attempt \(attempts))")
            }
        }
    }

    /// Tries the deferred launches that are due (from each pass), skipping any that ended meanwhile
    /// (a terminate completes one that never spawned).
    func launchDeferred() {
        guard !deferredLaunches.isEmpty else { return }
        let now = ContinuousClock.now
        var ready: [Int64] = []
        for pk in deferredLaunches.due(at: now) {
            let row = try? db.query("SELECT state, kill_reason FROM execution WHERE pk = ?", [pk]).first
            guard let row, row["state"].string == ExecutionState.starting.rawValue, row["kill_reason"] == .null else {
                deferredLaunches.remove(pk)
                continue
            }
            ready.append(pk)
        }
        guard !ready.isEmpty else { return }
        // Parked while they launch: one short again gets a new `due` from `deferLaunches` (its attempts
        // counted on); the others are launched, or failed for a reason of their own, and leave.
        let parked = now + .seconds(86_400)
        deferredLaunches.park(ready, until: parked)
        launch(ready)
        deferredLaunches.removeParked(ready, at: parked)
    }

    func downloadFinished(_ pk: Int64, _ failure: FailureInfo?) {
        downloading.remove(pk)
        guard (try? db.scalar("SELECT state FROM execution WHERE pk = ?", [pk]).string).flatMap(ExecutionState.init(rawValue:)) == .starting,
            (try? db.scalar("SELECT kill_reason FROM execution WHERE pk = ?", [pk])) == .null
        else { return }
        if let failure {
            recordLaunchFailures([(pk, .preProcessing(failure))])
            return
        }
        do {
            // Its status folder was taken in `launch`, before the download began.
            let plan = try launchPlanWithAccount(pk)
            switch spawn(plan, owner: try ownerFor(plan)) {
            case .success(let identity): rememberSpawned([(pk, identity, plan.statusDirectory)])
            case .failure(let failure): recordLaunchFailures([(pk, .preProcessing(failure))])
            }
        } catch {
            recordLaunchFailures([(pk, .preProcessing(FailureInfo(category: "servererror", code: "Unknown", message: "\(error)")))])
        }
    }

    /// Processes just spawned: watched from now on, and stored by the next pass (group commit), which
    /// an exit, a submission or the timer starts. Not woken here: a pass started only to store them
    /// would commit once more per task, which is what deferring the record saves.
    private func rememberSpawned(_ identities: [(Int64, ProcessIdentity, statusDirectory: String)]) {
        guard !identities.isEmpty else { return }
        CrashPoint.hit("launch.after-spawn")
        for (pk, identity, statusDirectory) in identities {
            spawnedUnrecorded[pk] = identity
            watchedExecutions[identity] = pk
            recentLaunches.add(pk: pk, identity: identity, statusDirectory: statusDirectory)
            watcher.watch(identity)
        }
    }

    /// Completes executions that could not start (no program, no folder, a failed download), with
    /// whatever follows from each (a retry, the next task), in one transaction.
    private func recordLaunchFailures(_ failures: [(Int64, Outcome)]) {
        guard !failures.isEmpty else { return }
        CrashPoint.hit("launch.after-spawn")
        var followUps: [Int64] = []
        for (pk, outcome) in failures {
            if case .fault(let info) = outcome { logger.error("execution \(pk): \(info.code): \(info.message)") }
        }
        do {
            try transaction { db in
                let now = Date()
                for (pk, outcome) in failures {
                    if let execution = try ExecutionRecord.read(db, pk: pk) {
                        followUps += try finishExecution(db, execution, outcome, now: now)
                    }
                }
            }
        } catch {
            // They complete as failed once a transaction commits (recordUnrecordedOutcomes).
            logger.error("recording launch failures failed: \(error)")
            for (pk, outcome) in failures { unrecordedOutcomes[pk] = outcome }
        }
        CrashPoint.hit("launch.after-record")
        launch(followUps)
    }

    /// The launch plan, after recording an account for non-admin work committed by a Bookend that had
    /// none (before migration 6, or not running as root then) and started only now.
    private func launchPlanWithAccount(_ pk: Int64) throws -> LaunchPlan {
        let plan = try launchPlan(db, pk)
        guard isRoot, !plan.isAdmin, plan.uid == nil else { return plan }
        try transaction { db in
            guard let execution = try ExecutionRecord.read(db, pk: pk) else { return }
            try assignAccount(db, executionPK: pk, kind: execution.kind.rawValue, nodePK: execution.nodePK,
                jobPK: execution.jobPK, taskPK: execution.taskPK)
        }
        return try launchPlan(db, pk)
    }

    /// The account `plan` runs as: nil (the engine's own) for admin work and when not root.
    private func ownerFor(_ plan: LaunchPlan) throws -> RunAs? {
        guard isRoot, !plan.isAdmin else { return nil }
        guard let uid = plan.uid else {
            // `launchPlanWithAccount` records one; should that ever fail, the work must not run as root.
            throw BookendError(.internalError, "TaskAccountMissing", "execution \(plan.executionPK) has no task account recorded")
        }
        return RunAs(uid: uid, gid: uid)
    }

    /// Creates the execution's folder, `wd/` and `certs/` beneath the node root without following
    /// links, each mode 0700 and owned by the account the work runs as, so no other task account can
    /// read or write them. stdout.txt and stderr.txt left by an earlier attempt are given to that
    /// account too (the command opens them as itself).
    private func prepareDirectories(_ plan: LaunchPlan, owner: RunAs?) throws {
        guard plan.taskDirectory.hasPrefix(plan.nodeRoot + "/") else {
            throw NodeFolders.UnsafeFolder(path: plan.taskDirectory, reason: "not beneath the node root \(plan.nodeRoot)")
        }
        let relative = String(plan.taskDirectory.dropFirst(plan.nodeRoot.count + 1))
        let account = owner.map { (uid: uid_t($0.uid), gid: gid_t($0.gid)) } ?? (isRoot ? (uid: 0, gid: 0) : nil)
        let own = NodeFolders.Access(mode: 0o700, owner: account)
        let (parent, leaf) = try NodeFolders.makeParent(of: relative, beneath: plan.nodeRoot, intermediate: NodeFolders.Access(mode: 0o755, owner: nil))
        defer { close(parent) }
        // A first launch of this folder takes a tree made ahead (`TaskFolderPool`). A folder an earlier
        // execution left is reused when it is this account's (a retry), and made afresh when it is
        // another's (a preparation with scope `task` run again after a reboot gets a new account):
        // `descendReusing`. Its output files stay only when they are plainly the account's own.
        if let placed = try taskFolders.take(nodeRoot: plan.nodeRoot, into: parent, leaf, path: plan.taskDirectory, owner: account) {
            close(placed)
            return
        }
        let task = try NodeFolders.descendReusing(parent, leaf, access: own, path: plan.taskDirectory)
        defer { close(task) }
        for name in TaskFolderPool.folders {
            close(try NodeFolders.descendReusing(task, name, access: own, path: plan.taskDirectory + "/" + name))
        }
        if let account {
            for name in TaskFolderPool.files {
                do {
                    try NodeFolders.keepOnlyOwnedFile(task, name, owner: account)
                } catch let error as NodeFolders.UnsafeFolder {
                    throw NodeFolders.UnsafeFolder(path: plan.taskDirectory + "/" + error.path, reason: error.reason)
                }
            }
        }
    }

    private func spawn(_ plan: LaunchPlan, owner: RunAs?) -> Result<ProcessIdentity, FailureInfo> {
        request(plan, owner: owner).flatMap { request in
            Supervisor.launch([request])[0].mapError { Engine.launchFailure(request, $0) }
        }
    }

    private static func launchFailure(_ request: LaunchRequest, _ error: SupervisorError) -> FailureInfo {
        var message = "Starting \(request.arguments[0]) failed: \(error.message)"
        if let stage = error.stage { message += " (at \(stage))" }
        if error.errno != 0 { message += ": \(String(cString: strerror(error.errno)))" }
        return FailureInfo(code: "CommandLaunchFailed", message: message)
    }

    /// The shim started the command but could not write its identity (`pid`), so it killed it: the
    /// command may have run for a moment, and running it again could repeat what it did. Not the
    /// task's fault, and not retried (as `ExitStatusNotRecorded`); `DiskFull` when that was why.
    private static func identityNotRecorded(_ request: LaunchRequest, _ error: SupervisorError) -> Outcome {
        let reason = error.errno != 0 ? String(cString: strerror(error.errno)) : "unknown error"
        return .fault(FailureInfo(category: "servererror", code: error.errno == ENOSPC || error.errno == EDQUOT ? "DiskFull" : "LaunchNotRecorded",
            message: "\(request.arguments[0]) was started, but its process could not be recorded in \(request.statusDirectory)/pid (\(reason)); it was killed and is not run again",
            details: [NameValuePair(name: "Errno", value: "\(error.errno)")]))
    }

    /// What to start for `plan`, or why it cannot start (admin without root, unparsable command
    /// line, program not found).
    private func request(_ plan: LaunchPlan, owner: RunAs?) -> Result<LaunchRequest, FailureInfo> {
        if plan.isAdmin, !isRoot {
            return .failure(FailureInfo(code: "CommandLaunchFailed",
                message: "The task asks for admin elevation, but Bookend is not running as root and cannot grant it"))
        }
        let arguments: [String]
        do {
            arguments = try CommandLineSplitter.split(plan.commandLine)
        } catch {
            return .failure(FailureInfo(code: "CommandLaunchFailed", message: "The command line cannot be parsed: \(error.message)"))
        }
        let workingDirectory = (plan.taskDirectory as NSString).appendingPathComponent("wd")
        guard let executable = Supervisor.resolveExecutable(arguments[0], path: plan.environment["PATH"], workingDirectory: workingDirectory) else {
            return .failure(FailureInfo(code: "CommandProgramNotFound", message: "The program \(arguments[0]) was not found or is not executable"))
        }
        var launch = LaunchRequest(
            executablePath: executable, arguments: arguments, environment: plan.environment, workingDirectory: workingDirectory,
            stdoutPath: (plan.taskDirectory as NSString).appendingPathComponent("stdout.txt"),
            stderrPath: (plan.taskDirectory as NSString).appendingPathComponent("stderr.txt"),
            statusDirectory: plan.statusDirectory, runAs: owner,
            // The apply transaction that records the exit is the outcome's durable copy only when
            // commits are synced (FULL); with NORMAL the shim's fsynced `exit` file stays that copy.
            exitAlwaysDurable: configuration.synchronous != .full)
        // Only a task account is capped: its processes are its own. Admin work runs as root (which
        // the kernel never caps), and without root the command runs as the engine's own user.
        if owner != nil { launch.processLimit = configuration.taskProcessLimit.map { UInt32(clamping: $0) } }
        return wrapForProvider(plan, launch)
    }

    /// Where blob containers of `storageContainerUrl` / `autoStorageContainerName` resource files live.
    public nonisolated var storageDirectory: String { (dataDirectory as NSString).appendingPathComponent("storage") }

    static func currentUserName() -> String {
        guard let entry = getpwuid(geteuid()) else { return "\(geteuid())" }
        return String(cString: entry.pointee.pw_name)
    }

    /// Sends SIGKILL to a live execution's process group right away (task or job deletion).
    func killNow(_ row: Row) {
        guard let pid = row["pid"].int64, let start = row["pid_start_time"].int64 else { return }
        _ = Supervisor.signalGroup(ProcessIdentity(pid: Int32(pid), startTime: UInt64(bitPattern: start)), SIGKILL)
    }

    /// Records why Bookend will end a task's live execution; the loop sends the signals after commit.
}
