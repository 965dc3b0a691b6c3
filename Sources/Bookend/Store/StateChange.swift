import SQLite

/// The guarded UPDATE of a state change of an entity that keeps its previous state (a job, a task):
/// the new state, the old one as the previous state with its time, a new ETag, and whatever columns
/// the particular change adds. One statement, guarded by `state = from`, so the check and the write
/// cannot be split by another writer; a row that moved meanwhile is a stale-state error.
struct StateChange {
    var sets = ["state = ?", "previous_state = state", "previous_state_transition_time = state_transition_time",
        "state_transition_time = ?", "e_tag = ?", "last_modified = ?"]
    var arguments: [any SQLiteBindable]

    init(to state: String, now: String) {
        arguments = [state, now, Engine.newETag(), now]
    }

    func run(_ db: Connection, _ table: String, pk: Int64, from: String) throws {
        let changed = try db.run("UPDATE \(table) SET \(sets.joined(separator: ", ")) WHERE pk = ? AND state = ?", arguments + [pk, from])
        guard changed == 1 else { throw staleState(table, "pk \(pk)", expected: from) }
    }
}
