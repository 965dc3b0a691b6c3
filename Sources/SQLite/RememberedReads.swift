/// Answers read on one reader connection, each kept with the `data_version` the connection had
/// before it read them: while that number has not moved, no other connection has committed, so the
/// answer is still what a fresh read would give.
///
/// Why: a client polling one job (the SDKs' wait loops, dashboards, `az batch job show` in a loop)
/// paid for the same four statements, the row's conversion and its JSON on every request, about a
/// third of a GET job's CPU. Between commits those are the same bytes; checking costs one pragma.
///
/// Bounded: at most `maxEntries` answers and `maxBytes` of them and their keys per connection; an
/// answer larger than `maxEntryBytes` is never kept. When either limit would be passed, all are
/// dropped at once (a daemon's readers hold a handful of hot answers, not a working set worth an
/// eviction order).
struct RememberedReads {
    static let maxEntries = 256
    static let maxBytes = 4 << 20
    static let maxEntryBytes = 256 << 10

    private struct Entry {
        var version: Int64
        var value: any Sendable
        var bytes: Int
    }

    private var entries: [String: Entry] = [:]
    private var bytes = 0

    func value<T>(_ key: String, at version: Int64, as type: T.Type) -> T? {
        guard let entry = entries[key], entry.version == version else { return nil }
        return entry.value as? T
    }

    mutating func keep(_ key: String, _ value: any Sendable, bytes valueBytes: Int, at version: Int64) {
        // The key counts too: it holds what the request named (a Host header, a `$select`).
        let size = valueBytes + key.utf8.count
        guard size <= Self.maxEntryBytes else { return }
        if let old = entries[key] { bytes -= old.bytes }
        if entries.count >= Self.maxEntries || bytes + size > Self.maxBytes {
            entries.removeAll(keepingCapacity: true)
            bytes = 0
        }
        entries[key] = Entry(version: version, value: value, bytes: size)
        bytes += size
    }
}

extension Connection {
    /// `PRAGMA data_version`: a number that changes whenever another connection (of this process or
    /// another) commits to the database, and only then.
    public func dataVersion() throws(SQLiteError) -> Int64 {
        let statement = try statement("PRAGMA data_version" as StaticString)
        return try statement.firstInteger() ?? 0
    }
}
