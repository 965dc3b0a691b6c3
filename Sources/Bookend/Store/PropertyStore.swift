import SQLite

/// Owns the SQL of updates that change no state: a PATCH or PUT of a pool's, job's, task's or node's
/// properties. Every such write gives the row a new ETag (and `last_modified` where the table has it),
/// so that a client's If-Match sees the change.
enum PropertyStore {
    enum Table: String {
        case pool, job, task, node

        /// node has no `last_modified` (its properties are the engine's, not the client's).
        var hasLastModified: Bool {
            switch self {
            case .pool, .job, .task: true
            case .node: false
            }
        }
    }

    /// Writes `assignments` (column, value) to row `pk` with a new ETag. The columns are the caller's
    /// own names, never input.
    static func update(_ db: Connection, _ table: Table, pk: Int64, _ assignments: [(String, any SQLiteBindable)], now: String) throws {
        var sets = assignments.map { "\($0.0) = ?" } + ["e_tag = ?"]
        var arguments = assignments.map(\.1) + [Engine.newETag() as any SQLiteBindable]
        if table.hasLastModified {
            sets.append("last_modified = ?")
            arguments.append(now)
        }
        let changed = try db.run("UPDATE \(table.rawValue) SET \(sets.joined(separator: ", ")) WHERE pk = ?", arguments + [pk])
        guard changed == 1 else { throw BookendError.internalError("\(table.rawValue) pk \(pk) does not exist") }
    }
}
