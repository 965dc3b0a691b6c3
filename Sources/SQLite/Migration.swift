/// One schema version: `NNNN_name.sql` parsed into its number and text.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Parses a file name of the form `NNNN_name.sql`.
    public init?(file: String, sql: String) {
        guard file.hasSuffix(".sql"), let underscore = file.firstIndex(of: "_"),
            let version = Int(file[..<underscore]), version > 0
        else { return nil }
        self.init(version: version, name: String(file[file.index(after: underscore)...].dropLast(4)), sql: sql)
    }
}

/// Why migrating failed.
public enum MigrationError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The file's `user_version` is newer than anything this code knows.
    case databaseNewerThanCode(path: String, databaseVersion: Int, knownVersion: Int)
    /// The list of migrations is not strictly increasing from 1 without gaps.
    case invalidMigrationList(String)

    public var description: String {
        switch self {
        case .databaseNewerThanCode(let path, let databaseVersion, let knownVersion):
            "\(path) has schema version \(databaseVersion), newer than this build of Bookend knows "
                + "(\(knownVersion)); use a newer Bookend or restore an older copy of the file"
        case .invalidMigrationList(let why): "invalid migration list: \(why)"
        }
    }
}

extension Connection {
    /// The schema version stored in the file (`PRAGMA user_version`).
    public func userVersion() throws(SQLiteError) -> Int {
        try scalar("PRAGMA user_version").int ?? 0
    }

    /// Applies every migration newer than the file's `user_version`, each in its own transaction that
    /// also sets `user_version`, and returns the resulting version.
    ///
    /// `beforeCommit` is called inside each migration's transaction (tests use it to crash there).
    @discardableResult
    public func migrate(_ migrations: [Migration], beforeCommit: (Migration) -> Void = { _ in }) throws -> Int {
        for (index, migration) in migrations.enumerated() where migration.version != index + 1 {
            throw MigrationError.invalidMigrationList(
                "expected version \(index + 1) at position \(index + 1), found \(migration.version) (\(migration.name))")
        }
        let known = migrations.last?.version ?? 0
        let current = try userVersion()
        if current > known {
            throw MigrationError.databaseNewerThanCode(path: path, databaseVersion: current, knownVersion: known)
        }
        // A new file takes the mode now, while it has no tables and the VACUUM that applies the mode
        // costs nothing; the tables are then created in it.
        if current == 0 { try settleAutoVacuum(migrations, upTo: known) }
        for migration in migrations where migration.version > current {
            // A migration that rebuilds a table others refer to asks for foreign keys off: the pragma
            // is a no-op inside a transaction, so it is applied here, around the migration's
            // transaction, and turned back on whatever happens. The foreign_key_check below still runs.
            let keysOff = migration.turnsOffForeignKeys
            if keysOff { try execute("PRAGMA foreign_keys = OFF") }
            defer { if keysOff { try? execute("PRAGMA foreign_keys = ON") } }
            try transaction { connection in
                // Another process may have applied this migration between reading `current` above and
                // taking the write lock here (BEGIN IMMEDIATE); re-read the version under the lock.
                let locked = try connection.userVersion()
                if locked > known {
                    throw MigrationError.databaseNewerThanCode(path: path, databaseVersion: locked, knownVersion: known)
                }
                guard locked < migration.version else { return }
                try connection.execute(migration.sql)
                // Rebuilt tables must not leave dangling references behind.
                let violations = try connection.query("PRAGMA foreign_key_check")
                if !violations.isEmpty {
                    throw SQLiteError(extendedCode: 787, message: "migration \(migration.version) leaves foreign key violations")
                }
                try connection.execute("PRAGMA user_version = \(migration.version)")
                beforeCommit(migration)
            }
        }
        try settleAutoVacuum(migrations, upTo: try userVersion())
        return try userVersion()
    }

    /// Gives the file the `auto_vacuum` mode the newest migration asks for (`PRAGMA auto_vacuum = …`
    /// in its SQL).
    ///
    /// The mode of a file that already has tables changes only with a `VACUUM`, and `VACUUM` cannot
    /// run inside the transaction a migration runs in: so the migration records the wish and this
    /// rewrites the file after the migrations have committed. It runs on every open until the file
    /// has the mode, so a crash between the migration's commit and the end of the `VACUUM` (which
    /// is itself atomic) only means it runs again on the next open.
    func settleAutoVacuum(_ migrations: [Migration], upTo version: Int) throws(SQLiteError) {
        guard let wanted = migrations.filter({ $0.version <= version }).compactMap(\.requestedAutoVacuum).last else { return }
        guard try scalar("PRAGMA auto_vacuum").int != wanted.rawValue else { return }
        try execute("PRAGMA auto_vacuum = \(wanted.name)")
        try execute("VACUUM")
    }
}

/// SQLite's `auto_vacuum` modes, with the numbers `PRAGMA auto_vacuum` reads back.
public enum AutoVacuum: Int, Sendable, CaseIterable {
    case none = 0, full = 1, incremental = 2

    public var name: String {
        switch self {
        case .none: "NONE"
        case .full: "FULL"
        case .incremental: "INCREMENTAL"
        }
    }
}

extension Migration {
    /// Whether the migration has `PRAGMA foreign_keys = OFF` on a line of its own: it rebuilds a table
    /// that other tables refer to, and dropping the old table with foreign keys on would delete (or
    /// refuse to delete) every row that refers to it.
    public var turnsOffForeignKeys: Bool { pragma("foreign_keys") == "off" }

    /// The mode a `PRAGMA auto_vacuum = MODE` statement on a line of its own in this migration sets.
    public var requestedAutoVacuum: AutoVacuum? {
        guard let value = pragma("auto_vacuum") else { return nil }
        return AutoVacuum.allCases.first { $0.name.lowercased() == value || String($0.rawValue) == value }
    }

    /// The value (lowercased) of the first `PRAGMA name = value` on a line of its own: what the
    /// migration asks of the runner, which applies it outside the migration's transaction.
    private func pragma(_ name: String) -> String? {
        for line in sql.split(separator: "\n") {
            let words = line.lowercased().split(whereSeparator: { " =;\t".contains($0) })
            if words.count == 3, words[0] == "pragma", words[1] == name { return String(words[2]) }
        }
        return nil
    }
}
