import Foundation
import SQLite

// Decoding stored rows: a column that is missing, NULL where it must not be, a state outside its
// enum, or JSON that does not decode is a corrupt row, and the error names the table, the row and the
// column. Nothing here falls back to a default: a stored preparation task that does not decode must
// not read as "no preparation".

extension Row {
    /// `pk 12`, or `(job_pk 3, node_pk 5)` for the (job, node) record.
    func key(_ table: String) -> String {
        if position(of: "pk") != nil { return "pk \(self["pk"].int64.map(String.init) ?? "?")" }
        return "(job_pk \(self["job_pk"].int64.map(String.init) ?? "?"), node_pk \(self["node_pk"].int64.map(String.init) ?? "?"))"
    }

    func corrupt(_ table: String, _ column: String, _ why: String) -> BookendError {
        BookendError.internalError("\(table) row \(key(table)), column \(column): \(why)")
    }

    func value(_ column: String, table: String) throws -> SQLiteValue {
        guard let index = position(of: column) else { throw corrupt(table, column, "the query did not select it") }
        return values[index]
    }

    func int64(_ column: String, table: String) throws -> Int64 {
        guard let value = try value(column, table: table).int64 else { throw corrupt(table, column, "NULL or not an integer") }
        return value
    }

    func text(_ column: String, table: String) throws -> String {
        guard let value = try value(column, table: table).string else { throw corrupt(table, column, "NULL or not text") }
        return value
    }

    /// A state or other enum column that must be set.
    func state<S: RawRepresentable>(_ type: S.Type, _ column: String = "state", table: String) throws -> S where S.RawValue == String {
        let raw = try text(column, table: table)
        guard let state = S(rawValue: raw) else { throw corrupt(table, column, "'\(raw)' is not a \(S.self)") }
        return state
    }

    /// An enum column that may be NULL.
    func optionalState<S: RawRepresentable>(_ type: S.Type, _ column: String, table: String) throws -> S? where S.RawValue == String {
        let value = try value(column, table: table)
        guard value != .null else { return nil }
        guard let raw = value.string, let state = S(rawValue: raw) else { throw corrupt(table, column, "\(value) is not a \(S.self)") }
        return state
    }

    /// A JSON column: NULL is nil, anything that does not decode throws.
    func json<T: Decodable & Sendable>(_ type: T.Type, _ column: String, table: String) throws -> T? {
        let value = try value(column, table: table)
        guard value != .null else { return nil }
        guard let text = value.string else { throw corrupt(table, column, "not text") }
        // `[]` and `{}` are what most list and object columns hold (a job's metadata and common
        // environment, say), and a GET job decoded each of them with a JSONDecoder of its own. An
        // array or a string-keyed dictionary decodes them to its empty self; any other type, and
        // any other text, still goes through the decoder, so a mismatch is still a corrupt row.
        if text == "[]", let empty = (T.self as? any EmptyJSONArray.Type)?.emptyJSONArray as? T { return empty }
        if text == "{}", let empty = (T.self as? any EmptyJSONObject.Type)?.emptyJSONObject as? T { return empty }
        if let known = DecodedColumns.shared.value(T.self, text) { return known }
        do {
            let decoded = try decodeStoredJSON(type, text)
            DecodedColumns.shared.store(decoded, text)
            return decoded
        } catch {
            throw corrupt(table, column, "does not decode as \(T.self): \(error)")
        }
    }
}

/// JSON columns already decoded, by type and text. A job's stored preparation and release tasks,
/// its environment and metadata are the same text on every read of that job, and every GET job and
/// every launch on a node decoded them again (a JSONDecoder run per column: the largest part of a GET
/// job's CPU). Only text that decoded is kept, so a corrupt row still throws on every read.
///
/// The values are immutable `Sendable` values. The cache is bounded by entries and by text length, in
/// two generations: when the young one is full it becomes the old one and the oldest is dropped, and a
/// hit in the old one moves back to the young one. So the few texts read over and over (a job's
/// preparation task) stay while one-off texts (each task's own spec) pass through.
final class DecodedColumns: @unchecked Sendable {
    static let shared = DecodedColumns()
    /// Entries per generation, and the longest text kept: at most ~4 MB of text in all.
    static let capacity = 512
    static let longestText = 4096

    private struct Key: Hashable {
        let type: ObjectIdentifier
        let text: String
    }

    private let lock = NSLock()
    private var young: [Key: any Sendable] = [:]
    private var old: [Key: any Sendable] = [:]

    func value<T: Sendable>(_ type: T.Type, _ text: String) -> T? {
        guard text.utf8.count <= DecodedColumns.longestText else { return nil }
        let key = Key(type: ObjectIdentifier(type), text: text)
        return lock.withLock { () -> (any Sendable)? in
            if let value = young[key] { return value }
            guard let value = old.removeValue(forKey: key) else { return nil }
            insert(value, key)
            return value
        } as? T
    }

    func store<T: Sendable>(_ value: T, _ text: String) {
        guard text.utf8.count <= DecodedColumns.longestText else { return }
        let key = Key(type: ObjectIdentifier(T.self), text: text)
        lock.withLock { insert(value, key) }
    }

    /// Under the lock.
    private func insert(_ value: any Sendable, _ key: Key) {
        if young.count >= DecodedColumns.capacity {
            old = young
            young = [:]
        }
        young[key] = value
    }
}

/// A type JSONDecoder reads from `[]` as an empty value of itself, for `Row.json`.
protocol EmptyJSONArray { static var emptyJSONArray: Self { get } }
extension Array: EmptyJSONArray where Element: Decodable { static var emptyJSONArray: [Element] { [] } }

/// A type JSONDecoder reads from `{}` as an empty value of itself, for `Row.json`.
protocol EmptyJSONObject { static var emptyJSONObject: Self { get } }
extension Dictionary: EmptyJSONObject where Key == String, Value: Decodable { static var emptyJSONObject: [String: Value] { [:] } }

extension Row {
    /// An integer column that may be NULL.
    func optionalInt64(_ column: String, table: String) throws -> Int64? {
        let value = try value(column, table: table)
        guard value != .null else { return nil }
        guard let int = value.int64 else { throw corrupt(table, column, "\(value) is not an integer") }
        return int
    }

    /// A text column that may be NULL.
    func optionalText(_ column: String, table: String) throws -> String? {
        let value = try value(column, table: table)
        guard value != .null else { return nil }
        guard let text = value.string else { throw corrupt(table, column, "\(value) is not text") }
        return text
    }
}

extension Row {
    /// An integer column that must be set, as `Int` (counts, slots, retry limits).
    func int(_ column: String, table: String) throws -> Int {
        Int(try int64(column, table: table))
    }
}

extension Connection {
    /// A `count(*)`/`sum` query's (or an integer PRAGMA's) single integer; anything else is a bug in
    /// the query, reported as one.
    func counted(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws -> Int {
        let value = try scalar(sql, arguments)
        guard let count = value.int else { throw BookendError.internalError("\(sql): \(value) is not a count") }
        return count
    }
}
