import SQLite

/// The (job, node) record (`job_node`; on the wire `JobPreparationAndReleaseTaskExecutionInformation`):
/// whether preparation ran on the node for the job, and so whether a release is owed there.
struct JobNodeRecord {
    var jobPK: Int64
    var nodePK: Int64
    var phase: JobNodePhase
    var result: ExecutionResult?
    var retryCount: Int
    /// `node.boot_count` when preparation last started.
    var bootCount: Int

    init(_ row: Row) throws {
        let table = "job_node"
        jobPK = try row.int64("job_pk", table: table)
        nodePK = try row.int64("node_pk", table: table)
        do {
            phase = try JobNodePhase(preparation: row.state(PreparationState.self, "prep_state", table: table),
                release: row.optionalState(ReleaseState.self, "release_state", table: table))
        } catch let error as BookendError {
            throw row.corrupt(table, "prep_state, release_state", error.message)
        }
        result = try row.optionalState(ExecutionResult.self, "prep_result", table: table)
        retryCount = Int(try row.int64("prep_retry_count", table: table))
        bootCount = Int(try row.int64("prep_boot_count", table: table))
    }
}

/// Names for the event log.
struct JobNodeKey {
    var jobPK: Int64
    var nodePK: Int64
    var jobID: String
    var poolID: String
    var nodeID: String?
}

/// Owns the SQL that moves a (job, node) record between phases. Each write asks `JobNodeMachine`
/// first and is guarded by the columns of the phase it leaves.
enum JobNodeStore {
    static func read(_ db: Connection, jobPK: Int64, nodePK: Int64) throws -> JobNodeRecord? {
        try db.query("SELECT * FROM job_node WHERE job_pk = ? AND node_pk = ?", [jobPK, nodePK]).first.map(JobNodeRecord.init)
    }

    /// The first task of the job assigned to the node: the record starts in `preparationRunning`.
    static func insert(_ db: Connection, _ key: JobNodeKey, bootCount: Int, now: String, log: inout [EngineEvent]) throws {
        let phase = JobNodePhase.preparationRunning
        try db.run("INSERT INTO job_node (job_pk, node_pk, prep_state, prep_start_time, prep_boot_count) VALUES (?, ?, ?, ?, ?)",
            [key.jobPK, key.nodePK, phase.preparation.rawValue, now, bootCount])
        log.append(try EventLog.append(db, "preparation.running", pool: key.poolID, node: key.nodeID, job: key.jobID,
            to: PreparationState.running.rawValue, now: now))
    }

    /// Preparation runs again (rebooted node, lost attempt): its earlier result is cleared.
    static func runPreparation(
        _ db: Connection, _ key: JobNodeKey, from: JobNodePhase, bootCount: Int, now: String, log: inout [EngineEvent]
    ) throws {
        let to = try JobNodeMachine.next(from: from, on: .runPreparation)
        try update(db, key, from: from, to: to,
            "prep_start_time = ?, prep_end_time = NULL, prep_result = NULL, prep_exit_code = NULL, prep_failure_info = NULL, prep_boot_count = ?",
            [now, bootCount])
        log.append(try EventLog.append(db, "preparation.running", pool: key.poolID, node: key.nodeID, job: key.jobID,
            to: PreparationState.running.rawValue, now: now))
    }

    /// Non-zero exit with retries left: the retry is counted (no event; the next attempt is an execution).
    static func retryPreparation(_ db: Connection, _ key: JobNodeKey, from: JobNodePhase, now: String) throws {
        let to = try JobNodeMachine.next(from: from, on: .retryPreparation)
        try update(db, key, from: from, to: to, "prep_retry_count = prep_retry_count + 1, prep_last_retry_time = ?, prep_start_time = ?",
            [now, now])
    }

    /// Preparation ended with a result; `eligible` false keeps the job's tasks off the node.
    static func completePreparation(
        _ db: Connection, _ key: JobNodeKey, from: JobNodePhase, result: ExecutionResult, exitCode: Int32?, failureInfo: FailureInfo?,
        eligible: Bool, now: String, log: inout [EngineEvent]
    ) throws {
        let to = try JobNodeMachine.next(from: from, on: .completePreparation)
        try update(db, key, from: from, to: to,
            "prep_end_time = ?, prep_result = ?, prep_exit_code = ?, prep_failure_info = ?, eligible = ?",
            [now, result.rawValue, exitCode, failureInfo.map(encodeJSON), eligible])
        // The event stores the result, not the state.
        log.append(try EventLog.append(db, "preparation.completed", pool: key.poolID, node: key.nodeID, job: key.jobID,
            to: result.rawValue, now: now))
    }

