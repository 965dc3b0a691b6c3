import Foundation
import SQLite

/// What `$expand=stats` reports of a job or a task (Batch `JobStatistics`, `TaskStatistics`), from the
/// executions Bookend recorded. CPU time and I/O are not measured (the shim does not collect them)
/// and are reported as zero; see docs/decisions.md.
public struct ExecutionStatistics: Sendable, Hashable {
    /// When the job or task was created: the statistics cover its whole life.
    public var startTime: String
    /// When these figures were read.
    public var lastUpdateTime: String
    /// Time its task executions ran, every attempt, the running ones up to now.
    public var wallClockMilliseconds: Int64
    /// From each task's creation to the start of its latest execution.
    public var waitMilliseconds: Int64
    /// Completed tasks that succeeded and failed, and retries after a non-zero exit (job only).
    public var succeededTasks: Int
    public var failedTasks: Int
    public var taskRetries: Int
}

extension Engine {
    /// The statistics of a job's tasks (`GET /jobs/{id}?$expand=stats`). Reads every task and task
    /// execution of the job: asked for, not on every GET.
    public nonisolated func jobStatistics(id: String, now: Date = Date()) throws -> ExecutionStatistics {
        try readers.read { db in
            guard let job = try db.query("SELECT pk, creation_time FROM job WHERE id = ?", [id]).first else {
                throw BookendError.notFound("JobNotFound", "The job \(id)")
            }
            return try Engine.statistics(db, scope: "job_pk", pk: job.int64("pk", table: "job"),
                created: job.text("creation_time", table: "job"), now: now)
        }
    }

    /// The statistics of one task (`GET /jobs/{job}/tasks/{task}?$expand=stats`).
    public nonisolated func taskStatistics(jobID: String, taskID: String, now: Date = Date()) throws -> ExecutionStatistics {
        try readers.read { db in
            guard let task = try db.query(
                "SELECT t.pk, t.creation_time FROM task t JOIN job j ON j.pk = t.job_pk WHERE j.id = ? AND t.id = ?", [jobID, taskID]).first
            else {
                guard try db.scalar("SELECT count(*) FROM job WHERE id = ?", [jobID]).int ?? 0 > 0 else {
                    throw BookendError.notFound("JobNotFound", "The job \(jobID)")
                }
                throw BookendError.notFound("TaskNotFound", "The task \(taskID)")
            }
            return try Engine.statistics(db, scope: "task_pk", pk: task.int64("pk", table: "task"),
                created: task.text("creation_time", table: "task"), now: now)
        }
    }

    /// `scope` is `job_pk` or `task_pk` (a column of both `task`, as `pk` for a task, and `execution`).
    private static func statistics(_ db: Connection, scope: String, pk: Int64, created: String, now: Date) throws -> ExecutionStatistics {
        let nowText = Timestamp.string(now)
        let tasks = scope == "job_pk" ? "job_pk" : "pk"
        let row = try db.query(
            """
            SELECT
              (SELECT count(*) FROM task WHERE \(tasks) = ?1 AND state = 'completed' AND result = 'success') AS succeeded,
              (SELECT count(*) FROM task WHERE \(tasks) = ?1 AND state = 'completed' AND result = 'failure') AS failed,
              (SELECT coalesce(sum(retry_count), 0) FROM task WHERE \(tasks) = ?1) AS retries,
              (SELECT coalesce(sum(max(0, julianday(coalesce(end_time, ?2)) - julianday(start_time))), 0) * 86400000.0
                 FROM execution WHERE \(scope) = ?1 AND kind = 'task') AS wall,
              (SELECT coalesce(sum(max(0, julianday(start_time) - julianday(creation_time))), 0) * 86400000.0
                 FROM task WHERE \(tasks) = ?1 AND start_time IS NOT NULL) AS wait
            """, [pk, nowText]).first
        return ExecutionStatistics(
            startTime: created, lastUpdateTime: nowText,
            wallClockMilliseconds: Int64((row?["wall"].double ?? 0).rounded()),
            waitMilliseconds: Int64((row?["wait"].double ?? 0).rounded()),
            succeededTasks: row?["succeeded"].int ?? 0, failedTasks: row?["failed"].int ?? 0, taskRetries: row?["retries"].int ?? 0)
    }
}
