import Foundation

/// One SQLite value, copied out of a statement so it can leave the database's queue.
public enum SQLiteValue: Sendable, Hashable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null

    public var int64: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }
    public var int: Int? { int64.map { Int($0) } }
    public var double: Double? {
        switch self {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }
    public var string: String? {
        if case .text(let value) = self { return value }
        return nil
    }
    public var bool: Bool? { int64.map { $0 != 0 } }
    public var isNull: Bool { self == .null }
}

/// A type that can be bound as a statement parameter.
public protocol SQLiteBindable: Sendable {
    var sqliteValue: SQLiteValue { get }
}

extension SQLiteValue: SQLiteBindable { public var sqliteValue: SQLiteValue { self } }
extension Int: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(Int64(self)) } }
extension Int64: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(self) } }
extension Int32: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(Int64(self)) } }
extension Double: SQLiteBindable { public var sqliteValue: SQLiteValue { .real(self) } }
extension String: SQLiteBindable { public var sqliteValue: SQLiteValue { .text(self) } }
extension Bool: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(self ? 1 : 0) } }
extension Optional: SQLiteBindable where Wrapped: SQLiteBindable {
    public var sqliteValue: SQLiteValue { self?.sqliteValue ?? .null }
}

/// The result columns of one statement: their names in order, and each name's position, so a row
/// finds a column by name without comparing it against every name before it (a page of 1,000 tasks
/// looks up some 30,000 columns). Made once per statement and shared by all of its rows. Where two
/// columns share a name, the name finds the first, as a scan would.
///
/// The positions sit in a small open-addressed table keyed by a cheap hash of the name's UTF-8, not in a
/// `[String: Int]`: column names are short ASCII, and the dictionary's seeded SipHash (with its
/// seed read and finalization per lookup) was most of what a lookup cost.
public final class ColumnLayout: Sendable {
    public let names: [String]
    /// Each name's UTF-8, compared with the key on a hash match.
    private let bytes: [[UInt8]]
    /// `position + 1` of the name whose probe sequence passes here, or 0 for an empty slot.
    private let slots: [Int]
    private let mask: Int

    public init(_ names: [String]) {
        self.names = names
        bytes = names.map { Array($0.utf8) }
        var size = 8
        while size < names.count * 2 { size *= 2 }
        var slots = [Int](repeating: 0, count: size)
        for position in names.indices {
            var slot = bytes[position].withUnsafeBytes { ColumnLayout.hash($0) } & (size - 1)
            var seen = false
            while slots[slot] != 0 {
                if bytes[slots[slot] - 1] == bytes[position] { seen = true; break }
                slot = (slot + 1) & (size - 1)
            }
            if !seen { slots[slot] = position + 1 }
        }
        self.slots = slots
        mask = size - 1
    }

    /// The length and the first and last eight bytes, mixed: a few instructions where a byte-by-byte
    /// hash is a chain of dependent multiplies per byte. Names that agree on all three only share a
    /// probe sequence; the byte comparison still decides.
    private static func hash(_ key: UnsafeRawBufferPointer) -> Int {
        let count = key.count
        var head: UInt64 = 0
        var tail: UInt64 = 0
        if count >= 8 {
            head = key.loadUnaligned(as: UInt64.self)
            tail = key.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
        } else {
            for index in 0..<count { head |= UInt64(key[index]) << (8 * index) }
        }
        var hash = (head &* 0x9E37_79B9_7F4A_7C15) ^ (tail &* 0xC2B2_AE3D_27D4_EB4F) ^ UInt64(count)
        hash ^= hash >> 29
        return Int(truncatingIfNeeded: hash)
    }

    /// Where the column named `name` is, or nil if the statement has no such column.
    public func position(of name: String) -> Int? {
        var name = name
        return name.withUTF8 { key in
            var slot = ColumnLayout.hash(UnsafeRawBufferPointer(key)) & mask
            while true {
                let entry = slots[slot]
                if entry == 0 { return nil }
                let matches = bytes[entry - 1].withUnsafeBufferPointer { stored in
                    stored.count == key.count && (key.isEmpty || memcmp(stored.baseAddress!, key.baseAddress!, key.count) == 0)
                }
                if matches { return entry - 1 }
                slot = (slot + 1) & mask
            }
        }
    }
}

/// One result row: column names and values, `Sendable` so it may leave the database's queue.
public struct Row: Sendable {
    public let layout: ColumnLayout
    public let values: [SQLiteValue]

    public var columns: [String] { layout.names }

    public init(columns: [String], values: [SQLiteValue]) {
        self.init(layout: ColumnLayout(columns), values: values)
    }

    public init(layout: ColumnLayout, values: [SQLiteValue]) {
        self.layout = layout
        self.values = values
    }

    public subscript(index: Int) -> SQLiteValue { values[index] }

    /// The value of a named column, or `.null` if the row has no such column.
    public subscript(name: String) -> SQLiteValue {
        guard let index = layout.position(of: name) else { return .null }
        return values[index]
    }

    /// Where the column named `name` is in this row, or nil.
    public func position(of name: String) -> Int? { layout.position(of: name) }
}
