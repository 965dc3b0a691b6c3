import SQLite

/// The folders of deleted tasks still to be removed (`task_folder_removal`, migration 13): written
/// in the transaction that deletes the task, so that a crash before the removal cannot leave the
/// folder behind for good (`Engine.finishTaskFolderRemovals`).
enum TaskFolderRemovalStore {
    struct Pending: Sendable {
        let pk: Int64
        let jobID: String
        let taskID: String
        let path: String
    }

    /// Records that `path`, the folder of the task being deleted, is to be removed; answers the row's key.
    static func record(_ db: Connection, jobID: String, taskID: String, path: String) throws -> Int64 {
        try db.run("INSERT INTO task_folder_removal (job_id, task_id, path) VALUES (?, ?, ?)", [jobID, taskID, path])
        return db.lastInsertRowID
    }

    /// Up to `limit` recorded removals after the key `after`, oldest first.
    static func pending(_ db: Connection, after: Int64, limit: Int) throws -> [Pending] {
        try db.query("SELECT pk, job_id, task_id, path FROM task_folder_removal WHERE pk > ? ORDER BY pk LIMIT ?", [after, Int64(limit)]).map { row in
            Pending(pk: try row.int64("pk", table: "task_folder_removal"), jobID: try row.text("job_id", table: "task_folder_removal"),
                taskID: try row.text("task_id", table: "task_folder_removal"), path: try row.text("path", table: "task_folder_removal"))
        }
    }

    /// Whether a task of exactly that id is stored in a job of exactly that id now (one added after
    /// the deletion, whose folder has the same path). Ids match without regard to case elsewhere,
    /// but a folder's name keeps the case it was made with. Each id is matched both ways: the
    /// case-blind match is the one the indexes answer (a job of a million tasks is not scanned).
    static func taskExists(_ db: Connection, jobID: String, taskID: String) throws -> Bool {
        try db.counted("""
            SELECT count(*) FROM task t JOIN job j ON j.pk = t.job_pk
            WHERE j.id = ? AND j.id = ? COLLATE BINARY AND t.id = ? AND t.id = ? COLLATE BINARY
            """, [jobID, jobID, taskID, taskID]) > 0
    }

    /// Forgets a removal that is done (or no longer wanted).
    static func forget(_ db: Connection, pk: Int64) throws {
        try db.run("DELETE FROM task_folder_removal WHERE pk = ?", [pk])
    }
}
