import Foundation
import SQLite

extension Engine {
    /// Up to `limit` tasks of a job in id order (case-insensitive), starting after `afterID`: one page
    /// of a list without loading the whole job.
    /// Reads on a reader connection, in one snapshot.
    public nonisolated func tasks(jobID: String, afterID: String?, limit: Int) throws -> [JobTask] {
        try readers.read { db in
            let job = try jobRow(db, jobID)
            return try db.query(
                "SELECT pk FROM task WHERE job_pk = ? AND (? IS NULL OR id > ? COLLATE NOCASE) ORDER BY id COLLATE NOCASE LIMIT ?",
                [job["pk"], afterID, afterID, limit]
            ).map { try task(db, pk: $0.int64("pk", table: "task")) }
        }
    }
}
