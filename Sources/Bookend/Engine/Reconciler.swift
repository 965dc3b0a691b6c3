import Foundation
import SQLite
import Supervisor

extension Engine {
    /// Settles what a previous engine left behind, before anything new is dispatched: adopts
    /// executions still running, records the exits of those that ended while it was down, re-runs
    /// the ones that never spawned, and treats those that vanished as lost with their node.
    func reconcile() throws {
        let rows = try db.query("SELECT * FROM execution WHERE state <> 'completed' ORDER BY pk")
        var respawn: [Int64] = []
        var ended: [(Row, Outcome)] = []
        for row in rows {
            let statusDirectory = row["status_dir"].string ?? ""
            var identity: ProcessIdentity?
            if let pid = row["pid"].int64, let start = row["pid_start_time"].int64 {
                identity = ProcessIdentity(pid: Int32(pid), startTime: UInt64(bitPattern: start))
            } else {
                identity = Supervisor.readIdentity(in: statusDirectory)
            }
            if let status = Supervisor.readStatus(in: statusDirectory) {
                ended.append((row, outcome(for: row, status: status)))
            } else if let identity, Supervisor.isAlive(identity) {
                if row["pid"] == .null {
                    try db.run("UPDATE execution SET state = 'running', pid = ?, pid_start_time = ? WHERE pk = ?",
                        [identity.pid, Int64(bitPattern: identity.startTime), row["pk"]])
                }
                watcher.watch(identity)
            } else if identity != nil || row["kill_reason"] != .null {
                ended.append((row, outcome(for: row, status: nil)))
            } else {
                // Committed as starting but never spawned: starting it now runs it once, not twice.
                respawn.append(row["pk"].int64 ?? 0)
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
        launch(respawn)
    }
}