    /// The job ends: a release is owed once on every node still in its pool whose preparation completed.
    static func oweReleases(_ db: Connection, jobPK: Int64) throws {
        let from = JobNodePhase.preparationCompleted
        let to = try JobNodeMachine.next(from: from, on: .oweRelease)
        try db.run(
            """
            UPDATE job_node SET release_state = ? WHERE job_pk = ? AND prep_state = ? AND release_state IS NULL
                AND node_pk IN (SELECT pk FROM node WHERE removed_time IS NULL)
            """, [to.release?.rawValue, jobPK, from.preparation.rawValue])
    }

    /// Whether node `nodePK` owes a release to a job that is ending now (terminating or deleting):
    /// one pending, or one its end is about to owe (preparation completed, no release yet).
    static func owesReleaseToAnEndingJob(_ db: Connection, nodePK: Int64) throws -> Bool {
        try db.scalar(
            """
            SELECT EXISTS (SELECT 1 FROM job_node r JOIN job j ON j.pk = r.job_pk
                WHERE r.node_pk = ? AND j.state IN (?, ?) AND j.job_release_task IS NOT NULL
                  AND (r.release_state = ? OR (r.prep_state = ? AND r.release_state IS NULL)))
            """,
            [nodePK, JobState.terminating.rawValue, JobState.deleting.rawValue, ReleaseState.pending.rawValue,
             JobNodePhase.preparationCompleted.preparation.rawValue]).int == 1
    }

    static func startRelease(_ db: Connection, _ key: JobNodeKey, now: String, log: inout [EngineEvent]) throws {
        let from = JobNodePhase.releasePending
        let to = try JobNodeMachine.next(from: from, on: .startRelease)
        try update(db, key, from: from, to: to, "release_start_time = ?", [now])
        log.append(try EventLog.append(db, "release.running", pool: key.poolID, node: key.nodeID, job: key.jobID,
            to: ReleaseState.running.rawValue, now: now))
    }

    /// The node rebooted mid-release: the release is owed again.
    static func interruptRelease(_ db: Connection, _ key: JobNodeKey) throws {
        let from = JobNodePhase.releaseRunning
        let to = try JobNodeMachine.next(from: from, on: .interruptRelease)
        try update(db, key, from: from, to: to, "release_start_time = NULL", [])
    }

    static func completeRelease(
        _ db: Connection, _ key: JobNodeKey, result: ExecutionResult, exitCode: Int32?, failureInfo: FailureInfo?, now: String,
        log: inout [EngineEvent]
    ) throws {
        let from = JobNodePhase.releaseRunning
        let to = try JobNodeMachine.next(from: from, on: .completeRelease)
        try update(db, key, from: from, to: to, "release_end_time = ?, release_result = ?, release_exit_code = ?, release_failure_info = ?",
            [now, result.rawValue, exitCode, failureInfo.map(encodeJSON)])
        // The event stores the result, not the state.
        log.append(try EventLog.append(db, "release.completed", pool: key.poolID, node: key.nodeID, job: key.jobID, to: result.rawValue, now: now))
    }

    /// One guarded write: the phase's two columns, plus `sets`, only if the row is in `from`.
    private static func update(
        _ db: Connection, _ key: JobNodeKey, from: JobNodePhase, to: JobNodePhase, _ sets: String, _ arguments: [any SQLiteBindable]
    ) throws {
        let changed = try db.run(
            "UPDATE job_node SET prep_state = ?, release_state = ?, \(sets) WHERE job_pk = ? AND node_pk = ? AND prep_state = ? AND release_state IS ?",
            [to.preparation.rawValue, to.release?.rawValue] + arguments + [key.jobPK, key.nodePK, from.preparation.rawValue, from.release?.rawValue])
        guard changed == 1 else {
            throw staleState("job_node", "(job_pk \(key.jobPK), node_pk \(key.nodePK))", expected: from.rawValue)
        }
    }
}
