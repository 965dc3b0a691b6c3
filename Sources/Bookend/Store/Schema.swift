import SQLite

/// The schema, compiled in from `migrations/*.sql` by the EmbedMigrations build plugin.
public enum Schema {
    /// Every migration, in version order.
    public static let migrations: [Migration] = embeddedMigrations.compactMap { Migration(file: $0.file, sql: $0.sql) }

    /// The schema version this build writes.
    public static var version: Int { migrations.last?.version ?? 0 }

    /// The file name of the database inside a data directory.
    public static let databaseFileName = "bookend.db"
}
