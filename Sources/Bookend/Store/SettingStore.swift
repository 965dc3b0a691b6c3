import SQLite

/// Owns the `setting` table: the data directory's own name/value pairs (e.g. the task account uid block).
enum SettingStore {
    static func value(_ db: Connection, _ name: String) throws -> String? {
        try db.scalar("SELECT value FROM setting WHERE name = ?", [name]).string
    }

    static func set(_ db: Connection, _ name: String, _ value: String) throws {
        try db.run("INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", [name, value])
    }
}
