import CSQLite

extension Connection {
    /// Copies this connection's database into `destination` with SQLite's online backup API
    /// (`sqlite3_backup_*`), `pagesPerStep` pages at a time, calling `progress(copied, total)` after
    /// each step.
    ///
    /// The copy is of one snapshot: a read transaction is held on this connection for the whole copy.
    /// Without it, any commit by another connection (the daemon's writer, every few milliseconds under
    /// load) would make the next step start the copy over, and a busy database would never finish. In
    /// WAL mode a reader never blocks the writer, so the daemon keeps committing meanwhile; copying in
    /// steps only keeps each step short. The destination is written in its own transaction per step.
    public func backup(
        into destination: Connection, pagesPerStep: Int32 = 256, progress: (_ copied: Int, _ total: Int) -> Void = { _, _ in }
    ) throws(SQLiteError) {
        try execute("BEGIN DEFERRED")
        do {
            // A deferred transaction takes its snapshot at the first read.
            _ = try query("SELECT count(*) FROM sqlite_schema")
            try copyPages(into: destination, pagesPerStep: pagesPerStep, progress: progress)
        } catch {
            if isInTransaction { try? execute("ROLLBACK") }
            throw error
        }
        try execute("COMMIT")
    }

    private func copyPages(
        into destination: Connection, pagesPerStep: Int32, progress: (Int, Int) -> Void
    ) throws(SQLiteError) {
        guard let backup = sqlite3_backup_init(destination.handle, "main", handle, "main") else {
            throw destination.error(code: sqlite3_errcode(destination.handle), sql: nil)
        }
        var code: Int32 = SQLITE_OK
        repeat {
            code = sqlite3_backup_step(backup, pagesPerStep)
            let total = Int(sqlite3_backup_pagecount(backup))
            progress(total - Int(sqlite3_backup_remaining(backup)), total)
            // BUSY/LOCKED: the destination is in use by someone else for a moment; try the step again.
            if code == SQLITE_BUSY || code == SQLITE_LOCKED { sqlite3_sleep(10) }
        } while code == SQLITE_OK || code == SQLITE_BUSY || code == SQLITE_LOCKED
        // "sqlite3_backup_finish() returns SQLITE_OK if no errors occurred during any step", else the
        // error of the failed step; it also releases the destination's locks.
        let finished = sqlite3_backup_finish(backup)
        guard code == SQLITE_DONE, finished == SQLITE_OK else {
            throw SQLiteError(
                extendedCode: sqlite3_extended_errcode(destination.handle),
                message: "online backup stopped: \(String(cString: sqlite3_errmsg(destination.handle)))")
        }
    }

    /// `PRAGMA integrity_check`: `["ok"]` for a sound file, else SQLite's list of problems.
    public func integrityCheck() throws(SQLiteError) -> [String] {
        try query("PRAGMA integrity_check").compactMap { $0[0].string }
    }

    /// The version of the SQLite library this process runs with (not the one it was compiled against).
    public static var libraryVersion: String { String(cString: sqlite3_libversion()) }

    /// The version number of the running library, e.g. 3040001 for 3.40.1.
    public static var libraryVersionNumber: Int { Int(sqlite3_libversion_number()) }
}
